"""Read side of integrity: the runs and alerts the integrity page and the landing page show."""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so

from advisor_studio.extensions import db
from advisor_studio.integrity.models import IntegrityAlert, IntegrityRun

PAGE_RUNS = 20
PAGE_ALERTS = 50


def recent_runs(limit: int = PAGE_RUNS) -> list[IntegrityRun]:
    """The latest re-verification runs, newest first."""
    return list(db.session.scalars(sa.select(IntegrityRun).order_by(IntegrityRun.id.desc()).limit(limit)))


def alerts(limit: int = PAGE_ALERTS) -> list[IntegrityAlert]:
    """Open alerts first, then resolved ones, newest first, with package and resolver loaded."""
    stmt = (sa.select(IntegrityAlert)
            .options(so.joinedload(IntegrityAlert.package), so.joinedload(IntegrityAlert.resolved_by))
            .order_by(sa.case((IntegrityAlert.resolved_at.is_(None), 0), else_=1), IntegrityAlert.id.desc())
            .limit(limit))
    return list(db.session.scalars(stmt).unique())


def open_alerts_summary(limit: int = 5) -> tuple[int, list[IntegrityAlert]]:
    """How many alerts are open and the newest few, for the compliance landing page."""
    count = db.session.scalar(sa.select(sa.func.count()).select_from(IntegrityAlert)
                              .where(IntegrityAlert.resolved_at.is_(None))) or 0
    items = list(db.session.scalars(
        sa.select(IntegrityAlert).where(IntegrityAlert.resolved_at.is_(None))
        .options(so.joinedload(IntegrityAlert.package)).order_by(IntegrityAlert.id.desc()).limit(limit)).unique())
    return count, items
