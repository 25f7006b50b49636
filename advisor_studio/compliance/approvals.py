"""The one definition of a live approval: a SQL expression and a Python predicate, tested to agree.

An approval is live when it is a package-stage approval, not voided, not yet expired (an expiry at
exactly ``now`` has passed, as in expire_due_approvals), and its package is still ``approved``. A
package approval without an expiry is not live: every package approval must end, so fail closed.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from advisor_studio.compliance.models import STAGE_PACKAGE, Approval
from advisor_studio.dbtypes import utcnow
from advisor_studio.extensions import db
from advisor_studio.studio.models import PKG_APPROVED, Package


def live_clause(now: datetime | None = None) -> sa.ColumnElement[bool]:
    """SQL condition on ``Approval`` rows that are live at ``now``; needs no join of the package."""
    now = now or utcnow()
    approved_packages = sa.select(Package.id).where(Package.status == PKG_APPROVED)
    return sa.and_(Approval.stage == STAGE_PACKAGE, Approval.voided_at.is_(None), Approval.expires_at.is_not(None),
                   Approval.expires_at > now, Approval.package_id.in_(approved_packages))


def is_live(approval: Approval, package, now: datetime | None = None) -> bool:
    """Python twin of live_clause for an approval and its package already in memory."""
    now = now or utcnow()
    return (approval.stage == STAGE_PACKAGE and approval.voided_at is None and approval.expires_at is not None
            and approval.expires_at > now and package is not None and approval.package_id == package.id
            and package.status == PKG_APPROVED)


def live_approvals_by_package(package_ids, now: datetime | None = None) -> dict[int, Approval]:
    """The newest live approval of each of ``package_ids`` that has one, in one query."""
    ids = list(package_ids)
    if not ids:
        return {}
    stmt = (sa.select(Approval).where(Approval.package_id.in_(ids), live_clause(now))
            .order_by(Approval.approved_at, Approval.id))
    return {a.package_id: a for a in db.session.scalars(stmt)}  # the newest wins
