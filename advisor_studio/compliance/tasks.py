"""Background jobs of compliance: re-scan approved content, expire approvals."""

from __future__ import annotations

from celery import shared_task

from advisor_studio.compliance import services
from advisor_studio.extensions import db


@shared_task(name="advisor_studio.compliance.rescan_approved_packages", acks_late=True)
def rescan_approved_packages(version: int) -> int:
    """Re-scan every live approved package with lexicon ``version``; return how many were flagged."""
    flagged = services.rescan_live_approvals(version)
    db.session.commit()
    return flagged


@shared_task(name="advisor_studio.compliance.expire_approvals", acks_late=True)
def expire_approvals() -> int:
    """Expire approvals past APPROVAL_VALID_DAYS (run periodically by celery beat or cron)."""
    count = services.expire_due_approvals()
    db.session.commit()
    return count
