"""Background jobs of the core: signed checkpoints and periodic verification of the audit chain."""

from __future__ import annotations

from celery import shared_task
from flask import current_app

from advisor_studio import audit, checkpoints


@shared_task(name="advisor_studio.core.verify_audit_chain", acks_late=True)
def verify_audit_chain() -> dict:
    """Recompute the audit hash chain against every checkpoint in the worker and report the outcome."""
    try:
        result = audit.verify()
    except checkpoints.CheckpointError as err:  # the store is unreachable: that is a failed verification
        current_app.logger.error("audit chain cannot be verified: %s", err)
        return {"ok": False, "count": 0, "broken_seq": None, "reason": str(err), "checkpoints": 0,
                "anchored_seq": 0}
    if not result.ok:
        current_app.logger.error("audit chain BROKEN at #%s: %s", result.broken_seq, result.reason)
    return {"ok": result.ok, "count": result.count, "broken_seq": result.broken_seq, "reason": result.reason,
            "checkpoints": result.checkpoints, "anchored_seq": result.anchored_seq}


@shared_task(name="advisor_studio.core.checkpoint_audit_chain", acks_late=True)
def checkpoint_audit_chain() -> dict | None:
    """Sign the chain head into the append-only checkpoint store, unless it is already there."""
    record = checkpoints.take(force=False)
    return None if record is None else {"seq": record["seq"], "where": record["where"]}
