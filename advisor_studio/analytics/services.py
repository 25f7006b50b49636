"""Write-side helpers shared by the analytics features."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import sqlalchemy as sa

from advisor_studio.analytics.models import DirtyDay
from advisor_studio.dbtypes import utcnow
from advisor_studio.extensions import db


def mark_days_dirty(days: Iterable[date]) -> None:
    """Ask the next rollup refresh to recompute these days (in the caller's transaction).

    For changes that add no raw row but change what counts: a fraud flag confirmed or cleared, a
    customer marked as an employee. Idempotent; concurrent callers marking the same day do not fail.
    """
    wanted = sorted(set(days))
    if not wanted:
        return
    now = utcnow()
    rows = [{"day": d, "marked_at": now} for d in wanted]
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(DirtyDay).values(rows)
    stmt = stmt.on_conflict_do_update(index_elements=[DirtyDay.day], set_={"marked_at": stmt.excluded.marked_at})
    db.session.execute(stmt)


def dirty_days() -> list[date]:
    """The days waiting for a recompute, oldest first."""
    return list(db.session.scalars(sa.select(DirtyDay.day).order_by(DirtyDay.day)))
