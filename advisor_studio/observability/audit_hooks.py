"""Count audit entries (and refused sign-ins, which are audit entries) once their transaction commits.

Counted from the session rather than in audit.record(), so audit.py stays the one small thing it is;
an entry flushed and then rolled back is never counted.
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import Session

from advisor_studio.observability import metrics

_KEY = "advisor_studio_audit_metrics"


def _audit_entry_class():
    from advisor_studio.audit import AuditEntry

    return AuditEntry


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _context) -> None:
    entry_cls = _audit_entry_class()
    new = [obj for obj in session.new if isinstance(obj, entry_cls)]
    if new:
        pending = session.info.setdefault(_KEY, [])
        for entry in new:
            reason = None
            if entry.action == "user.login_failed" and isinstance(entry.details, dict):
                reason = str(entry.details.get("reason") or "unknown")[:32]
            pending.append((entry.action, reason))


@event.listens_for(Session, "after_commit")
def _count(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint was released: nothing is committed yet
        return
    for action, reason in session.info.pop(_KEY, []):
        metrics.AUDIT_ENTRIES.labels(action).inc()
        if reason is not None:
            metrics.LOGIN_FAILURES.labels(reason).inc()


@event.listens_for(Session, "after_soft_rollback")
def _drop(session: Session, previous_transaction) -> None:
    if not previous_transaction.nested:
        session.info.pop(_KEY, None)
