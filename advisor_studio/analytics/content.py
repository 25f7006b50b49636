"""Content performance: per package and channel, the partner-reported post metrics joined with the
clicks and conversions of the rollups, so the top of the funnel starts at views.

One query layer serves the page and its CSV export (same filters, same numbers):

- views, likes, comments, shares: per publication, the counters of its latest report observed within
  the period (platform counters are cumulative since posting), summed over the package's publications
  on that channel;
- clicks, unique visitors, accounts opened (net of ``account_rejected``), funded amount (net of
  withdrawals): ``analytics_daily`` rows of the period's business days (Beijing) in the ``counted`` segment only (bots,
  employees and confirmed fraud are held out there);
- rates: clicks / views and accounts opened / clicks (None when the divisor is 0).

Every query is scoped by ``advisor_scope``: an advisor sees only the packages they authored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_babel import gettext as _
from flask_sqlalchemy.pagination import Pagination

from advisor_studio.analytics.models import SEGMENT_COUNTED, DailyRollup, PublicationMetric
from advisor_studio.dbtypes import BUSINESS_TZ, business_today
from advisor_studio.distribution.models import CHANNEL_PLATFORMS, Assignment, Channel, Publication
from advisor_studio.errors import ValidationError
from advisor_studio.extensions import db
from advisor_studio.studio.models import Package

DEFAULT_DAYS = 30
MAX_RANGE_DAYS = 366
EXPORT_MAX_ROWS = 50_000
COLUMNS = ("package_id", "package", "advisor", "channel_id", "platform", "channel", "views", "likes", "comments",
           "shares", "clicks", "unique_visitors", "accounts_opened", "funded_amount", "click_rate", "open_rate")
TEXT_COLUMNS = frozenset({"package", "advisor", "channel"})  # free text typed by people: escaped in CSV


@dataclass(frozen=True)
class Filters:
    """The filters of the page and its export; ``advisor_scope`` comes from permissions, never the request."""

    date_from: date
    date_to: date
    advisor_scope: int | None = None
    advisor_id: int | None = None
    platform: str | None = None
    package_id: int | None = None


@dataclass
class Row:
    """One (package, channel) line; ``channel_id`` None: clicks of the package's links without a channel."""

    package_id: int
    channel_id: int | None
    views: int = 0
    likes: int = 0
    comments: int = 0
    shares: int = 0
    clicks: int = 0
    unique_visitors: int = 0
    accounts_opened: int = 0
    funded_amount: Decimal = field(default_factory=lambda: Decimal("0.00"))
    package: Package | None = None
    channel: Channel | None = None

    @property
    def funded_text(self) -> str:
        return f"{self.funded_amount:.2f}"

    @property
    def click_rate(self) -> float | None:
        return self.clicks / self.views if self.views else None

    @property
    def open_rate(self) -> float | None:
        return self.accounts_opened / self.clicks if self.clicks else None


def make_filters(*, date_from: date | None, date_to: date | None, advisor_scope: int | None,
                 advisor_id: int | None = None, platform: str | None = None, package_id: int | None = None,
                 today: date | None = None) -> Filters:
    """Checked filters (defaults: the last 30 business days); a ValidationError names each bad one."""
    today = today or business_today()
    date_to = date_to or (today if date_from is None else date_from + timedelta(days=DEFAULT_DAYS - 1))
    date_from = date_from or date_to - timedelta(days=DEFAULT_DAYS - 1)
    fields: dict[str, str] = {}
    if date_to < date_from:
        fields["to"] = _("the end is before the start")
    elif (date_to - date_from).days + 1 > MAX_RANGE_DAYS:
        fields["to"] = _("at most %(n)d days from the start", n=MAX_RANGE_DAYS)
    if platform is not None and platform not in CHANNEL_PLATFORMS:
        fields["platform"] = _("unknown platform")
    if fields:
        raise ValidationError(_("The filters cannot be used: %(why)s.", why="; ".join(fields.values())),
                              fields=fields, code="bad_query")
    if advisor_scope is not None:
        advisor_id = None  # an advisor's own scope is the only advisor filter that applies
    return Filters(date_from=date_from, date_to=date_to, advisor_scope=advisor_scope, advisor_id=advisor_id,
                   platform=platform, package_id=package_id)


def _bounds(filters: Filters) -> tuple[datetime, datetime]:
    start = datetime.combine(filters.date_from, time.min, tzinfo=BUSINESS_TZ)
    return start, datetime.combine(filters.date_to + timedelta(days=1), time.min, tzinfo=BUSINESS_TZ)


def _package_conditions(filters: Filters, package_col, channel_col) -> list:
    conditions = []
    advisor = filters.advisor_scope if filters.advisor_scope is not None else filters.advisor_id
    if advisor is not None:
        conditions.append(package_col.in_(sa.select(Package.id).where(Package.author_id == advisor)))
    if filters.package_id is not None:
        conditions.append(package_col == filters.package_id)
    if filters.platform is not None:
        conditions.append(channel_col.in_(sa.select(Channel.id).where(Channel.platform == filters.platform)))
    return conditions


def _metrics_subquery(filters: Filters):
    start, end = _bounds(filters)
    latest = (sa.select(PublicationMetric.publication_id,
                        sa.func.max(PublicationMetric.observed_at).label("observed_at"))
              .where(PublicationMetric.observed_at >= start, PublicationMetric.observed_at < end)
              .group_by(PublicationMetric.publication_id).subquery("latest"))
    channel_key = sa.func.coalesce(Assignment.channel_id, 0)
    stmt = (sa.select(Assignment.package_id.label("package_id"), channel_key.label("channel_key"),
                      sa.func.sum(PublicationMetric.views).label("views"),
                      sa.func.sum(PublicationMetric.likes).label("likes"),
                      sa.func.sum(PublicationMetric.comments).label("comments"),
                      sa.func.sum(PublicationMetric.shares).label("shares"))
            .select_from(latest)
            .join(PublicationMetric, sa.and_(PublicationMetric.publication_id == latest.c.publication_id,
                                             PublicationMetric.observed_at == latest.c.observed_at))
            .join(Publication, Publication.id == PublicationMetric.publication_id)
            .join(Assignment, Assignment.id == Publication.assignment_id)
            .where(*_package_conditions(filters, Assignment.package_id, Assignment.channel_id))
            .group_by(Assignment.package_id, channel_key))
    return stmt.subquery("m")


def _rollup_subquery(filters: Filters):
    channel_key = sa.func.coalesce(DailyRollup.channel_id, 0)
    conditions = [DailyRollup.segment == SEGMENT_COUNTED, DailyRollup.day >= filters.date_from,
                  DailyRollup.day <= filters.date_to, DailyRollup.package_id.is_not(None),
                  *_package_conditions(filters, DailyRollup.package_id, DailyRollup.channel_id)]
    stmt = (sa.select(DailyRollup.package_id.label("package_id"), channel_key.label("channel_key"),
                      sa.func.sum(DailyRollup.clicks).label("clicks"),
                      sa.func.sum(DailyRollup.unique_visitors).label("unique_visitors"),
                      sa.func.sum(DailyRollup.accounts_opened - DailyRollup.accounts_rejected).label("opened"),
                      sa.func.sum(DailyRollup.funded_amount - DailyRollup.withdrawn_amount).label("funded"))
            .where(*conditions).group_by(DailyRollup.package_id, channel_key))
    return stmt.subquery("r")


def _combined(filters: Filters):
    """One row per (package, channel key) with every figure, as a subquery."""
    m, r = _metrics_subquery(filters), _rollup_subquery(filters)
    keys = sa.union(sa.select(m.c.package_id, m.c.channel_key),
                    sa.select(r.c.package_id, r.c.channel_key)).subquery("k")
    zero = sa.literal(0)
    stmt = (sa.select(keys.c.package_id, keys.c.channel_key,
                      sa.func.coalesce(m.c.views, zero).label("views"),
                      sa.func.coalesce(m.c.likes, zero).label("likes"),
                      sa.func.coalesce(m.c.comments, zero).label("comments"),
                      sa.func.coalesce(m.c.shares, zero).label("shares"),
                      sa.func.coalesce(r.c.clicks, zero).label("clicks"),
                      sa.func.coalesce(r.c.unique_visitors, zero).label("unique_visitors"),
                      sa.func.coalesce(r.c.opened, zero).label("accounts_opened"),
                      sa.func.coalesce(r.c.funded, zero).label("funded_amount"))
            .select_from(keys)
            .outerjoin(m, sa.and_(m.c.package_id == keys.c.package_id, m.c.channel_key == keys.c.channel_key))
            .outerjoin(r, sa.and_(r.c.package_id == keys.c.package_id, r.c.channel_key == keys.c.channel_key)))
    return stmt.subquery("perf")


def _ordered(perf) -> sa.Select:
    # Most viewed first, then most clicked; ids make the order total so pages never overlap.
    return sa.select(perf).order_by(perf.c.views.desc(), perf.c.clicks.desc(), perf.c.package_id.desc(),
                                    perf.c.channel_key)


def _to_rows(records) -> list[Row]:
    rows = [Row(package_id=rec.package_id, channel_id=rec.channel_key or None, views=int(rec.views),
                likes=int(rec.likes), comments=int(rec.comments), shares=int(rec.shares), clicks=int(rec.clicks),
                unique_visitors=int(rec.unique_visitors), accounts_opened=int(rec.accounts_opened),
                funded_amount=Decimal(rec.funded_amount or 0).quantize(Decimal("0.01"))) for rec in records]
    _attach(rows)
    return rows


def _attach(rows: list[Row]) -> None:
    """Packages (with their authors) and channels of the rows, in two queries."""
    package_ids = {row.package_id for row in rows}
    channel_ids = {row.channel_id for row in rows if row.channel_id}
    packages = {p.id: p for p in db.session.scalars(
        sa.select(Package).where(Package.id.in_(package_ids)).options(so.joinedload(Package.author)))} \
        if package_ids else {}
    channels = {c.id: c for c in db.session.scalars(
        sa.select(Channel).where(Channel.id.in_(channel_ids)).options(so.joinedload(Channel.partner)))} \
        if channel_ids else {}
    for row in rows:
        row.package = packages.get(row.package_id)
        row.channel = channels.get(row.channel_id) if row.channel_id else None


class RowsPage(Pagination):
    """A page of performance rows (the figures are rows of a grouped query, not ORM objects)."""

    def _query_items(self) -> list[Row]:
        perf = self._query_args["perf"]
        records = db.session.execute(_ordered(perf).limit(self.per_page).offset(self._query_offset))
        return _to_rows(records)

    def _query_count(self) -> int:
        perf = self._query_args["perf"]
        return int(db.session.scalar(sa.select(sa.func.count()).select_from(perf)) or 0)


def performance_page(filters: Filters, *, page: int, per_page: int) -> RowsPage:
    """One page of rows, most viewed first."""
    return RowsPage(page=page, per_page=per_page, max_per_page=100, error_out=False, perf=_combined(filters))


def performance_rows(filters: Filters, limit: int = EXPORT_MAX_ROWS) -> list[Row]:
    """Every row (up to ``limit``) in the page's order: the CSV export."""
    return _to_rows(db.session.execute(_ordered(_combined(filters)).limit(limit)))


def totals(filters: Filters) -> Row:
    """The sums over every row of the period (not just one page)."""
    perf = _combined(filters)
    rec = db.session.execute(sa.select(*[sa.func.coalesce(sa.func.sum(perf.c[name]), 0).label(name) for name in (
        "views", "likes", "comments", "shares", "clicks", "unique_visitors", "accounts_opened",
        "funded_amount")])).one()
    return Row(package_id=0, channel_id=None, views=int(rec.views), likes=int(rec.likes), comments=int(rec.comments),
               shares=int(rec.shares), clicks=int(rec.clicks), unique_visitors=int(rec.unique_visitors),
               accounts_opened=int(rec.accounts_opened),
               funded_amount=Decimal(rec.funded_amount or 0).quantize(Decimal("0.01")))


def csv_record(row: Row) -> list:
    """One export line, in ``COLUMNS`` order, with the same numbers as the page."""
    package, channel = row.package, row.channel
    return [row.package_id, package.title if package else "", package.author.name if package and package.author
            else "", row.channel_id or "", channel.platform if channel else "", channel.label if channel else "",
            row.views, row.likes, row.comments, row.shares, row.clicks, row.unique_visitors, row.accounts_opened,
            row.funded_text, rate_text(row.click_rate), rate_text(row.open_rate)]


def rate_text(rate: float | None) -> str:
    """A rate as a percentage with two decimals, as the page shows it ("" when undefined)."""
    return "" if rate is None else f"{rate * 100:.2f}%"
