"""Community groups, referral links, clicks, customers and conversions.

Clicks and conversions are append-only and carry every attribution dimension (advisor, package,
channel, partner, group, campaign, day) on the row itself, copied from the link when they are
recorded: the analytics rollups group by plain indexed columns with no joins, and a later change to
a link (which makes a new link anyway) cannot rewrite history.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_babel import lazy_gettext as _l

from advisor_studio.dbtypes import UTCDateTime, utcnow
from advisor_studio.extensions import db

GROUP_PLATFORMS = ("wecom", "wechat", "qq", "feishu", "dingtalk", "other")
GROUP_PLATFORM_LABELS = {
    "wecom": _l("WeCom"),
    "wechat": _l("WeChat"),
    "qq": _l("QQ"),
    "feishu": _l("Feishu"),
    "dingtalk": _l("DingTalk"),
    "other": _l("Other"),
}

# Where a link is meant to be placed; the kind follows from which dimensions it names.
LINK_PACKAGE = "package"  # a package on one channel (its code is part of the approval manifest)
LINK_GROUP = "group"  # an advisor's community group (optionally for one package)
LINK_GENERAL = "general"  # an advisor's own link (business card, profile)
LINK_CUSTOMER = "customer"  # a converted customer's own link (以老带新)
LINK_KINDS = (LINK_PACKAGE, LINK_GROUP, LINK_GENERAL, LINK_CUSTOMER)

IN_APP_BROWSERS = ("wechat", "wecom", "douyin", "other", "none")
IN_APP_LABELS = {"wechat": _l("WeChat"), "wecom": _l("WeCom"), "douyin": _l("Douyin"), "other": _l("Other app"),
                 "none": _l("Not in an app")}
DEVICE_CLASSES = ("mobile", "tablet", "desktop", "bot", "other")
DEVICE_LABELS = {"mobile": _l("Phone"), "tablet": _l("Tablet"), "desktop": _l("Computer"), "bot": _l("Bot"),
                 "other": _l("Other device")}

EVENTS = ("signup", "account_opened", "funded", "first_trade", "account_rejected", "withdrawal")


class CommunityGroup(db.Model):
    """A WeCom/WeChat/QQ/... group run by an advisor (社群)."""

    __tablename__ = "community_groups"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    owner_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    platform: so.Mapped[str] = so.mapped_column(sa.String(16))
    name: so.Mapped[str] = so.mapped_column(sa.String(120))
    external_id: so.Mapped[str | None] = so.mapped_column(sa.String(128))
    member_count: so.Mapped[int] = so.mapped_column(default=0)
    tags: so.Mapped[list] = so.mapped_column(sa.JSON, default=list)
    active: so.Mapped[bool] = so.mapped_column(default=True)
    archived_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    owner = so.relationship("User")

    __table_args__ = (
        sa.CheckConstraint(sa.column("platform").in_(GROUP_PLATFORMS), name="platform_known"),
        sa.CheckConstraint("member_count >= 0", name="member_count_nonnegative"),
        sa.UniqueConstraint("platform", "external_id", name="uq_community_groups_platform_external_id"),
    )


class GroupMemberCount(db.Model):
    """One observation of a group's member count (the history behind CommunityGroup.member_count)."""

    __tablename__ = "group_member_counts"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    group_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("community_groups.id"), index=True)
    member_count: so.Mapped[int]
    recorded_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    recorded_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))


class ReferralLink(db.Model):
    """A short code redirecting to an account-opening page, naming every attribution dimension.

    A live link's destination and dimensions never change: changing them makes a new link
    (``replaced_by_id`` on the old one), so every click keeps the meaning it had.
    """

    __tablename__ = "referral_links"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    code: so.Mapped[str] = so.mapped_column(sa.String(16), unique=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(16))
    owner_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), index=True)  # the advisor
    package_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("packages.id"), index=True)
    channel_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("channels.id"), index=True)
    partner_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("partners.id"))
    group_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("community_groups.id"), index=True)
    # A customer's own link (以老带新); use_alter: customers also point at the link they came through.
    customer_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("customers.id", use_alter=True, name="fk_referral_links_customer_id_customers"), index=True)
    campaign: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    destination: so.Mapped[str] = so.mapped_column(sa.String(1000))
    utm: so.Mapped[dict] = so.mapped_column(sa.JSON, default=dict)  # utm_source, utm_medium, ...
    expires_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    enabled: so.Mapped[bool] = so.mapped_column(default=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    disabled_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    replaced_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("referral_links.id"))

    owner = so.relationship("User", foreign_keys=[owner_id])
    package = so.relationship("Package")
    channel = so.relationship("Channel")
    group: so.Mapped[CommunityGroup | None] = so.relationship()

    __table_args__ = (
        sa.CheckConstraint(sa.column("kind").in_(LINK_KINDS), name="kind_known"),
        # One enabled, unreplaced own link per customer: two people issuing it at once get the same one.
        sa.Index("uq_referral_links_customer_current", "customer_id", unique=True,
                 postgresql_where=sa.text("kind = 'customer' AND replaced_by_id IS NULL AND enabled"),
                 sqlite_where=sa.text("kind = 'customer' AND replaced_by_id IS NULL AND enabled")),
    )


class Click(db.Model):
    """One request of /r/<code>, recorded exactly once (``click_id`` unique), append-only."""

    __tablename__ = "clicks"

    id: so.Mapped[int] = so.mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    click_id: so.Mapped[str] = so.mapped_column(sa.String(32), unique=True)
    at: so.Mapped[datetime] = so.mapped_column(UTCDateTime)
    day: so.Mapped[date] = so.mapped_column(sa.Date)  # business day (Beijing, dbtypes.business_day) of ``at``
    link_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("referral_links.id"))
    approval_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("approvals.id"))
    advisor_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    package_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("packages.id"))
    channel_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("channels.id"))
    partner_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("partners.id"))
    group_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("community_groups.id"))
    campaign: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    is_bot: so.Mapped[bool] = so.mapped_column(default=False)
    is_head: so.Mapped[bool] = so.mapped_column(default=False)
    is_duplicate: so.Mapped[bool] = so.mapped_column(default=False)
    in_app: so.Mapped[str] = so.mapped_column(sa.String(16), default="none")
    device_class: so.Mapped[str] = so.mapped_column(sa.String(16), default="other")
    # HMAC(day key, truncated IP + user agent): unique visitors per link per day, unlinkable across days.
    visitor_hash: so.Mapped[str] = so.mapped_column(sa.String(32))
    ip_prefix: so.Mapped[str | None] = so.mapped_column(sa.String(64))  # IPv4 /24, IPv6 /48

    __table_args__ = (
        sa.Index("ix_clicks_link_day", "link_id", "day"),
        sa.Index("ix_clicks_advisor_day", "advisor_id", "day"),
        sa.Index("ix_clicks_day", "day"),
    )


class Customer(db.Model):
    """A customer of the account-opening system, known only by a keyed hash of its reference."""

    __tablename__ = "customers"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    ref_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    # The attribution of the customer's first attributed event, inherited by every later one.
    link_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("referral_links.id"))
    click_id: so.Mapped[str | None] = so.mapped_column(sa.String(32))  # the click that attributed it, if any
    attributed_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    is_employee: so.Mapped[bool] = so.mapped_column(default=False)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)


class Conversion(db.Model):
    """One event posted by the account-opening system, stored once per Idempotency-Key, append-only."""

    __tablename__ = "conversions"

    id: so.Mapped[int] = so.mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    idempotency_key: so.Mapped[str] = so.mapped_column(sa.String(255), unique=True)
    body_sha256: so.Mapped[str] = so.mapped_column(sa.String(64))
    response: so.Mapped[dict] = so.mapped_column(sa.JSON)  # the first response's body, replayed verbatim
    event: so.Mapped[str] = so.mapped_column(sa.String(24))
    customer_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("customers.id"), index=True)
    occurred_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime)
    day: so.Mapped[date] = so.mapped_column(sa.Date)  # business day (Beijing) of ``occurred_at``
    received_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    amount: so.Mapped[Decimal | None] = so.mapped_column(sa.Numeric(18, 2))
    currency: so.Mapped[str] = so.mapped_column(sa.String(3), default="CNY")
    is_employee: so.Mapped[bool] = so.mapped_column(default=False)
    # The attribution this event counts under (None: unattributed), copied from the customer.
    link_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("referral_links.id"))
    advisor_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    package_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("packages.id"))
    channel_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("channels.id"))
    partner_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("partners.id"))
    group_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("community_groups.id"))
    campaign: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    # For customer-to-customer referrals: the referring customer (their advisor is advisor_id).
    referrer_customer_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("customers.id"))

    __table_args__ = (
        sa.CheckConstraint(sa.column("event").in_(EVENTS), name="event_known"),
        sa.CheckConstraint("amount IS NULL OR amount > 0", name="amount_positive"),
        sa.Index("ix_conversions_advisor_day", "advisor_id", "day"),
        sa.Index("ix_conversions_link_day", "link_id", "day"),
        sa.Index("ix_conversions_day", "day"),
    )


class SharingTask(db.Model):
    """"Share to your groups" (the MOT idea): made for the advisor when a package is approved, with one
    prepared link per active group; opening it and marking it done are recorded."""

    __tablename__ = "sharing_tasks"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    advisor_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    package_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("packages.id"), index=True)
    approval_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("approvals.id"), unique=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    opened_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    done_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    package = so.relationship("Package")
    links: so.Mapped[list[ReferralLink]] = so.relationship(secondary="sharing_task_links", order_by="ReferralLink.id")


sharing_task_links = sa.Table(
    "sharing_task_links",
    db.metadata,
    sa.Column("task_id", sa.ForeignKey("sharing_tasks.id"), primary_key=True),
    sa.Column("link_id", sa.ForeignKey("referral_links.id"), primary_key=True),
)
