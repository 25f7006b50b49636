"""The one read side of analytics: funnels, the star-advisor leaderboard and the AARRR panel.

Pages, their CSV exports and `flask analytics funnel` all call these functions, so they show the same
numbers. Every figure comes from the rollups (one GROUP BY per call, the previous period's comparison
in the same statement), except AARRR's retention, which needs each customer's own history and reads
the raw conversions. A funnel that names at most one dimension besides the advisor reads the advisor
slices (``analytics_advisor_daily``, a few rows per advisor and day); one that combines two reads
``analytics_daily`` (a row per link and day). Both hold the same figures (tested), see ``_source``.

Definitions (the same everywhere):

- clicks: human clicks (bots and HEAD requests are the ``bot`` segment, never counted).
- unique_visitors: distinct visitors per link per business day (Beijing), summed (as `flask links stats` counts them;
  the visitor hash changes every day, so a visitor on two days or two links counts twice).
- accounts_opened: account_opened events net of the account_rejected events that reverse them (on the
  rejection's day, so a day's or a period's figure is the net change and may be negative).
- funded_amount: funded amounts net of withdrawals; funded_count: funded events.
- Employees' own accounts (``employee``) and anything covered by a confirmed fraud flag (``fraud``)
  are held out; ``include_excluded`` reports them apart, never mixed into the counted figures.

Scope: ``scope`` is ``permissions.advisor_scope(user)``: None for everyone, else the only advisor whose
rows may be read (an advisor's own id; -1 matches nothing). It is applied to every query here, and a
filter naming anything outside it is refused like an unknown value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_babel import lazy_gettext as _l

from advisor_studio.accounts.models import User, UserRole
from advisor_studio.analytics import rollups
from advisor_studio.analytics.models import (
    SEGMENT_COUNTED,
    SEGMENTS,
    SLICE_ALL,
    AdvisorDailyRollup,
    DailyRollup,
)
from advisor_studio.compliance.models import STAGE_PACKAGE, Approval
from advisor_studio.dbtypes import BUSINESS_TZ, MAX_INTEGER, business_today, utcnow
from advisor_studio.distribution.models import CHANNEL_PLATFORMS, PLATFORM_LABELS, Channel, Partner
from advisor_studio.errors import ValidationError
from advisor_studio.extensions import db
from advisor_studio.referrals.models import CommunityGroup, Conversion, ReferralLink
from advisor_studio.studio.models import Package
from advisor_studio.web import FIRST_DAY, LAST_DAY

MAX_RANGE_DAYS = 3 * 365 + 1  # three years, a leap day included
DEFAULT_DAYS = 30
RETENTION_DAYS = 30
CAMPAIGN_MAX = 64
CENT = Decimal("0.01")

# Each entity dimension and the column that holds it, in analytics_daily and in its advisor slices alike.
ENTITY_DIMENSIONS = {
    "advisor": "advisor_id",
    "package": "package_id",
    "platform": "platform",
    "partner": "partner_id",
    "channel": "channel_id",
    "group": "group_id",
    "campaign": "campaign",
}
TIME_DIMENSIONS = ("day", "week", "month")
DIMENSIONS = (*ENTITY_DIMENSIONS, *TIME_DIMENSIONS)
DIMENSION_LABELS = {
    "advisor": _l("Advisor"),
    "package": _l("Package"),
    "platform": _l("Platform"),
    "partner": _l("Partner"),
    "channel": _l("Channel"),
    "group": _l("Community group"),
    "campaign": _l("Campaign"),
    "day": _l("Day"),
    "week": _l("Week"),
    "month": _l("Month"),
}
FILTERS = tuple(ENTITY_DIMENSIONS)  # advisor, package, platform, partner, channel, group, campaign
ID_FILTERS = ("advisor", "package", "partner", "channel", "group")
SEGMENT_LABELS = {
    "counted": _l("Counted"),
    "bot": _l("Bots and HEAD requests"),
    "employee": _l("Employees' own accounts"),
    "fraud": _l("Confirmed fraud"),
}
METRICS = ("clicks", "unique_visitors", "signups", "accounts_opened", "funded_count", "funded_amount",
           "first_trades")
METRIC_LABELS = {
    "clicks": _l("Clicks"),
    "unique_visitors": _l("Unique visitors"),
    "signups": _l("Sign-ups"),
    "accounts_opened": _l("Accounts opened"),
    "funded_count": _l("Funded accounts"),
    "funded_amount": _l("Funded amount (net)"),
    "first_trades": _l("First trades"),
}
# Step conversion rates: (name, numerator, denominator).
STEPS = (
    ("visitor_rate", "unique_visitors", "clicks"),
    ("signup_rate", "signups", "unique_visitors"),
    ("open_rate", "accounts_opened", "signups"),
    ("funded_rate", "funded_count", "accounts_opened"),
    ("trade_rate", "first_trades", "funded_count"),
)
STEP_LABELS = {
    "visitor_rate": _l("Clicks → visitors"),
    "signup_rate": _l("Visitors → sign-ups"),
    "open_rate": _l("Sign-ups → accounts"),
    "funded_rate": _l("Accounts → funded"),
    "trade_rate": _l("Funded → first trade"),
}


# --- results --------------------------------------------------------------------------------------


@dataclass
class FunnelRow:
    """The funnel figures of one group (or of a whole period)."""

    key: object = None  # the group's value: an id, a code, a campaign, a YYYY-MM-DD / YYYY-MM; None: none
    label: str = ""
    export_key: object = None  # what the CLI prints as "key" (an advisor's email, an id, a date ...)
    clicks: int = 0
    unique_visitors: int = 0
    signups: int = 0
    accounts_opened: int = 0
    funded_count: int = 0
    funded_amount: Decimal = Decimal("0.00")
    first_trades: int = 0
    customer_referrals: int = 0

    def add(self, other: FunnelRow) -> None:
        for name in (*METRICS, "customer_referrals"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def rate(self, step: str) -> float | None:
        """The conversion rate of one step (None when its denominator is zero)."""
        _name, top, bottom = next(s for s in STEPS if s[0] == step)
        below = getattr(self, bottom)
        return getattr(self, top) / below if below else None

    @property
    def rates(self) -> dict[str, float | None]:
        return {name: self.rate(name) for name, _top, _bottom in STEPS}

    @property
    def overall_rate(self) -> float | None:
        """Accounts opened per unique visitor (the leaderboard's conversion rate)."""
        return self.accounts_opened / self.unique_visitors if self.unique_visitors else None

    def contract_dict(self) -> dict:
        """The CLI's row (contract.md): key and the seven figures; the amount as a decimal string."""
        return {"key": self.export_key, "clicks": self.clicks, "unique_visitors": self.unique_visitors,
                "signups": self.signups, "accounts_opened": self.accounts_opened,
                "funded_count": self.funded_count, "funded_amount": str(self.funded_amount.quantize(CENT)),
                "first_trades": self.first_trades}


@dataclass
class Funnel:
    """A funnel over a period: rows per group, their total, the previous period, what was held out."""

    date_from: date
    date_to: date
    by: str | None
    filters: dict
    rows: list[FunnelRow]
    total: FunnelRow
    previous_from: date
    previous_to: date
    previous: FunnelRow | None = None  # totals of the previous period of the same length
    previous_rows: dict = field(default_factory=dict)  # key -> FunnelRow of the previous period
    excluded: dict = field(default_factory=dict)  # segment -> FunnelRow, when asked for
    as_of: datetime | None = None

    def change(self, metric: str) -> float | None:
        """Relative change of a total against the previous period (None without a base)."""
        if self.previous is None:
            return None
        before = getattr(self.previous, metric)
        return (getattr(self.total, metric) - before) / before if before else None


# --- validation -----------------------------------------------------------------------------------


def default_range(today: date | None = None) -> tuple[date, date]:
    """The last DEFAULT_DAYS business days, today included."""
    today = today or business_today()
    return today - timedelta(days=DEFAULT_DAYS - 1), today


def check_range(date_from: date, date_to: date) -> None:
    """Refuse an end before its start and a range longer than MAX_RANGE_DAYS (ValidationError)."""
    if date_from < FIRST_DAY or date_to > LAST_DAY:
        raise ValidationError(str(_l("Dates must lie between %(first)s and %(last)s.", first=FIRST_DAY.isoformat(),
                                     last=LAST_DAY.isoformat())),
                              fields={"date_from": str(_l("out of range"))}, code="bad_range")
    if date_to < date_from:
        raise ValidationError(str(_l("The end date is before the start date.")),
                              fields={"date_to": str(_l("must be on or after the start date"))}, code="bad_range")
    if (date_to - date_from).days + 1 > MAX_RANGE_DAYS:
        raise ValidationError(str(_l("The date range may span at most %(days)d days (three years).",
                                     days=MAX_RANGE_DAYS)),
                              fields={"date_to": str(_l("at most %(days)d days after the start date",
                                                        days=MAX_RANGE_DAYS))}, code="range_too_long")


def _unknown(name: str) -> ValidationError:
    label = DIMENSION_LABELS.get(name, name)
    return ValidationError(str(_l("Unknown %(what)s in the filters.", what=label)),
                           fields={name: str(_l("unknown value"))}, code="unknown_filter")


def _as_id(name: str, value) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value.strip()) <= 10:
        number = int(value.strip())
    else:
        raise _unknown(name)
    if not 1 <= number <= MAX_INTEGER:
        raise _unknown(name)
    return number


def check_filters(scope: int | None, raw: dict | None) -> dict:
    """The filters with their values checked to exist (and to lie in ``scope``); empty values dropped.

    Raises ValidationError naming the first unknown filter or value.
    """
    clean: dict = {}
    for name, value in (raw or {}).items():
        if value is None or value == "":
            continue
        if name not in FILTERS:
            raise ValidationError(str(_l("Unknown filter “%(name)s”.", name=str(name)[:40])),
                                  fields={str(name)[:40]: str(_l("unknown filter"))}, code="unknown_filter")
        if name in ID_FILTERS:
            clean[name] = _as_id(name, value)
        elif name == "platform":
            if value not in CHANNEL_PLATFORMS:
                raise _unknown(name)
            clean[name] = value
        else:  # campaign
            if not isinstance(value, str) or len(value) > CAMPAIGN_MAX:
                raise _unknown(name)
            clean[name] = value
    owned = (lambda column: sa.true()) if scope is None else (lambda column: column == scope)
    checks = {
        "advisor": lambda v: sa.select(UserRole.user_id).where(UserRole.user_id == v, UserRole.role == "advisor",
                                                                owned(UserRole.user_id)),
        "package": lambda v: sa.select(Package.id).where(Package.id == v, owned(Package.author_id)),
        "partner": lambda v: sa.select(Partner.id).where(Partner.id == v),
        "channel": lambda v: sa.select(Channel.id).where(Channel.id == v),
        "group": lambda v: sa.select(CommunityGroup.id).where(CommunityGroup.id == v, owned(CommunityGroup.owner_id)),
        "campaign": lambda v: sa.select(ReferralLink.id).where(ReferralLink.campaign == v,
                                                               owned(ReferralLink.owner_id)).limit(1),
    }
    for name, value in clean.items():
        if name in checks and db.session.scalar(checks[name](value)) is None:
            raise _unknown(name)
    return clean


Rollup = type[DailyRollup] | type[AdvisorDailyRollup]


def _source(by: str | None, filters: dict) -> tuple[Rollup, str | None]:
    """The rollup table that answers a funnel and, for the advisor slices, the slice to read.

    The slices hold every figure per (day, advisor) for one dimension at a time, a few rows per
    advisor and day where analytics_daily has one per link: they answer whenever at most one dimension
    besides the advisor is grouped by or filtered on. Two or more need analytics_daily.
    """
    named = {name for name in filters if name != "advisor"}
    if by in ENTITY_DIMENSIONS and by != "advisor":
        named.add(by)
    if len(named) > 1:
        return DailyRollup, None
    return AdvisorDailyRollup, (named.pop() if named else SLICE_ALL)


def _column(table: Rollup, name: str):
    return getattr(table, ENTITY_DIMENSIONS[name])


def _where(table: Rollup, dimension: str | None, scope: int | None, date_from: date, date_to: date,
           filters: dict) -> list:
    conditions = [table.day >= date_from, table.day <= date_to]
    if dimension is not None:
        conditions.append(table.dimension == dimension)
    if scope is not None:
        conditions.append(table.advisor_id == scope)
    for name, value in filters.items():
        conditions.append(_column(table, name) == value)
    return conditions


# --- funnel ---------------------------------------------------------------------------------------

SUMMED = ("clicks", "unique_visitors", "signups", "accounts_opened", "accounts_rejected", "funded_count",
          "funded_amount", "withdrawn_amount", "first_trades", "customer_referrals")


def _sums(table: Rollup) -> list:
    return [sa.func.coalesce(sa.func.sum(getattr(table, name)), 0).label(name) for name in SUMMED]


def _row_of(values) -> FunnelRow:
    return FunnelRow(clicks=int(values.clicks), unique_visitors=int(values.unique_visitors),
                     signups=int(values.signups),
                     accounts_opened=int(values.accounts_opened) - int(values.accounts_rejected),
                     funded_count=int(values.funded_count),
                     funded_amount=(Decimal(values.funded_amount) - Decimal(values.withdrawn_amount)).quantize(CENT),
                     first_trades=int(values.first_trades), customer_referrals=int(values.customer_referrals))


def _bucket(day: date, by: str) -> str:
    if by == "week":
        return (day - timedelta(days=day.weekday())).isoformat()  # the Monday
    if by == "month":
        return day.strftime("%Y-%m")
    return day.isoformat()


def _label_joins(by: str | None, key) -> tuple[list, list]:
    """(label columns, joins) that name the groups of ``by`` from their ``key`` column, in the same
    statement: no second query with thousands of ids."""
    if by == "advisor":
        return [User.name, User.email], [(User, User.id == key)]
    if by == "package":
        return [Package.title], [(Package, Package.id == key)]
    if by == "partner":
        return [Partner.name], [(Partner, Partner.id == key)]
    if by == "channel":
        return [Partner.name, Channel.platform, Channel.handle], [
            (Channel, Channel.id == key), (Partner, Partner.id == Channel.partner_id)]
    if by == "group":
        return [CommunityGroup.name], [(CommunityGroup, CommunityGroup.id == key)]
    return [], []


def _label_of(by: str, key, names: tuple) -> tuple[str, object]:
    """(label, export key) of one group from its key and the joined name columns."""
    if by in TIME_DIMENSIONS or by == "campaign":
        return str(key), key
    if by == "platform":
        return str(PLATFORM_LABELS.get(key, key)), key
    if not names or names[0] is None:
        return str(key), key
    if by == "advisor":
        return names[0], names[1]
    if by == "channel":
        partner, platform, handle = names
        return f"{partner} · {PLATFORM_LABELS.get(platform, platform)} {handle}", key
    return names[0], key


def _grouped(scope, date_from, date_to, by, filters, *, segments: bool, labels: bool = False,
             previous_from: date | None = None) -> dict:
    """{(current, key, segment): FunnelRow} from one GROUP BY over the rollup that ``_source`` picks.

    ``current`` is True for the days from ``date_from`` to ``date_to``. With ``previous_from``, the
    days from it to the day before ``date_from`` come in the same statement as the previous period
    (``current`` False): counted rows only, keyed per entity dimension, as one total for days, weeks
    and months. With ``labels``, the names are joined to the aggregated rows (one per group), not to
    the rollup rows before they are summed, so the GROUP BY carries no text.
    """
    table, dimension = _source(by, filters)
    current = (table.day >= date_from).label("current")
    columns = [current]
    if by in TIME_DIMENSIONS:
        columns.append(sa.case((current, table.day)).label("key"))
    elif by is not None:
        columns.append(_column(table, by).label("key"))
    if segments:
        columns.append(table.segment.label("segment"))
    conditions = _where(table, dimension, scope, previous_from or date_from, date_to, filters)
    counted = table.segment == SEGMENT_COUNTED
    conditions.append(sa.or_(counted, current) if segments else counted)
    stmt = sa.select(*columns, *_sums(table)).where(*conditions).group_by(*columns)
    names: list = []
    if labels and by is not None:
        figures = stmt.subquery("figures")
        names, joins = _label_joins(by, figures.c.key)
        names = [column.label(f"name{n}") for n, column in enumerate(names)]
        if names:
            stmt = sa.select(figures, *names).select_from(figures)
            for target, onclause in joins:
                stmt = stmt.outerjoin(target, onclause)
    out: dict = {}
    for values in db.session.execute(stmt):
        key = values.key if by is not None else None
        if by in TIME_DIMENSIONS and key is not None:
            key = _bucket(key if isinstance(key, date) else date.fromisoformat(str(key)), by)
        segment = values.segment if segments else SEGMENT_COUNTED
        row = _row_of(values)
        row.key = key
        if by is not None and key is not None:
            row.label, row.export_key = _label_of(by, key, tuple(getattr(values, name.name) for name in names))
        slot = (bool(values.current), key, segment)
        existing = out.get(slot)
        if existing is None:
            out[slot] = row
        else:
            existing.add(row)
    return out


NONE_LABELS = {
    "advisor": _l("(not attributed)"),
    "package": _l("(no package)"),
    "platform": _l("(no platform)"),
    "partner": _l("(no partner)"),
    "channel": _l("(no channel)"),
    "group": _l("(no group)"),
    "campaign": _l("(no campaign)"),
}


def _sort_key(by: str | None):
    if by in TIME_DIMENSIONS:
        return lambda row: (row.key is None, str(row.key))
    return lambda row: (-row.accounts_opened, -row.funded_amount, -row.clicks, row.key is None, row.label)


def funnel(scope: int | None, date_from: date, date_to: date, by: str | None = None, filters: dict | None = None,
           include_excluded: bool = False, compare: bool = True) -> Funnel:
    """The funnel of a period, grouped ``by`` one dimension (or not), with the previous period.

    ``filters`` must come from ``check_filters`` (values known and in scope).
    """
    check_range(date_from, date_to)
    if by is not None and by not in DIMENSIONS:
        raise ValidationError(str(_l("Unknown dimension “%(name)s”.", name=str(by)[:40])),
                              fields={"by": str(_l("unknown dimension"))}, code="unknown_dimension")
    filters = dict(filters or {})
    length = (date_to - date_from).days + 1
    previous_to = date_from - timedelta(days=1)
    previous_from = date_from - timedelta(days=length)
    compare = compare and previous_from >= FIRST_DAY
    grouped = _grouped(scope, date_from, date_to, by, filters, segments=include_excluded, labels=True,
                       previous_from=previous_from if compare else None)
    counted: dict = {}
    excluded: dict = {}
    before: dict = {}
    for (current, key, segment), row in grouped.items():
        if not current:
            before[key] = row
        elif segment == SEGMENT_COUNTED:
            counted[key] = row
        else:
            excluded.setdefault(segment, FunnelRow(label=str(SEGMENT_LABELS[segment]))).add(row)
    if include_excluded:
        for segment in SEGMENTS:
            if segment != SEGMENT_COUNTED:
                excluded.setdefault(segment, FunnelRow(label=str(SEGMENT_LABELS[segment])))
    rows = list(counted.values())
    for row in rows:
        if by is None:
            row.label, row.export_key = str(_l("All")), "all"
        elif row.key is None:
            row.label, row.export_key = str(NONE_LABELS.get(by, "—")), None
    rows.sort(key=_sort_key(by))
    total = FunnelRow(key=None, label=str(_l("Total")), export_key="all")
    for row in rows:
        total.add(row)
    if by is None and not rows:
        rows = [FunnelRow(label=str(_l("All")), export_key="all")]
    result = Funnel(date_from=date_from, date_to=date_to, by=by, filters=filters, rows=rows, total=total,
                    previous_from=previous_from, previous_to=previous_to, excluded=excluded,
                    as_of=rollups.fresh_as_of())
    if compare:
        # Per group only for dimensions whose keys recur; days, weeks and months only as a total.
        result.previous = FunnelRow(label=str(_l("Previous period")))
        for key, row in before.items():
            result.previous.add(row)
            if by in ENTITY_DIMENSIONS:
                result.previous_rows[key] = row
    return result


# --- leaderboard ----------------------------------------------------------------------------------


@dataclass
class LeaderRow:
    """One advisor's standing in a period."""

    advisor_id: int
    name: str
    email: str
    accounts_opened: int
    funded_amount: Decimal
    unique_visitors: int
    content_count: int
    rank: int = 0

    @property
    def conversion_rate(self) -> float | None:
        return self.accounts_opened / self.unique_visitors if self.unique_visitors else None


def _day_bounds(date_from: date, date_to: date) -> tuple[datetime, datetime]:
    from datetime import time

    return (datetime.combine(date_from, time(0), BUSINESS_TZ),
            datetime.combine(date_to + timedelta(days=1), time(0), BUSINESS_TZ))


def leaderboard(scope: int | None, date_from: date, date_to: date, limit: int = 50) -> list[LeaderRow]:
    """Star advisors of a period (明星投顾): accounts opened (net), funded amount (net), conversion rate
    (accounts per unique visitor) and content count (packages approved in the period).

    Counted figures only: employees' own accounts and confirmed fraud never count. Ranked by accounts
    opened, then funded amount. Three queries whatever the number of advisors.
    """
    check_range(date_from, date_to)
    table, dimension = _source("advisor", {})
    stmt = (sa.select(table.advisor_id.label("key"), *_sums(table))
            .where(*_where(table, dimension, scope, date_from, date_to, {}), table.segment == SEGMENT_COUNTED,
                   table.advisor_id.is_not(None))
            .group_by(table.advisor_id))
    figures = {values.key: _row_of(values) for values in db.session.execute(stmt)}
    start, end = _day_bounds(date_from, date_to)
    content_stmt = (sa.select(Package.author_id, sa.func.count(sa.distinct(Approval.package_id)))
                    .join(Package, Package.id == Approval.package_id)
                    .where(Approval.stage == STAGE_PACKAGE, Approval.approved_at >= start, Approval.approved_at < end)
                    .group_by(Package.author_id))
    if scope is not None:
        content_stmt = content_stmt.where(Package.author_id == scope)
    content = dict(db.session.execute(content_stmt).all())
    ids = set(figures) | set(content)
    if not ids:
        return []
    people = {r.id: r for r in db.session.execute(sa.select(User.id, User.name, User.email).where(User.id.in_(ids)))}
    rows = []
    for advisor_id in ids:
        figure = figures.get(advisor_id, FunnelRow())
        person = people.get(advisor_id)
        rows.append(LeaderRow(advisor_id=advisor_id, name=person.name if person else str(advisor_id),
                              email=person.email if person else "", accounts_opened=figure.accounts_opened,
                              funded_amount=figure.funded_amount, unique_visitors=figure.unique_visitors,
                              content_count=int(content.get(advisor_id, 0))))
    rows.sort(key=lambda r: (-r.accounts_opened, -r.funded_amount, -(r.conversion_rate or 0), -r.content_count,
                             r.name, r.advisor_id))
    for number, row in enumerate(rows, start=1):
        row.rank = number
    return rows[:limit]


# --- AARRR ----------------------------------------------------------------------------------------


@dataclass
class Aarrr:
    """Acquisition, activation, retention, revenue, referral of one period."""

    acquisition: int  # unique visitors
    activation: int  # accounts opened (net)
    retained: int  # customers opened in the period with a further event >= RETENTION_DAYS later
    retention_eligible: int  # customers opened in the period at least RETENTION_DAYS ago
    revenue: Decimal  # funded amount net of withdrawals
    referral: int  # accounts opened through a customer's own link (以老带新)

    @property
    def retention_rate(self) -> float | None:
        return self.retained / self.retention_eligible if self.retention_eligible else None


def _plus_days(column, days: int):
    if db.session.get_bind().dialect.name == "postgresql":
        return column + sa.literal_column(f"interval '{int(days)} days'")
    return sa.func.datetime(column, f"+{int(days)} days")


def retention(scope: int | None, date_from: date, date_to: date, filters: dict | None = None,
              now: datetime | None = None) -> tuple[int, int]:
    """(retained, eligible): customers whose first counted account_opened falls in the period and lies at
    least RETENTION_DAYS before ``now`` (eligible), and of those, the ones with any further event
    other than a rejection at least RETENTION_DAYS after opening (retained). From the raw conversions:
    a customer's later events carry the attribution of the first, so scope and filters apply as to
    the opening. Two queries."""
    filters = dict(filters or {})
    now = now or utcnow()
    start, end = _day_bounds(date_from, date_to)
    conditions = [Conversion.event == "account_opened", Conversion.occurred_at >= start,
                  Conversion.occurred_at < end, rollups.conversion_segment() == SEGMENT_COUNTED]
    if scope is not None:
        conditions.append(Conversion.advisor_id == scope)
    columns = {"advisor": Conversion.advisor_id, "package": Conversion.package_id, "partner": Conversion.partner_id,
               "channel": Conversion.channel_id, "group": Conversion.group_id, "campaign": Conversion.campaign}
    for name, value in filters.items():
        if name == "platform":
            conditions.append(Conversion.channel_id.in_(sa.select(Channel.id).where(Channel.platform == value)))
        else:
            conditions.append(columns[name] == value)
    openings = (sa.select(Conversion.customer_id, sa.func.min(Conversion.occurred_at).label("opened_at"))
                .where(*conditions).group_by(Conversion.customer_id).subquery())
    cutoff = now - timedelta(days=RETENTION_DAYS)
    eligible = db.session.scalar(sa.select(sa.func.count()).select_from(openings)
                                 .where(openings.c.opened_at <= cutoff)) or 0
    later = so.aliased(Conversion)
    further = (sa.select(sa.literal(1)).select_from(later)
               .where(later.customer_id == openings.c.customer_id, later.event != "account_rejected",
                      later.occurred_at >= _plus_days(openings.c.opened_at, RETENTION_DAYS)).exists())
    retained = db.session.scalar(sa.select(sa.func.count()).select_from(openings)
                                 .where(openings.c.opened_at <= cutoff, further)) or 0
    return int(retained), int(eligible)


def aarrr(scope: int | None, date_from: date, date_to: date, filters: dict | None = None) -> Aarrr:
    """The AARRR panel of a period (three queries)."""
    result = funnel(scope, date_from, date_to, filters=filters, compare=False)
    retained, eligible = retention(scope, date_from, date_to, filters)
    total = result.total
    return Aarrr(acquisition=total.unique_visitors, activation=total.accounts_opened, retained=retained,
                 retention_eligible=eligible, revenue=total.funded_amount, referral=total.customer_referrals)


# --- filter choices (pages) ----------------------------------------------------------------------


def filter_choices(scope: int | None) -> dict[str, list[tuple]]:
    """(value, label) options of every filter select, limited to ``scope`` (a handful of queries)."""
    owned = (lambda column: sa.true()) if scope is None else (lambda column: column == scope)
    advisors = db.session.execute(
        sa.select(User.id, User.name).join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == "advisor", owned(User.id)).order_by(User.name, User.id)).all()
    packages = db.session.execute(sa.select(Package.id, Package.title).where(owned(Package.author_id))
                                  .order_by(Package.id.desc()).limit(500)).all()
    partners = db.session.execute(sa.select(Partner.id, Partner.name).order_by(Partner.name)).all()
    channels = db.session.execute(sa.select(Channel.id, Channel.platform, Channel.handle, Partner.name)
                                  .join(Partner, Partner.id == Channel.partner_id)
                                  .order_by(Partner.name, Channel.platform, Channel.handle)).all()
    groups = db.session.execute(sa.select(CommunityGroup.id, CommunityGroup.name)
                                .where(owned(CommunityGroup.owner_id)).order_by(CommunityGroup.name)).all()
    campaigns = db.session.scalars(sa.select(ReferralLink.campaign).where(ReferralLink.campaign.is_not(None),
                                                                          owned(ReferralLink.owner_id))
                                   .distinct().order_by(ReferralLink.campaign).limit(500)).all()
    return {
        "advisor": [(r.id, r.name) for r in advisors],
        "package": [(r.id, r.title) for r in packages],
        "platform": [(p, str(PLATFORM_LABELS[p])) for p in CHANNEL_PLATFORMS],
        "partner": [(r.id, r.name) for r in partners],
        "channel": [(r.id, f"{r.name} · {PLATFORM_LABELS.get(r.platform, r.platform)} {r.handle}") for r in channels],
        "group": [(r.id, r.name) for r in groups],
        "campaign": [(c, c) for c in campaigns],
    }
