"""Keeping ``analytics_daily`` in step with the raw clicks and conversions.

The raw tables stay the truth; a day's rollup rows are always recomputed whole from them (delete the
day's rows, insert the new ones, in one transaction), never patched with increments, so recomputing
a day twice gives the same rows and a refresh interrupted anywhere leaves each day either as it was
or fully recomputed.

- ``refresh()`` (celery beat, every minute) recomputes the days that have raw rows above the
  high-water marks of ``RollupState`` plus the days in ``analytics_dirty_days``.
- ``rebuild(from, to)`` (``flask analytics rebuild``) recomputes every day of a range.

Both take the same lock first: an UPDATE of the state row, which is a row lock on PostgreSQL and the
database's write lock on SQLite. Two refreshes at once therefore run one after the other (the second
finds nothing left to do), and a delete+insert of one day never interleaves with another, which on
PostgreSQL's READ COMMITTED could otherwise leave a day counted twice.

High-water marks and PostgreSQL: ids come from a sequence when a row is inserted, but rows become
visible when their transaction commits, so a row with a lower id can appear after a higher one was
seen. Each refresh therefore also looks back ``LOOKBACK_ROWS`` ids below its marks (cheap: the
primary key range, and those rows nearly always fall on today, which is recomputed anyway).

Segments (see models.py): ``bot`` = is_bot or is_head clicks; ``employee`` = conversions with
is_employee; ``fraud`` = clicks and conversions covered by a confirmed fraud flag (employee wins
over fraud for a conversion that is both); ``counted`` = the rest.

``accounts_rejected`` follows `flask links stats`: an account_rejected event counts when the same
customer has an account_opened on the same link, on whatever day. Its day is the rejection's day, so
a late account_opened also marks the days of that customer's rejections for a recompute.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
import sqlalchemy.orm as so

from advisor_studio.analytics.models import (
    FLAG_CONFIRMED,
    SEGMENT_BOT,
    SEGMENT_COUNTED,
    SEGMENT_EMPLOYEE,
    SEGMENT_FRAUD,
    SLICE_COLUMNS,
    SLICES,
    AdvisorDailyRollup,
    DailyRollup,
    DirtyDay,
    FraudFlag,
    FraudFlagItem,
    RollupState,
)
from advisor_studio.dbtypes import utcnow
from advisor_studio.distribution.models import Channel
from advisor_studio.extensions import db
from advisor_studio.referrals.models import Click, Conversion

log = logging.getLogger(__name__)

STATE_NAME = "daily"
DAYS_PER_TRANSACTION = 31  # one batch of days per transaction: a long rebuild commits as it goes
LOOKBACK_ROWS = 1000
DIMENSIONS = ("link_id", "advisor_id", "package_id", "channel_id", "partner_id", "group_id", "campaign")
ZERO = Decimal("0.00")


@dataclass
class RefreshResult:
    """What one refresh or rebuild did."""

    days: list[date] = field(default_factory=list)
    rows: int = 0
    fresh_as_of: datetime | None = None


# --- state and lock -------------------------------------------------------------------------------


def _ensure_state_row() -> None:
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    db.session.execute(insert(RollupState).values(name=STATE_NAME, last_click_pk=0, last_conversion_pk=0)
                       .on_conflict_do_nothing(index_elements=[RollupState.name]))
    db.session.commit()


def _lock() -> None:
    """Serialise rollup writers for the rest of this transaction (see the module docstring)."""
    db.session.execute(sa.update(RollupState).where(RollupState.name == STATE_NAME)
                       .values(last_click_pk=RollupState.last_click_pk)
                       .execution_options(synchronize_session=False))


def state() -> RollupState | None:
    """The refresh bookkeeping row (None before the first refresh)."""
    return db.session.get(RollupState, STATE_NAME)


def fresh_as_of() -> datetime | None:
    """Every raw row recorded at or before this instant is in the rollups (None: never refreshed)."""
    return db.session.scalar(sa.select(RollupState.fresh_as_of).where(RollupState.name == STATE_NAME))


# --- recomputing days -----------------------------------------------------------------------------


def _confirmed(item_column) -> sa.Select:
    # An uncorrelated IN: both databases build the (small) set once per statement, where a
    # correlated EXISTS would probe the flag tables once per raw row of a day being recomputed.
    return (sa.select(item_column).join(FraudFlag, FraudFlag.id == FraudFlagItem.flag_id)
            .where(item_column.is_not(None), FraudFlag.status == FLAG_CONFIRMED))


def click_segment() -> sa.ColumnElement:
    """The segment of a click row, as SQL."""
    return sa.case(
        (sa.or_(Click.is_bot.is_(True), Click.is_head.is_(True)), SEGMENT_BOT),
        (Click.id.in_(_confirmed(FraudFlagItem.click_pk)), SEGMENT_FRAUD),
        else_=SEGMENT_COUNTED)


def conversion_segment() -> sa.ColumnElement:
    """The segment of a conversion row, as SQL."""
    return sa.case(
        (Conversion.is_employee.is_(True), SEGMENT_EMPLOYEE),
        (Conversion.id.in_(_confirmed(FraudFlagItem.conversion_pk)), SEGMENT_FRAUD),
        else_=SEGMENT_COUNTED)


COUNTERS = ("clicks", "duplicate_clicks", "unique_visitors", "signups", "accounts_opened", "accounts_rejected",
            "funded_count", "withdrawals", "first_trades", "customer_referrals")
AMOUNTS = ("funded_amount", "withdrawn_amount")
KEY = ("day", "segment", *DIMENSIONS, "platform")


def _measures(given: dict) -> list:
    """Every measure column in the order of COUNTERS + AMOUNTS: ``given`` ones, zero for the rest."""
    return [given[name].label(name) if name in given else sa.literal(0, sa.Integer).label(name)
            for name in COUNTERS] + [
        given[name].label(name) if name in given else sa.literal(ZERO, sa.Numeric(18, 2)).label(name)
        for name in AMOUNTS]


def _click_part(days: list[date]) -> sa.Select:
    segment = click_segment().label("segment")
    dims = [getattr(Click, name) for name in DIMENSIONS]
    return (sa.select(Click.day.label("day"), segment, *dims, Channel.platform.label("platform"), *_measures({
                "clicks": sa.func.count(),
                "duplicate_clicks": sa.func.count().filter(Click.is_duplicate.is_(True)),
                "unique_visitors": sa.func.count(sa.distinct(Click.visitor_hash))}))
            .select_from(Click).outerjoin(Channel, Channel.id == Click.channel_id)
            .where(Click.day.in_(days))
            .group_by(Click.day, segment, *dims, Channel.platform))


def _conversion_part(days: list[date]) -> sa.Select:
    segment = conversion_segment().label("segment")
    dims = [getattr(Conversion, name) for name in DIMENSIONS]
    opened = so.aliased(Conversion)
    reverses_an_opening = (sa.select(sa.literal(1)).select_from(opened)
                           .where(opened.customer_id == Conversion.customer_id,
                                  opened.link_id.is_not_distinct_from(Conversion.link_id),
                                  opened.event == "account_opened").exists())
    event = Conversion.event

    def count(condition):
        return sa.func.count().filter(condition)

    def total(condition):
        return sa.func.coalesce(sa.func.sum(Conversion.amount).filter(condition), 0)

    return (sa.select(Conversion.day.label("day"), segment, *dims, Channel.platform.label("platform"), *_measures({
                "signups": count(event == "signup"),
                "accounts_opened": count(event == "account_opened"),
                "accounts_rejected": count(sa.and_(event == "account_rejected", reverses_an_opening)),
                "funded_count": count(event == "funded"),
                "funded_amount": total(event == "funded"),
                "withdrawals": count(event == "withdrawal"),
                "withdrawn_amount": total(event == "withdrawal"),
                "first_trades": count(event == "first_trade"),
                "customer_referrals": count(sa.and_(event == "account_opened",
                                                    Conversion.referrer_customer_id.is_not(None)))}))
            .select_from(Conversion).outerjoin(Channel, Channel.id == Conversion.channel_id)
            .where(Conversion.day.in_(days))
            .group_by(Conversion.day, segment, *dims, Channel.platform))


def rollup_select(days: list[date]) -> sa.Select:
    """The analytics_daily rows of ``days`` as one SELECT over the raw tables (columns named as the table's).

    Clicks and conversions are grouped apart by the same key (day, segment, the dimensions, the
    channel's platform) and then merged per key: a key with clicks only or conversions only is one row
    with zeros for the other side. GROUP BY puts NULL keys together, so an unattributed conversion
    (no link) is one row per day and segment.
    """
    both = sa.union_all(_click_part(days), _conversion_part(days)).subquery("raw")
    key = [both.c[name] for name in KEY]
    sums = [sa.cast(sa.func.sum(both.c[name]), sa.Integer).label(name) for name in COUNTERS]
    amounts = [sa.func.round(sa.func.sum(both.c[name]), 2).label(name) for name in AMOUNTS]
    return sa.select(*key, *sums, *amounts).group_by(*key)


def _slice_select(days: list[date], dimension: str) -> sa.Select:
    """The AdvisorDailyRollup rows of ``days`` sliced by ``dimension``, summed from analytics_daily."""
    column = SLICE_COLUMNS.get(dimension)
    key = [DailyRollup.day, DailyRollup.segment, DailyRollup.advisor_id]
    if column is not None:
        key.append(getattr(DailyRollup, column))
    sums = [sa.cast(sa.func.sum(getattr(DailyRollup, name)), sa.Integer) for name in COUNTERS]
    amounts = [sa.func.round(sa.func.sum(getattr(DailyRollup, name)), 2) for name in AMOUNTS]
    return (sa.select(*key, sa.literal(dimension, sa.String), *sums, *amounts)
            .where(DailyRollup.day.in_(days)).group_by(*key))


def _delete_days(conditions: Callable[[sa.ColumnElement], list]) -> None:
    """Delete the rows of both rollup tables whose ``day`` column meets ``conditions(day)``."""
    db.session.execute(sa.delete(DailyRollup).where(*conditions(DailyRollup.day))
                       .execution_options(synchronize_session=False))
    db.session.execute(sa.delete(AdvisorDailyRollup).where(*conditions(AdvisorDailyRollup.day))
                       .execution_options(synchronize_session=False))


def _replace_days(days: list[date]) -> int:
    """Delete and re-insert the rollup rows of ``days`` (analytics_daily, then its advisor slices) in the
    current transaction; the analytics_daily rows inserted.

    INSERT ... SELECT throughout: the rows are computed and written by the database, never fetched.
    """
    _delete_days(lambda day: [day.in_(days)])
    inserted = db.session.execute(sa.insert(DailyRollup).from_select([*KEY, *COUNTERS, *AMOUNTS], rollup_select(days))
                                  .execution_options(preserve_rowcount=True))
    for dimension in SLICES:
        column = SLICE_COLUMNS.get(dimension)
        db.session.execute(sa.insert(AdvisorDailyRollup).from_select(
            ["day", "segment", "advisor_id", *([column] if column else []), "dimension", *COUNTERS, *AMOUNTS],
            _slice_select(days, dimension)))
    return inserted.rowcount


def _in_batches(days: list[date]):
    for start in range(0, len(days), DAYS_PER_TRANSACTION):
        yield days[start:start + DAYS_PER_TRANSACTION]


def _drain_clicks() -> None:
    from advisor_studio.referrals import clicks

    clicks.drain()  # as `flask links stats` does: every durable click counts


# --- refresh --------------------------------------------------------------------------------------


def _days_to_refresh(last_click: int, last_conversion: int, top_click: int, top_conversion: int) -> set[date]:
    click_from = max(0, last_click - LOOKBACK_ROWS)
    conversion_from = max(0, last_conversion - LOOKBACK_ROWS)
    days = set(db.session.scalars(sa.select(Click.day).where(Click.id > click_from, Click.id <= top_click)
                                  .distinct()))
    days |= set(db.session.scalars(sa.select(Conversion.day).where(Conversion.id > conversion_from,
                                                                   Conversion.id <= top_conversion).distinct()))
    # A late account_opened changes whether that customer's earlier-recorded rejections count.
    new_openings = (sa.select(Conversion.customer_id)
                    .where(Conversion.id > conversion_from, Conversion.id <= top_conversion,
                           Conversion.event == "account_opened"))
    days |= set(db.session.scalars(sa.select(Conversion.day).where(Conversion.event == "account_rejected",
                                                                   Conversion.customer_id.in_(new_openings))
                                   .distinct()))
    return days


def refresh() -> RefreshResult:
    """Fold every raw row recorded since the last refresh (and every dirty day) into the rollups.

    Commits (one transaction per batch of days); for the beat task and the CLI, not for a request.
    """
    _drain_clicks()
    _ensure_state_row()
    _lock()
    started = utcnow()
    current = db.session.execute(sa.select(RollupState.last_click_pk, RollupState.last_conversion_pk)
                                 .where(RollupState.name == STATE_NAME)).one()
    top_click = db.session.scalar(sa.select(sa.func.max(Click.id))) or 0
    top_conversion = db.session.scalar(sa.select(sa.func.max(Conversion.id))) or 0
    dirty = db.session.execute(sa.select(DirtyDay.day, DirtyDay.marked_at)).all()
    days = _days_to_refresh(current.last_click_pk, current.last_conversion_pk, top_click, top_conversion)
    days |= {row.day for row in dirty}
    result = RefreshResult(days=sorted(days), fresh_as_of=started)
    batches = list(_in_batches(result.days)) or [[]]
    for number, batch in enumerate(batches):
        if number:
            _lock()
        if batch:
            result.rows += _replace_days(batch)
        if number < len(batches) - 1:
            db.session.commit()
    # Only what this refresh saw: rows above these marks, and days marked dirty again meanwhile,
    # are left for the next one.
    db.session.execute(sa.update(RollupState).where(RollupState.name == STATE_NAME).values(
        last_click_pk=max(current.last_click_pk, top_click),
        last_conversion_pk=max(current.last_conversion_pk, top_conversion),
        fresh_as_of=started, refreshed_at=utcnow()).execution_options(synchronize_session=False))
    for row in dirty:
        db.session.execute(sa.delete(DirtyDay).where(DirtyDay.day == row.day, DirtyDay.marked_at == row.marked_at)
                           .execution_options(synchronize_session=False))
    db.session.commit()
    return result


# --- rebuild --------------------------------------------------------------------------------------


def _day_bounds(column, date_from: date | None, date_to: date | None) -> list:
    bounds = []
    if date_from is not None:
        bounds.append(column >= date_from)
    if date_to is not None:
        bounds.append(column <= date_to)
    return bounds


def rebuild(date_from: date | None = None, date_to: date | None = None) -> RefreshResult:
    """Recompute every day from ``date_from`` to ``date_to`` (inclusive) from the raw tables.

    Without bounds: every day that has raw rows, and rollup rows of days outside them are removed.
    Idempotent; commits one batch of days at a time.
    """
    if date_from is not None and date_to is not None and date_to < date_from:
        raise ValueError("date_to before date_from")
    _drain_clicks()
    _ensure_state_row()
    _lock()
    started = utcnow()
    whole = date_from is None and date_to is None
    top_click = db.session.scalar(sa.select(sa.func.max(Click.id))) or 0
    top_conversion = db.session.scalar(sa.select(sa.func.max(Conversion.id))) or 0
    # Only days with raw rows get rollup rows: recompute those, and delete the rollup rows of every
    # other day in the range in one statement.
    raw_days = sa.union(sa.select(Click.day.label("day")).where(*_day_bounds(Click.day, date_from, date_to)),
                        sa.select(Conversion.day.label("day")).where(*_day_bounds(Conversion.day, date_from,
                                                                                  date_to))).subquery()
    days = sorted(set(db.session.scalars(sa.select(raw_days.c.day))))
    _delete_days(lambda day: [day.not_in(sa.select(raw_days.c.day)), *_day_bounds(day, date_from, date_to)])
    result = RefreshResult(days=days, fresh_as_of=started if whole else None)
    batches = list(_in_batches(days)) or [[]]
    for number, batch in enumerate(batches):
        if number:
            _lock()
        if batch:
            result.rows += _replace_days(batch)
        if whole and number == len(batches) - 1:
            # Everything up to these marks is now folded in; dirty days are recomputed too.
            db.session.execute(sa.update(RollupState).where(RollupState.name == STATE_NAME).values(
                last_click_pk=top_click, last_conversion_pk=top_conversion, fresh_as_of=started,
                refreshed_at=utcnow()).execution_options(synchronize_session=False))
            db.session.execute(sa.delete(DirtyDay).where(DirtyDay.marked_at <= started)
                               .execution_options(synchronize_session=False))
        elif batch:
            db.session.execute(sa.delete(DirtyDay).where(DirtyDay.day.in_(batch), DirtyDay.marked_at <= started)
                               .execution_options(synchronize_session=False))
        db.session.commit()
    return result
