"""Retention: which records are older than RETENTION_YEARS, for a person to decide. Nothing is deleted here.

Securities law asks a brokerage to keep client and business records for 20 years (the default); no
code path purges them. Each table is dated by the column that says when its record came to be (the
first of RECORD_DATE_COLUMNS it has); tables without one are listed as undated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

from advisor_studio.dbtypes import utcnow
from advisor_studio.extensions import db

# When a record came to be, in order of preference: the event itself, then the row's creation.
RECORD_DATE_COLUMNS = (
    "at", "occurred_at", "approved_at", "submitted_at", "requested_at", "detected_at", "uploaded_at",
    "attempted_at", "published_at", "observed_at", "recorded_at", "removed_at", "created_at", "first_seen_at",
    "marked_at", "day",
)


@dataclass(frozen=True)
class TableRetention:
    """Rows of one table past the retention cutoff."""

    table: str
    column: str | None  # the record date; None for a table without one
    total: int
    past: int
    oldest: datetime | date | None


def cutoff(years: int, now: datetime | None = None) -> datetime:
    """The moment ``years`` years before ``now`` (29 February falls back to the 28th)."""
    now = now or utcnow()
    try:
        return now.replace(year=now.year - years)
    except ValueError:
        return now.replace(year=now.year - years, day=28)


def _date_kind(column: sa.Column) -> str | None:
    kind = column.type.impl if isinstance(column.type, TypeDecorator) else column.type
    if isinstance(kind, sa.DateTime):
        return "datetime"
    return "date" if isinstance(kind, sa.Date) else None


def record_date_column(table: sa.Table) -> sa.Column | None:
    """The column that dates a record of ``table``, or None."""
    for name in RECORD_DATE_COLUMNS:
        column = table.columns.get(name)
        if column is not None and _date_kind(column):
            return column
    return None


def report(years: int, now: datetime | None = None) -> list[TableRetention]:
    """Per table of the application: rows in total, rows dated before the cutoff, the oldest record date."""
    if years < 1:
        raise ValueError("RETENTION_YEARS must be at least 1")
    moment = cutoff(years, now)
    rows = []
    for table in sorted(db.metadata.sorted_tables, key=lambda t: t.name):
        column = record_date_column(table)
        if column is None:
            total = db.session.scalar(sa.select(sa.func.count()).select_from(table))
            rows.append(TableRetention(table.name, None, total, 0, None))
            continue
        limit = moment if _date_kind(column) == "datetime" else moment.date()
        total, past, oldest = db.session.execute(sa.select(
            sa.func.count(),
            sa.func.count().filter(column < limit),
            sa.func.min(column),
        ).select_from(table)).one()
        rows.append(TableRetention(table.name, column.name, total, past, oldest))
    return rows
