"""Column types shared by every feature."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

# The largest value of an INTEGER column on every database we run on (PostgreSQL's int4): ids and
# numbers from requests are checked against it, since a larger one is a database error, not "no row".
MAX_INTEGER = 2**31 - 1


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend.

    Stored as naive UTC (SQLite has no time zones); always returned aware, so comparisons
    with ``utcnow()`` never mix naive and aware values.
    """

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


# The brokerage counts days as its back office does: calendar days in China Standard Time (UTC+8, no
# daylight saving). Fixed, not a setting: changing it would silently move history between days.
BUSINESS_TZ = ZoneInfo("Asia/Shanghai")


def business_day(at: datetime) -> date:
    """The business day of an aware instant (the ``day`` column of clicks, conversions and rollups)."""
    return at.astimezone(BUSINESS_TZ).date()


def business_today() -> date:
    return business_day(utcnow())
