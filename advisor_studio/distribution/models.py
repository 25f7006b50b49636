"""MCN partners and the platform accounts (channels) they run."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_babel import lazy_gettext as _l

from advisor_studio.dbtypes import UTCDateTime, utcnow
from advisor_studio.extensions import db

# The platform list has one owner; partners' channels use it from here too.
from advisor_studio.platforms import CHANNEL_PLATFORMS, PLATFORM_LABELS, PLATFORM_OTHER, PLATFORMS  # noqa: F401

# Assignment statuses (the ASSET status of contract.md).
ASSET_READY = "ready"
ASSET_PUBLISHED = "published"
ASSET_WITHDRAWN = "withdrawn"
ASSET_EXPIRED = "expired"
ASSET_STATUSES = (ASSET_READY, ASSET_PUBLISHED, ASSET_WITHDRAWN, ASSET_EXPIRED)
ASSET_LIVE_STATUSES = (ASSET_READY, ASSET_PUBLISHED)
ASSET_ENDED_STATUSES = (ASSET_WITHDRAWN, ASSET_EXPIRED)
ASSET_STATUS_LABELS = {
    ASSET_READY: _l("Ready to publish"),
    ASSET_PUBLISHED: _l("Published"),
    ASSET_WITHDRAWN: _l("Withdrawn"),
    ASSET_EXPIRED: _l("Expired"),
}

# Webhook event types (contract.md) and delivery states.
EVENT_ASSIGNED = "asset.assigned"
EVENT_WITHDRAWN = "asset.withdrawn"
EVENT_EXPIRED = "asset.expired"
EVENT_TAKEDOWN_OVERDUE = "takedown.overdue"
EVENT_TEST = "test"
EVENT_TYPES = (EVENT_ASSIGNED, EVENT_WITHDRAWN, EVENT_EXPIRED, EVENT_TAKEDOWN_OVERDUE, EVENT_TEST)
DELIVERY_PENDING = "pending"
DELIVERY_DELIVERED = "delivered"
DELIVERY_FAILED = "failed"  # gave up after the retry cap; an admin may re-send
DELIVERY_SKIPPED = "skipped"  # the partner has no webhook URL
DELIVERY_STATUSES = (DELIVERY_PENDING, DELIVERY_DELIVERED, DELIVERY_FAILED, DELIVERY_SKIPPED)


class Partner(db.Model):
    """An MCN agency."""

    __tablename__ = "partners"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(120), unique=True)
    contact_name: so.Mapped[str | None] = so.mapped_column(sa.String(120))
    contact_email: so.Mapped[str | None] = so.mapped_column(sa.String(254))
    contact_phone: so.Mapped[str | None] = so.mapped_column(sa.String(40))
    webhook_url: so.Mapped[str | None] = so.mapped_column(sa.String(500))
    webhook_secret: so.Mapped[str | None] = so.mapped_column(sa.String(128))
    active: so.Mapped[bool] = so.mapped_column(default=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    channels: so.Mapped[list[Channel]] = so.relationship(back_populates="partner", order_by="Channel.id")
    api_keys: so.Mapped[list[PartnerApiKey]] = so.relationship(back_populates="partner")


class Channel(db.Model):
    """One partner account on one platform."""

    __tablename__ = "channels"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    partner_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("partners.id"), index=True)
    platform: so.Mapped[str] = so.mapped_column(sa.String(32))
    handle: so.Mapped[str] = so.mapped_column(sa.String(120))
    follower_count: so.Mapped[int | None] = so.mapped_column(sa.BigInteger)
    active: so.Mapped[bool] = so.mapped_column(default=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    partner: so.Mapped[Partner] = so.relationship(back_populates="channels")

    __table_args__ = (
        sa.UniqueConstraint("platform", "handle", name="uq_channels_platform_handle"),
        sa.CheckConstraint(sa.column("platform").in_(CHANNEL_PLATFORMS), name="platform_known"),
        sa.CheckConstraint("follower_count IS NULL OR follower_count >= 0", name="follower_count_nonnegative"),
    )

    @property
    def label(self) -> str:
        """Partner, platform (in the reader's language) and handle: 星河MCN · 抖音 · @xinghe."""
        return f"{self.partner.name} · {PLATFORM_LABELS.get(self.platform, self.platform)} · {self.handle}"


class PartnerApiKey(db.Model):
    """A partner API key, stored only as a SHA-256 hash; shown once at creation."""

    __tablename__ = "partner_api_keys"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    partner_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("partners.id"), index=True)
    prefix: so.Mapped[str] = so.mapped_column(sa.String(16))
    key_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    label: so.Mapped[str | None] = so.mapped_column(sa.String(120))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    # Written at most once a minute per key (see services.touch_api_key), not on every request.
    last_used_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    revoked_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    revoked_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    revoke_reason: so.Mapped[str | None] = so.mapped_column(sa.String(500))

    partner: so.Mapped[Partner] = so.relationship(back_populates="api_keys")


class Assignment(db.Model):
    """An approved package made available to one channel: the partner API's ASSET.

    One row per (approval, channel): a renewed approval makes new rows, so an asset id always names
    exactly one approved manifest. ``partner_id`` is the channel's partner, copied so that every
    partner-scoped query filters on one indexed column.
    """

    __tablename__ = "assignments"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    approval_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("approvals.id"), index=True)
    package_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("packages.id"), index=True)
    channel_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("channels.id"), index=True)
    partner_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("partners.id"))
    status: so.Mapped[str] = so.mapped_column(sa.String(16), default=ASSET_READY)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    status_changed_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    # Set when the asset was withdrawn or expired: every reported post must be confirmed removed by then.
    takedown_due_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime, index=True)
    # When the last outstanding post was confirmed removed (NULL while any is outstanding).
    takedown_completed_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    # When takedown.overdue was raised (once per assignment).
    overdue_notified_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    # Bumped by every status change (services.transition_assignment's compare-and-set).
    version: so.Mapped[int] = so.mapped_column(server_default=sa.text("1"))

    package = so.relationship("Package")
    channel: so.Mapped[Channel] = so.relationship()
    partner: so.Mapped[Partner] = so.relationship()
    approval = so.relationship("Approval")
    publications: so.Mapped[list[Publication]] = so.relationship(back_populates="assignment",
                                                                 order_by="Publication.id")

    __table_args__ = (
        sa.UniqueConstraint("approval_id", "channel_id", name="uq_assignments_approval_channel"),
        sa.CheckConstraint(sa.column("status").in_(ASSET_STATUSES), name="status_known"),
        # The partner listing: newest first (a backward index scan), by partner and status, keyset on id.
        sa.Index("ix_assignments_partner_newest", "partner_id", "id"),
        sa.Index("ix_assignments_partner_status_newest", "partner_id", "status", "id"),
    )


class Publication(db.Model):
    """A partner's report of where and when it posted an asset."""

    __tablename__ = "publications"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    assignment_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("assignments.id"), index=True)
    partner_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("partners.id"), index=True)
    platform: so.Mapped[str] = so.mapped_column(sa.String(32))
    post_url: so.Mapped[str] = so.mapped_column(sa.String(1000))
    # post_url normalised (scheme and host lower-cased, fragment dropped): the duplicate check.
    post_url_key: so.Mapped[str] = so.mapped_column(sa.String(1000))
    published_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime)
    reported_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    reported_by_user_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    reported_by_key_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("partner_api_keys.id"))

    assignment: so.Mapped[Assignment] = so.relationship(back_populates="publications")
    takedown: so.Mapped[Takedown | None] = so.relationship(back_populates="publication", uselist=False)

    __table_args__ = (
        sa.UniqueConstraint("assignment_id", "post_url_key", name="uq_publications_assignment_post"),
        sa.CheckConstraint(sa.column("platform").in_(CHANNEL_PLATFORMS), name="platform_known"),
    )


class Takedown(db.Model):
    """A partner's confirmation that one reported post was removed."""

    __tablename__ = "takedowns"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    publication_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("publications.id"), unique=True)
    assignment_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("assignments.id"), index=True)
    partner_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("partners.id"), index=True)
    removed_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime)
    confirmed_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    confirmed_by_user_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    confirmed_by_key_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("partner_api_keys.id"))

    publication: so.Mapped[Publication] = so.relationship(back_populates="takedown")


class WebhookEvent(db.Model):
    """One event for one partner (the outbox): written in the transaction that caused it, delivered
    later by Celery. ``sequence`` orders the events of one asset; a later event of an asset is never
    delivered before an earlier one."""

    __tablename__ = "webhook_events"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    event_id: so.Mapped[str] = so.mapped_column(sa.String(40), unique=True)  # "evt_" + random, sent as "id"
    partner_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("partners.id"), index=True)
    # Indexed by ix_webhook_events_asset_line (it leads that index).
    assignment_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("assignments.id"))
    type: so.Mapped[str] = so.mapped_column(sa.String(32))
    payload: so.Mapped[dict] = so.mapped_column(sa.JSON)  # the exact body sent, minus nothing
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    status: so.Mapped[str] = so.mapped_column(sa.String(16), default=DELIVERY_PENDING)
    attempts: so.Mapped[int] = so.mapped_column(default=0)
    next_attempt_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime, index=True)
    delivered_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    last_error: so.Mapped[str | None] = so.mapped_column(sa.String(500))
    # A delivery run: the first starts when the event is recorded, an admin re-send starts the next.
    # The retry window (WEBHOOK_RETRY_HOURS) counts from run_started_at (NULL: from created_at).
    run: so.Mapped[int] = so.mapped_column(server_default=sa.text("1"), default=1)
    run_started_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    partner: so.Mapped[Partner] = so.relationship()
    attempt_rows: so.Mapped[list[WebhookAttempt]] = so.relationship(back_populates="event",
                                                                    order_by="WebhookAttempt.id")

    __table_args__ = (
        sa.CheckConstraint(sa.column("type").in_(EVENT_TYPES), name="type_known"),
        sa.CheckConstraint(sa.column("status").in_(DELIVERY_STATUSES), name="status_known"),
        sa.Index("ix_webhook_events_status_next", "status", "next_attempt_at"),
        # "Is an earlier event of this asset still pending?" (webhooks.due_clause), asked for every due
        # event: all four columns in one index. Without it SQLite, which keeps no statistics here, may
        # pick the partner_id index and read every event of the partner per candidate (24.6 s instead
        # of 4 ms for 2,000 due events over 52,000; benchmarks/bench_webhooks.py).
        sa.Index("ix_webhook_events_asset_line", "assignment_id", "partner_id", "status", "id"),
    )


class WebhookAttempt(db.Model):
    """One HTTP attempt to deliver one event."""

    __tablename__ = "webhook_attempts"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    event_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("webhook_events.id"), index=True)
    attempted_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    url: so.Mapped[str] = so.mapped_column(sa.String(500))
    status_code: so.Mapped[int | None]
    latency_ms: so.Mapped[int | None]
    ok: so.Mapped[bool] = so.mapped_column(default=False)
    error: so.Mapped[str | None] = so.mapped_column(sa.String(500))
    response_excerpt: so.Mapped[str | None] = so.mapped_column(sa.String(1000))  # first 1000 characters
    run: so.Mapped[int] = so.mapped_column(server_default=sa.text("1"), default=1)  # WebhookEvent.run

    event: so.Mapped[WebhookEvent] = so.relationship(back_populates="attempt_rows")
