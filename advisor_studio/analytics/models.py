"""Analytics: daily rollups of clicks and conversions, fraud flags, reconciliation uploads and
partner-reported post metrics.

The raw ``clicks`` and ``conversions`` tables (referrals) stay the truth. ``analytics_daily`` is derived
from them and can be rebuilt for any range of days at any time: one row per (business day, link, segment)
with every attribution dimension copied onto the row, so the funnel, the rankings and the CSV export
group plain indexed columns with no joins. Per (day, link) the unique-visitor counts are additive, which
is exactly how `flask links stats` counts them (a visitor counts once per link per day).

``segment`` says whether a row counts or why it is held out, so the pages can show what was excluded:
``counted``, ``bot`` (crawler user agents and HEAD requests), ``employee`` (employees' own accounts)
or ``fraud`` (covered by a confirmed fraud flag). A fraud flag is never a silent drop: it is a row here
that an officer confirms or clears, and only a confirmed flag moves its clicks and conversions out of
``counted``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
import sqlalchemy.orm as so

from advisor_studio.dbtypes import UTCDateTime, utcnow
from advisor_studio.extensions import db

SEGMENT_COUNTED = "counted"
SEGMENT_BOT = "bot"
SEGMENT_EMPLOYEE = "employee"
SEGMENT_FRAUD = "fraud"
SEGMENTS = (SEGMENT_COUNTED, SEGMENT_BOT, SEGMENT_EMPLOYEE, SEGMENT_FRAUD)

BIGINT = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class RollupMeasures:
    """The additive measures of a rollup row, the same in analytics_daily and in its advisor slices."""

    clicks: so.Mapped[int] = so.mapped_column(default=0)
    duplicate_clicks: so.Mapped[int] = so.mapped_column(default=0)
    unique_visitors: so.Mapped[int] = so.mapped_column(default=0)
    signups: so.Mapped[int] = so.mapped_column(default=0)
    accounts_opened: so.Mapped[int] = so.mapped_column(default=0)
    # account_rejected events reversing an account_opened of the same customer on the same link.
    accounts_rejected: so.Mapped[int] = so.mapped_column(default=0)
    funded_count: so.Mapped[int] = so.mapped_column(default=0)
    funded_amount: so.Mapped[Decimal] = so.mapped_column(sa.Numeric(18, 2), default=Decimal("0"))
    withdrawals: so.Mapped[int] = so.mapped_column(default=0)
    withdrawn_amount: so.Mapped[Decimal] = so.mapped_column(sa.Numeric(18, 2), default=Decimal("0"))
    first_trades: so.Mapped[int] = so.mapped_column(default=0)
    # Conversions credited to a referring customer (customer-to-customer links, 以老带新).
    customer_referrals: so.Mapped[int] = so.mapped_column(default=0)


class DailyRollup(RollupMeasures, db.Model):
    """Clicks and conversions of one business day (Beijing) on one link (``link_id`` None: unattributed conversions)."""

    __tablename__ = "analytics_daily"

    id: so.Mapped[int] = so.mapped_column(BIGINT, primary_key=True)
    day: so.Mapped[date] = so.mapped_column(sa.Date)
    segment: so.Mapped[str] = so.mapped_column(sa.String(12))
    link_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("referral_links.id"))
    advisor_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    package_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("packages.id"))
    channel_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("channels.id"))
    partner_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("partners.id"))
    group_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("community_groups.id"))
    platform: so.Mapped[str | None] = so.mapped_column(sa.String(32))  # the channel's platform
    campaign: so.Mapped[str | None] = so.mapped_column(sa.String(64))

    __table_args__ = (
        sa.CheckConstraint(sa.column("segment").in_(SEGMENTS), name="segment_known"),
        sa.Index("ix_analytics_daily_day_segment", "day", "segment"),
        sa.Index("ix_analytics_daily_advisor_day", "advisor_id", "day"),
        sa.Index("ix_analytics_daily_link_day", "link_id", "day"),
    )


# The dimensions an AdvisorDailyRollup row can be sliced by ("all": the advisor's whole day), each with
# the column of analytics_daily (and of the slices) that holds its value.
SLICE_ALL = "all"
SLICE_COLUMNS = {"package": "package_id", "channel": "channel_id", "partner": "partner_id", "group": "group_id",
                 "platform": "platform", "campaign": "campaign"}
SLICES = (SLICE_ALL, *SLICE_COLUMNS)


class AdvisorDailyRollup(RollupMeasures, db.Model):
    """``analytics_daily`` summed without the link: one row per (business day, segment, advisor, one
    dimension's value), for the funnels that name at most one dimension besides the advisor.

    ``dimension`` says which column a row is sliced by ("all": none, the advisor's whole day); only that
    column is set, the other dimension columns are NULL. A ``group`` row with ``group_id`` NULL holds
    the advisor's day outside any group. An advisor with ten links in three groups has four group rows
    a day where analytics_daily has ten, and one "all" row. Maintained with analytics_daily, in the same
    transaction, from its rows (rollups.py); the measures mean exactly what they mean there.

    No foreign keys: every value is copied from an analytics_daily row in the same statement, whose
    own foreign keys hold it; checking each derived row again cost a third of writing the slices.
    """

    __tablename__ = "analytics_advisor_daily"

    id: so.Mapped[int] = so.mapped_column(BIGINT, primary_key=True)
    day: so.Mapped[date] = so.mapped_column(sa.Date)
    segment: so.Mapped[str] = so.mapped_column(sa.String(12))
    dimension: so.Mapped[str] = so.mapped_column(sa.String(12))
    advisor_id: so.Mapped[int | None] = so.mapped_column()
    package_id: so.Mapped[int | None] = so.mapped_column()
    channel_id: so.Mapped[int | None] = so.mapped_column()
    partner_id: so.Mapped[int | None] = so.mapped_column()
    group_id: so.Mapped[int | None] = so.mapped_column()
    platform: so.Mapped[str | None] = so.mapped_column(sa.String(32))
    campaign: so.Mapped[str | None] = so.mapped_column(sa.String(64))

    __table_args__ = (
        sa.CheckConstraint(sa.column("segment").in_(SEGMENTS), name="segment_known"),
        sa.CheckConstraint(sa.column("dimension").in_(SLICES), name="dimension_known"),
        sa.CheckConstraint(" AND ".join(f"(dimension = '{name}' OR {column} IS NULL)"
                                        for name, column in SLICE_COLUMNS.items()), name="only_its_dimension"),
        # Everyone's slices of one dimension over a range (by group, by campaign ...): the counted rows
        # only, which a bitmap scan finds on a few pages where (dimension, day) made a seq scan cheaper.
        sa.Index("ix_analytics_advisor_daily_dimension_segment_day", "dimension", "segment", "day"),
        # One advisor's slices (their own funnel, with or without one more dimension).
        sa.Index("ix_analytics_advisor_daily_advisor_dimension_day", "advisor_id", "dimension", "day"),
        # The refresh replaces whole days.
        sa.Index("ix_analytics_advisor_daily_day", "day"),
    )


class RollupState(db.Model):
    """Bookkeeping of the incremental refresh: one row per rollup (``name``), the high-water marks of
    the raw tables it has folded in, and when it last caught up (the "up to 14:05" on the pages)."""

    __tablename__ = "analytics_rollup_state"

    name: so.Mapped[str] = so.mapped_column(sa.String(32), primary_key=True)
    last_click_pk: so.Mapped[int] = so.mapped_column(BIGINT, default=0)
    last_conversion_pk: so.Mapped[int] = so.mapped_column(BIGINT, default=0)
    # Every raw row recorded at or before this instant is folded in.
    fresh_as_of: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    refreshed_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)


class DirtyDay(db.Model):
    """A day whose rollup rows must be recomputed although no new raw row arrived (a fraud flag was
    confirmed or cleared, an employee was marked): the next refresh recomputes it and deletes the row."""

    __tablename__ = "analytics_dirty_days"

    day: so.Mapped[date] = so.mapped_column(sa.Date, primary_key=True)
    marked_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)


FLAG_SHORT_LAG = "short_lag"  # click to signup implausibly fast
FLAG_VISITOR_BURST = "visitor_burst"  # many clicks from one visitor hash
FLAG_NETWORK_BURST = "network_burst"  # many clicks from one /24 (/48)
FLAG_SELF_CONVERSION = "self_conversion"  # an advisor converting their own or an employee's account
FLAG_SIGNUP_BURST = "signup_burst"  # many signups from one device class and network within minutes
FLAG_KINDS = (FLAG_SHORT_LAG, FLAG_VISITOR_BURST, FLAG_NETWORK_BURST, FLAG_SELF_CONVERSION, FLAG_SIGNUP_BURST)

FLAG_OPEN = "open"
FLAG_CONFIRMED = "confirmed"
FLAG_CLEARED = "cleared"
FLAG_STATUSES = (FLAG_OPEN, FLAG_CONFIRMED, FLAG_CLEARED)


class FraudFlag(db.Model):
    """A pattern that looks fake, for an officer to confirm (held out of the figures) or clear."""

    __tablename__ = "fraud_flags"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(24))
    # What the flag is about, stable across detection runs (e.g. "conversion:123",
    # "network:203.0.113.0/24:2026-11-30T10"): detection is idempotent per (kind, subject).
    subject: so.Mapped[str] = so.mapped_column(sa.String(200))
    status: so.Mapped[str] = so.mapped_column(sa.String(12), default=FLAG_OPEN)
    advisor_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    day: so.Mapped[date] = so.mapped_column(sa.Date)  # business day of the earliest event covered
    detail: so.Mapped[dict] = so.mapped_column(sa.JSON, default=dict)  # the numbers that raised it
    detected_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    decided_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    decided_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    decision_note: so.Mapped[str | None] = so.mapped_column(sa.Text)

    advisor = so.relationship("User", foreign_keys=[advisor_id])
    decided_by = so.relationship("User", foreign_keys=[decided_by_id])
    items: so.Mapped[list[FraudFlagItem]] = so.relationship(back_populates="flag", order_by="FraudFlagItem.id")

    __table_args__ = (
        sa.CheckConstraint(sa.column("kind").in_(FLAG_KINDS), name="kind_known"),
        sa.CheckConstraint(sa.column("status").in_(FLAG_STATUSES), name="status_known"),
        sa.UniqueConstraint("kind", "subject", name="uq_fraud_flags_kind_subject"),
        sa.Index("ix_fraud_flags_status_day", "status", "day"),
    )


class FraudFlagItem(db.Model):
    """One click or one conversion covered by a flag (exactly one of the two)."""

    __tablename__ = "fraud_flag_items"

    id: so.Mapped[int] = so.mapped_column(BIGINT, primary_key=True)
    flag_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("fraud_flags.id"), index=True)
    click_pk: so.Mapped[int | None] = so.mapped_column(BIGINT, sa.ForeignKey("clicks.id"), index=True)
    conversion_pk: so.Mapped[int | None] = so.mapped_column(BIGINT, sa.ForeignKey("conversions.id"), index=True)

    flag: so.Mapped[FraudFlag] = so.relationship(back_populates="items")

    __table_args__ = (
        sa.CheckConstraint("(click_pk IS NULL) <> (conversion_pk IS NULL)", name="one_subject"),
        # NULLs are distinct in unique indexes on both backends: one index per kind of subject.
        sa.Index("uq_fraud_flag_items_click", "flag_id", "click_pk", unique=True),
        sa.Index("uq_fraud_flag_items_conversion", "flag_id", "conversion_pk", unique=True),
    )


class ReconciliationUpload(db.Model):
    """An account-opening system's CSV of accounts opened in a period, kept as evidence, and the result
    of matching it against the conversions recorded here."""

    __tablename__ = "reconciliation_uploads"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    period_from: so.Mapped[date] = so.mapped_column(sa.Date)
    period_to: so.Mapped[date] = so.mapped_column(sa.Date)
    filename: so.Mapped[str] = so.mapped_column(sa.String(255))
    storage_key: so.Mapped[str] = so.mapped_column(sa.String(255))  # the uploaded bytes, unchanged
    sha256: so.Mapped[str] = so.mapped_column(sa.String(64))
    size_bytes: so.Mapped[int] = so.mapped_column(BIGINT)
    encoding: so.Mapped[str] = so.mapped_column(sa.String(16))  # as detected: utf-8, utf-8-sig, gb18030
    row_count: so.Mapped[int]
    matched: so.Mapped[int]
    missing_here: so.Mapped[int]  # in their file, not recorded here
    missing_there: so.Mapped[int]  # recorded here, not in their file
    # Totals and the unmatched references (hashed as customers are), for the result page.
    result: so.Mapped[dict] = so.mapped_column(sa.JSON, default=dict)
    uploaded_by_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    uploaded_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    uploaded_by = so.relationship("User")

    __table_args__ = (sa.CheckConstraint("period_from <= period_to", name="period_ordered"),)


class PublicationMetric(db.Model):
    """A partner's report of a post's counters at one instant; idempotent per (publication, time)."""

    __tablename__ = "publication_metrics"

    id: so.Mapped[int] = so.mapped_column(BIGINT, primary_key=True)
    publication_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("publications.id"))
    observed_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime)
    views: so.Mapped[int] = so.mapped_column(BIGINT)
    likes: so.Mapped[int] = so.mapped_column(BIGINT)
    comments: so.Mapped[int] = so.mapped_column(BIGINT)
    shares: so.Mapped[int] = so.mapped_column(BIGINT)
    reported_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    reported_by_key_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("partner_api_keys.id"))
    reported_by_user_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))

    __table_args__ = (
        sa.UniqueConstraint("publication_id", "observed_at", name="uq_publication_metrics_publication_time"),
        sa.CheckConstraint("views >= 0 AND likes >= 0 AND comments >= 0 AND shares >= 0",
                           name="counters_nonnegative"),
    )
