"""Enqueue Celery tasks only once the transaction that asked for them has committed.

A task sent before the commit could run before its rows are visible (or after a rollback,
for rows that never existed), so services call ``enqueue_after_commit`` instead of ``delay``.
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import Session

_KEY = "advisor_studio_pending_tasks"


def enqueue_after_commit(task, *args, **kwargs) -> None:
    """Send ``task.apply_async(args, kwargs)`` after the current session commits."""
    from advisor_studio.extensions import db

    db.session().info.setdefault(_KEY, []).append((task, args, kwargs))


@event.listens_for(Session, "after_commit")
def _send_pending(session: Session) -> None:
    pending = session.info.pop(_KEY, [])
    for task, args, kwargs in pending:
        task.apply_async(args=args, kwargs=kwargs)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_KEY, None)
