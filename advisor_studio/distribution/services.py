"""Every state change of distribution: partners, channels, API keys, assignments, publications,
take-downs and the webhook events they cause."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from advisor_studio import audit
from advisor_studio.concurrency import compare_and_set, stale_conflict
from advisor_studio.dbtypes import utcnow
from advisor_studio.distribution.models import (
    ASSET_ENDED_STATUSES,
    ASSET_EXPIRED,
    ASSET_LIVE_STATUSES,
    ASSET_PUBLISHED,
    ASSET_READY,
    ASSET_STATUS_LABELS,
    ASSET_WITHDRAWN,
    DELIVERY_PENDING,
    DELIVERY_SKIPPED,
    EVENT_ASSIGNED,
    EVENT_EXPIRED,
    EVENT_TAKEDOWN_OVERDUE,
    EVENT_WITHDRAWN,
    PLATFORM_LABELS,
    PLATFORMS,
    Assignment,
    Channel,
    Partner,
    PartnerApiKey,
    Publication,
    Takedown,
    WebhookEvent,
)
from advisor_studio.errors import Conflict, Unprocessable, ValidationError
from advisor_studio.extensions import db

KEY_PREFIX = "as_live_"


def hash_api_key(raw: str) -> str:
    """Keys are random 256-bit tokens, so one SHA-256 is enough (no password stretching needed)."""
    return hashlib.sha256(raw.encode()).hexdigest()


def parse_channel(spec: str) -> tuple[str, str]:
    """'douyin:@handle' -> ('douyin', '@handle'), with a clear error for anything else."""
    platform, sep, handle = (spec or "").partition(":")
    platform, handle = platform.strip().lower(), handle.strip()
    if not sep or platform not in PLATFORMS or not handle or len(handle) > 120:
        raise ValidationError(_("Channel must be PLATFORM:HANDLE with PLATFORM one of %(p)s.", p=", ".join(PLATFORMS)),
                              fields={"channel": spec})
    return platform, handle


def create_partner(name: str, channels=(), *, actor, webhook_url: str | None = None) -> tuple[Partner, str]:
    """Create a partner with channels; return it and its first API key (shown once)."""
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise ValidationError(_("Partner name is required (at most 120 characters)."), fields={"name": _("invalid")})
    if db.session.scalar(sa.select(Partner).where(Partner.name == name)) is not None:
        raise Conflict(_("A partner named %(name)s already exists.", name=name), fields={"name": _("duplicate")})
    partner = Partner(name=name, webhook_url=webhook_url, webhook_secret=secrets.token_urlsafe(32))
    db.session.add(partner)
    db.session.flush()
    for spec in channels:
        add_channel(partner, *parse_channel(spec), actor=actor)
    audit.record("partner.created", "partner", partner.id, actor=actor,
                 details={"name": name, "channels": list(channels)})
    return partner, issue_api_key(partner, actor=actor)


def add_channel(partner: Partner, platform: str, handle: str, *, actor) -> Channel:
    """Add one platform account to a partner."""
    if platform not in PLATFORMS:
        raise ValidationError(_("Unknown platform %(p)s.", p=platform), fields={"platform": _("invalid")})
    if db.session.scalar(sa.select(Channel).where(Channel.platform == platform, Channel.handle == handle)):
        raise Conflict(_("The channel %(p)s:%(h)s already exists.", p=platform, h=handle))
    channel = Channel(partner_id=partner.id, platform=platform, handle=handle)
    db.session.add(channel)
    db.session.flush()
    audit.record("channel.created", "channel", channel.id, actor=actor,
                 details={"partner_id": partner.id, "platform": platform, "handle": handle})
    return channel


def issue_api_key(partner: Partner, *, actor) -> str:
    """A new API key for the partner; only its hash is stored, the key itself is returned once."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = PartnerApiKey(partner_id=partner.id, prefix=raw[:12], key_hash=hash_api_key(raw))
    db.session.add(key)
    db.session.flush()
    audit.record("partner.api_key_issued", "partner", partner.id, actor=actor, details={"prefix": key.prefix})
    return raw


def revoke_api_key(key: PartnerApiKey, *, actor, reason: str) -> None:
    """Revoke a key at once; requests with it get 401 from then on."""
    if key.revoked_at is not None:
        raise Conflict(_("This key is already revoked."))
    if not (reason or "").strip():
        raise ValidationError(_("A reason is required to revoke a key."), fields={"reason": _("required")})
    key.revoked_at = utcnow()
    db.session.flush()
    audit.record("partner.api_key_revoked", "partner", key.partner_id, actor=actor,
                 details={"prefix": key.prefix, "reason": reason.strip()[:500]})


def partner_for_api_key(raw: str | None) -> Partner | None:
    """The active partner owning an unrevoked key, or None."""
    key = api_key_for(raw)
    return key.partner if key is not None else None


def api_key_for(raw: str | None) -> PartnerApiKey | None:
    """The unrevoked key row for ``raw`` whose partner is active, or None (the one rule for both lookups)."""
    if not raw or not raw.startswith(KEY_PREFIX) or len(raw) > 200:
        return None
    key = db.session.scalar(sa.select(PartnerApiKey).where(PartnerApiKey.key_hash == hash_api_key(raw),
                                                          PartnerApiKey.revoked_at.is_(None)))
    if key is None or not key.partner.active:
        return None
    return key


# last_used_at is "last used, to the minute": one conditional UPDATE a minute per key, not a write per request.
KEY_TOUCH_INTERVAL = timedelta(minutes=1)


def touch_api_key(key: PartnerApiKey, now: datetime | None = None) -> bool:
    """Set the key's last_used_at if it is older than a minute (compare-and-set); True when it wrote."""
    now = now or utcnow()
    if key.last_used_at is not None and key.last_used_at > now - KEY_TOUCH_INTERVAL:
        return False  # the row we just read is fresh enough: no statement at all
    result = db.session.execute(
        sa.update(PartnerApiKey)
        .where(PartnerApiKey.id == key.id, sa.or_(PartnerApiKey.last_used_at.is_(None),
                                                  PartnerApiKey.last_used_at <= now - KEY_TOUCH_INTERVAL))
        .values(last_used_at=now).execution_options(synchronize_session=False))
    return result.rowcount == 1


# --- assignments --------------------------------------------------------------------------------------
#
# An assignment's status follows its package's approval: ``assign_approval`` runs inside
# compliance.decide (the one place an approval is made) and ``end_assignments`` inside
# studio.states.transition_package (the one place a package leaves "approved"), so an approval, a
# withdrawal or an expiry never commits without its assignments and their webhook events.

# from-status -> {to-status: audit action}; "published" is reached only by a publication report.
ASSIGNMENT_TRANSITIONS: dict[str, dict[str, str]] = {
    ASSET_READY: {ASSET_PUBLISHED: "assignment.published", ASSET_WITHDRAWN: "assignment.withdrawn",
                  ASSET_EXPIRED: "assignment.expired"},
    ASSET_PUBLISHED: {ASSET_WITHDRAWN: "assignment.withdrawn", ASSET_EXPIRED: "assignment.expired"},
    ASSET_WITHDRAWN: {},
    ASSET_EXPIRED: {},
}

# Package transitions out of "approved" and what they mean for its assignments. A change to approved
# content (back to draft) voids the approval: for the partner that is a withdrawal.
_PACKAGE_END = {"withdrawn": ASSET_WITHDRAWN, "expired": ASSET_EXPIRED, "draft": ASSET_WITHDRAWN}
_END_EVENTS = {ASSET_WITHDRAWN: EVENT_WITHDRAWN, ASSET_EXPIRED: EVENT_EXPIRED}


def transition_assignment(assignment: Assignment, to: str, actor, reason: str = "", details: dict | None = None,
                          **values) -> None:
    """Move an assignment to ``to`` if the table allows it (compare-and-set), writing the audit entry."""
    allowed = ASSIGNMENT_TRANSITIONS.get(assignment.status, {})
    if to not in allowed:
        raise Conflict(_("This asset is %(status)s; that is not possible now.",
                         status=ASSET_STATUS_LABELS.get(assignment.status, assignment.status)),
                       code="asset_status")
    old = assignment.status
    now = utcnow()
    if not compare_and_set(assignment, [Assignment.status == old, Assignment.version == assignment.version],
                           status=to, status_changed_at=now, version=assignment.version + 1, **values):
        raise stale_conflict(_("asset"))
    audit.record(allowed[to], "assignment", assignment.id, actor=actor,
                 details={"from": old, "to": to, "package_id": assignment.package_id,
                          "channel_id": assignment.channel_id, "partner_id": assignment.partner_id,
                          "reason": (reason or "")[:500], **(details or {})})


def assign_approval(approval, package, actor) -> list[Assignment]:
    """One ``ready`` assignment per active target channel of an active partner, and its event."""
    created = []
    for channel in package.channels:
        if not channel.active or not channel.partner.active:
            continue
        assignment = Assignment(approval_id=approval.id, package_id=package.id, channel_id=channel.id,
                                partner_id=channel.partner_id, status=ASSET_READY)
        db.session.add(assignment)
        db.session.flush()
        audit.record("assignment.created", "assignment", assignment.id, actor=actor,
                     details={"package_id": package.id, "approval_id": approval.id, "channel_id": channel.id,
                              "partner_id": channel.partner_id})
        record_event(assignment.partner, EVENT_ASSIGNED, assignment)
        created.append(assignment)
    return created


def end_assignments(package, package_to: str, actor, reason: str = "") -> list[Assignment]:
    """The package left "approved": its live assignments become withdrawn or expired, with a deadline."""
    to = _PACKAGE_END.get(package_to)
    if to is None:
        return []
    ended = []
    stmt = (sa.select(Assignment).where(Assignment.package_id == package.id,
                                        Assignment.status.in_(ASSET_LIVE_STATUSES)).order_by(Assignment.id))
    for assignment in db.session.scalars(stmt).all():
        has_posts = bool(assignment.publications)
        now = utcnow()
        due = now + timedelta(hours=current_app.config["TAKEDOWN_DEADLINE_HOURS"])
        # With no reported post there is nothing to take down: the obligation is met at once.
        transition_assignment(assignment, to, actor, reason, {"takedown_due_at": due.isoformat()},
                              takedown_due_at=due, takedown_completed_at=None if has_posts else now)
        record_event(assignment.partner, _END_EVENTS[to], assignment)
        ended.append(assignment)
    return ended


# --- publications and take-downs ----------------------------------------------------------------------

# Hosts whose posts belong to each platform (a post URL on another host is refused). "other" takes any
# https host.
PLATFORM_HOSTS = {
    "douyin": ("douyin.com", "iesdouyin.com"),
    "kuaishou": ("kuaishou.com", "gifshow.com", "kwai.com", "chenzhongtech.com"),
    "bilibili": ("bilibili.com", "b23.tv"),
    "wechat_channels": ("weixin.qq.com", "channels.weixin.qq.com"),
    "xiaohongshu": ("xiaohongshu.com", "xhslink.com"),
}
POST_URL_MAX = 1000
# Clocks differ: a report up to this far in the future is accepted as "now".
CLOCK_SKEW = timedelta(minutes=5)


def _host_matches(host: str, suffixes) -> bool:
    return any(host == s or host.endswith("." + s) for s in suffixes)


def validate_post_url(post_url, platform: str) -> tuple[str, str]:
    """(the URL as given, its duplicate key) or a ValidationError naming what is wrong."""
    from urllib.parse import urlsplit

    if not isinstance(post_url, str) or not post_url.strip():
        raise ValidationError(_("The post URL is required."), fields={"post_url": _("required")})
    post_url = post_url.strip()
    if len(post_url) > POST_URL_MAX or any(ord(ch) < 33 or ch == "\\" for ch in post_url):
        raise ValidationError(_("The post URL is not a valid URL."), fields={"post_url": _("invalid URL")})
    try:
        parts = urlsplit(post_url)
        host = (parts.hostname or "").rstrip(".").lower()
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise ValidationError(_("The post URL is not a valid URL."), fields={"post_url": _("invalid URL")}) from None
    if parts.scheme.lower() not in ("http", "https") or not host or parts.username or parts.password:
        raise ValidationError(_("The post URL must be an http(s) address of the post."),
                              fields={"post_url": _("invalid URL")})
    suffixes = PLATFORM_HOSTS.get(platform)
    if suffixes is not None and not _host_matches(host, suffixes):
        raise ValidationError(_("This address is not on %(platform)s (expected a link on %(hosts)s).",
                                platform=PLATFORM_LABELS.get(platform, platform), hosts=", ".join(suffixes)),
                              fields={"post_url": _("host does not belong to the platform")})
    key = parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower(), fragment="").geturl()
    return post_url, key.rstrip("/")


def _validate_time(value, field: str, *, not_before=None) -> datetime:
    if not isinstance(value, datetime):
        raise ValidationError(_("A date and time is required."), fields={field: _("required")})
    if value.tzinfo is None:
        raise ValidationError(_("The time must carry a time zone offset."), fields={field: _("time zone missing")})
    value = value.astimezone(UTC)
    if value > utcnow() + CLOCK_SKEW:
        raise ValidationError(_("The time is in the future."), fields={field: _("in the future")})
    if not_before is not None and value < not_before - CLOCK_SKEW:
        raise ValidationError(_("The time is before %(when)s.", when=not_before.isoformat()),
                              fields={field: _("too early")})
    return value


def report_publication(assignment: Assignment, *, platform, post_url, published_at, actor, user_id=None,
                       key_id=None) -> Publication:
    """Record where and when a partner posted a live asset; a first report makes it ``published``."""
    from advisor_studio.compliance.approvals import is_live

    if platform != assignment.channel.platform:
        raise ValidationError(_("This asset is assigned to a %(platform)s channel.",
                                platform=PLATFORM_LABELS.get(assignment.channel.platform,
                                                             assignment.channel.platform)),
                              fields={"platform": _("must be %(p)s", p=assignment.channel.platform)})
    post_url, key = validate_post_url(post_url, platform)
    published_at = _validate_time(published_at, "published_at", not_before=assignment.approval.approved_at)
    if assignment.status not in ASSET_LIVE_STATUSES or not is_live(assignment.approval, assignment.package):
        raise Conflict(_("This asset is no longer approved; it must not be published."), code="asset_not_live")
    if db.session.scalar(sa.select(Publication.id).where(Publication.assignment_id == assignment.id,
                                                         Publication.post_url_key == key)) is not None:
        raise Conflict(_("This post was already reported."), code="duplicate_publication",
                       fields={"post_url": _("already reported")})
    publication = Publication(assignment_id=assignment.id, partner_id=assignment.partner_id, platform=platform,
                              post_url=post_url, post_url_key=key, published_at=published_at,
                              reported_by_user_id=user_id, reported_by_key_id=key_id)
    db.session.add(publication)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except sa.exc.IntegrityError:
        raise Conflict(_("This post was already reported."), code="duplicate_publication",
                       fields={"post_url": _("already reported")}) from None
    audit.record("publication.reported", "assignment", assignment.id, actor=actor,
                 details={"publication_id": publication.id, "post_url": post_url, "platform": platform,
                          "published_at": published_at.isoformat(), "api_key_id": key_id})
    if assignment.status == ASSET_READY:
        transition_assignment(assignment, ASSET_PUBLISHED, actor, "publication reported",
                              {"publication_id": publication.id})
    return publication


def confirm_takedown(assignment: Assignment, *, post_url, removed_at, actor, user_id=None,
                     key_id=None) -> Takedown:
    """Record that a reported post of a withdrawn or expired asset was removed."""
    if assignment.status not in ASSET_ENDED_STATUSES:
        raise Conflict(_("This asset is still live; a take-down is only confirmed for a withdrawn or expired "
                         "asset."), code="asset_live")
    _url, key = validate_post_url(post_url, assignment.channel.platform)
    publication = db.session.scalar(sa.select(Publication).where(Publication.assignment_id == assignment.id,
                                                                 Publication.post_url_key == key))
    if publication is None:
        raise Unprocessable(_("No post with this address was reported for this asset."),
                            code="unknown_post", fields={"post_url": _("not reported for this asset")})
    removed_at = _validate_time(removed_at, "removed_at", not_before=publication.published_at)
    if publication.takedown is not None:
        raise Conflict(_("This post's removal was already confirmed."), code="duplicate_takedown",
                       fields={"post_url": _("already confirmed")})
    takedown = Takedown(publication_id=publication.id, assignment_id=assignment.id,
                        partner_id=assignment.partner_id, removed_at=removed_at, confirmed_by_user_id=user_id,
                        confirmed_by_key_id=key_id)
    db.session.add(takedown)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except sa.exc.IntegrityError:
        raise Conflict(_("This post's removal was already confirmed."), code="duplicate_takedown",
                       fields={"post_url": _("already confirmed")}) from None
    due = assignment.takedown_due_at
    late = due is not None and removed_at > due
    audit.record("takedown.confirmed", "assignment", assignment.id, actor=actor,
                 details={"publication_id": publication.id, "post_url": publication.post_url,
                          "removed_at": removed_at.isoformat(), "late": late, "api_key_id": key_id})
    outstanding = db.session.scalar(
        sa.select(sa.func.count(Publication.id)).outerjoin(Takedown, Takedown.publication_id == Publication.id)
        .where(Publication.assignment_id == assignment.id, Takedown.id.is_(None)))
    if not outstanding:
        compare_and_set(assignment, [Assignment.takedown_completed_at.is_(None)], takedown_completed_at=utcnow())
    return takedown


def takedown_overdue_clause(now: datetime | None = None) -> sa.ColumnElement[bool]:
    """SQL condition on ``Assignment``: ended, past its deadline, with a reported post not yet removed."""
    now = now or utcnow()
    return sa.and_(Assignment.status.in_(ASSET_ENDED_STATUSES), Assignment.takedown_completed_at.is_(None),
                   Assignment.takedown_due_at.is_not(None), Assignment.takedown_due_at <= now)


def raise_overdue_takedowns(now: datetime | None = None) -> int:
    """Send ``takedown.overdue`` once for each assignment whose deadline passed; return how many."""
    now = now or utcnow()
    count = 0
    stmt = (sa.select(Assignment).where(takedown_overdue_clause(now), Assignment.overdue_notified_at.is_(None))
            .order_by(Assignment.id))
    for assignment in db.session.scalars(stmt).all():
        if not compare_and_set(assignment, [Assignment.overdue_notified_at.is_(None)], overdue_notified_at=now):
            continue
        audit.record("takedown.overdue", "assignment", assignment.id, actor="system",
                     details={"takedown_due_at": assignment.takedown_due_at.isoformat(),
                              "partner_id": assignment.partner_id, "package_id": assignment.package_id})
        record_event(assignment.partner, EVENT_TAKEDOWN_OVERDUE, assignment)
        count += 1
    return count


# --- webhook events (the outbox) ----------------------------------------------------------------------

def _rfc3339(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value is not None else None


def record_event(partner: Partner, type_: str, assignment: Assignment | None = None,
                 data: dict | None = None) -> WebhookEvent:
    """Write one webhook event in the current transaction; Celery delivers it after the commit.

    Events of a partner without a webhook URL are kept (``skipped``) so the log shows what was not sent.
    """
    now = utcnow()
    if data is None:
        data = {"asset_id": assignment.id, "status": assignment.status,
                "takedown_due_at": _rfc3339(assignment.takedown_due_at)}
    event_id = "evt_" + secrets.token_hex(16)
    payload = {"id": event_id, "type": type_, "created_at": _rfc3339(now), "data": data}
    event = WebhookEvent(event_id=event_id, partner_id=partner.id,
                         assignment_id=assignment.id if assignment is not None else None, type=type_,
                         payload=payload, created_at=now,
                         status=DELIVERY_PENDING if partner.webhook_url else DELIVERY_SKIPPED,
                         next_attempt_at=now if partner.webhook_url else None)
    db.session.add(event)
    db.session.flush()
    _after_event_recorded(event)
    return event


def _after_event_recorded(event: WebhookEvent) -> None:
    """Queue delivery once the transaction commits (nothing is sent for a rolled-back one)."""
    if event.status != DELIVERY_PENDING:
        return
    from advisor_studio.distribution.tasks import deliver_webhook_event
    from advisor_studio.tasks_util import enqueue_after_commit

    enqueue_after_commit(deliver_webhook_event, event.id)
