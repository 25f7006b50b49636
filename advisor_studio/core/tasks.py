"""Background jobs of the core: periodic verification of the audit chain."""

from __future__ import annotations

from celery import shared_task

from advisor_studio import audit


@shared_task(name="advisor_studio.core.verify_audit_chain", acks_late=True)
def verify_audit_chain() -> dict:
    """Recompute the audit hash chain in the worker and report the outcome."""
    result = audit.verify()
    return {"ok": result.ok, "count": result.count, "broken_seq": result.broken_seq, "reason": result.reason}
