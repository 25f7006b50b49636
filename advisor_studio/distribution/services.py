"""Every state change of distribution: partners, channels, API keys, assignments, publications,
take-downs and the webhook events they cause."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from advisor_studio import audit, system_reasons
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
    CHANNEL_PLATFORMS,
    DELIVERY_PENDING,
    DELIVERY_SKIPPED,
    EVENT_ASSIGNED,
    EVENT_EXPIRED,
    EVENT_TAKEDOWN_OVERDUE,
    EVENT_WITHDRAWN,
    PLATFORM_LABELS,
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
    if not sep or platform not in CHANNEL_PLATFORMS or not handle or len(handle) > 120:
        raise ValidationError(_("Channel must be PLATFORM:HANDLE with PLATFORM one of %(p)s.",
                                p=", ".join(CHANNEL_PLATFORMS)), fields={"channel": spec})
    return platform, handle


# --- partners, channels, API keys and members (admin) ------------------------------------------------

CONTACT_MAX = {"contact_name": 120, "contact_email": 254, "contact_phone": 40}
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE_RE = re.compile(r"[0-9+()\- ]{5,40}")
HANDLE_MAX = 120
LABEL_MAX = 120
REASON_MAX = 500
# The visible part of a key: "as_live_" and four random characters, enough to tell keys apart.
KEY_VISIBLE = 12


def _actor_id(actor) -> int | None:
    return getattr(actor, "id", None) if actor is not None and not isinstance(actor, str) else None


def _clean_name(name) -> str:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name or len(name) > 120:
        raise ValidationError(_("Partner name is required (at most 120 characters)."), fields={"name": _("invalid")})
    return name


def _clean_contacts(contact_name, contact_email, contact_phone) -> dict[str, str | None]:
    """Contact fields stripped (empty -> None) and checked: an e-mail address and a phone number that look so."""
    values = {"contact_name": contact_name, "contact_email": contact_email, "contact_phone": contact_phone}
    cleaned: dict[str, str | None] = {}
    for field, value in values.items():
        value = (value or "").strip() if isinstance(value, str) else ""
        if len(value) > CONTACT_MAX[field]:
            raise ValidationError(_("At most %(n)d characters.", n=CONTACT_MAX[field]), fields={field: _("too long")})
        cleaned[field] = value or None
    if cleaned["contact_email"] and not _EMAIL_RE.fullmatch(cleaned["contact_email"]):
        raise ValidationError(_("The contact e-mail is not a valid address."),
                              fields={"contact_email": _("invalid e-mail address")})
    if cleaned["contact_phone"] and not _PHONE_RE.fullmatch(cleaned["contact_phone"]):
        raise ValidationError(_("The contact phone may hold only digits, spaces, +, - and parentheses."),
                              fields={"contact_phone": _("invalid phone number")})
    return cleaned


def _clean_webhook_url(url) -> str | None:
    """Empty means "no webhooks"; anything else must pass the SSRF check under this app's configuration."""
    from advisor_studio.distribution.urlsafety import check_webhook_url

    if url is None or (isinstance(url, str) and not url.strip()):
        return None
    return check_webhook_url(url)


def _unique_name_or_conflict(name: str, partner: Partner | None = None) -> None:
    stmt = sa.select(Partner.id).where(Partner.name == name)
    if partner is not None:
        stmt = stmt.where(Partner.id != partner.id)
    if db.session.scalar(stmt) is not None:
        raise Conflict(_("A partner named %(name)s already exists.", name=name), fields={"name": _("duplicate")},
                       code="duplicate_partner")


def create_partner(name: str, channels=(), *, actor, webhook_url: str | None = None, contact_name=None,
                   contact_email=None, contact_phone=None, key_label: str | None = None) -> tuple[Partner, str]:
    """Create a partner with channels; return it and its first API key (shown once)."""
    name = _clean_name(name)
    contacts = _clean_contacts(contact_name, contact_email, contact_phone)
    webhook_url = _clean_webhook_url(webhook_url)
    _unique_name_or_conflict(name)
    partner = Partner(name=name, webhook_url=webhook_url, webhook_secret=secrets.token_urlsafe(32), **contacts)
    db.session.add(partner)
    # No savepoint around this flush: releasing one fires the session's after_commit, which would send
    # tasks queued by tasks_util.enqueue_after_commit before the real commit. A concurrent insert of the
    # same name fails on the unique index instead, and errors.py answers that with a 409.
    db.session.flush()
    for spec in channels:
        add_channel(partner, *parse_channel(spec), actor=actor)
    audit.record("partner.created", "partner", partner.id, actor=actor,
                 details={"name": name, "channels": list(channels), "webhook_url": webhook_url, **contacts})
    return partner, issue_api_key(partner, actor=actor, label=key_label)


def update_partner(partner: Partner, *, actor, name, contact_name=None, contact_email=None, contact_phone=None,
                   webhook_url=None) -> dict:
    """Change a partner's name, contact and webhook URL (checked against SSRF); return what changed."""
    values = {"name": _clean_name(name), **_clean_contacts(contact_name, contact_email, contact_phone),
              "webhook_url": _clean_webhook_url(webhook_url)}
    _unique_name_or_conflict(values["name"], partner)
    changes = {field: [getattr(partner, field), value] for field, value in values.items()
               if getattr(partner, field) != value}
    for field, (_old, value) in changes.items():
        setattr(partner, field, value)
    db.session.flush()  # a concurrent rename to the same name: the unique index, a 409 (see create_partner)
    if changes:
        audit.record("partner.updated", "partner", partner.id, actor=actor, details=changes)
    return changes


def record_refused_webhook_url(partner: Partner | None, url, *, actor, reason: str) -> None:
    """Audit a webhook URL refused at save (a possible SSRF probe); the caller commits it after rolling back."""
    audit.record("partner.webhook_url_refused", "partner", partner.id if partner is not None else "-", actor=actor,
                 details={"url": str(url or "")[:500], "reason": reason[:REASON_MAX]})


def set_partner_active(partner: Partner, active: bool, *, actor, reason: str = "") -> Partner:
    """(De)activate a partner. Inactive: its keys answer 401, its download links 410 and it gets no new assets."""
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if not active and not reason:
        raise ValidationError(_("A reason is required to deactivate a partner."), fields={"reason": _("required")})
    if not compare_and_set(partner, [Partner.active.is_(not active)], active=active):
        raise Conflict(_("This partner is already active.") if active else _("This partner is already inactive."),
                       code="partner_active_unchanged")
    audit.record("partner.reactivated" if active else "partner.deactivated", "partner", partner.id, actor=actor,
                 details={"reason": reason[:REASON_MAX]})
    return partner


def regenerate_webhook_secret(partner: Partner, *, actor) -> str:
    """A new webhook signing secret; returned once for the admin to pass on, never written to the audit log."""
    secret = secrets.token_urlsafe(32)
    partner.webhook_secret = secret
    db.session.flush()
    audit.record("partner.webhook_secret_regenerated", "partner", partner.id, actor=actor,
                 details={"secret_prefix": secret[:4]})
    return secret


def add_channel(partner: Partner, platform: str, handle: str, *, actor, follower_count: int | None = None) -> Channel:
    """Add one platform account (any of CHANNEL_PLATFORMS, "other" included) to a partner."""
    if platform not in CHANNEL_PLATFORMS:
        raise ValidationError(_("Unknown platform %(p)s.", p=platform), fields={"platform": _("invalid")})
    handle = (handle or "").strip() if isinstance(handle, str) else ""
    if not handle or len(handle) > HANDLE_MAX:
        raise ValidationError(_("The handle is required (at most %(n)d characters).", n=HANDLE_MAX),
                              fields={"handle": _("invalid")})
    follower_count = _clean_followers(follower_count)
    label = PLATFORM_LABELS.get(platform, platform)
    message = _("The channel %(p)s:%(h)s already exists.", p=label, h=handle)
    if db.session.scalar(sa.select(Channel).where(Channel.platform == platform, Channel.handle == handle)):
        raise Conflict(message, fields={"handle": _("already exists on this platform")}, code="duplicate_channel")
    channel = Channel(partner_id=partner.id, platform=platform, handle=handle, follower_count=follower_count)
    db.session.add(channel)
    db.session.flush()  # a concurrent duplicate: the unique index, a 409 (see create_partner)
    audit.record("channel.created", "channel", channel.id, actor=actor,
                 details={"partner_id": partner.id, "platform": platform, "handle": handle,
                          "follower_count": follower_count})
    return channel


def _clean_followers(value) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**62:
        raise ValidationError(_("The follower count must be a whole number of at least 0."),
                              fields={"follower_count": _("invalid")})
    return value


def update_channel(channel: Channel, *, actor, follower_count, active: bool) -> dict:
    """Change a channel's follower count and whether it receives new assets; return what changed."""
    values = {"follower_count": _clean_followers(follower_count), "active": bool(active)}
    changes = {field: [getattr(channel, field), value] for field, value in values.items()
               if getattr(channel, field) != value}
    for field, (_old, value) in changes.items():
        setattr(channel, field, value)
    db.session.flush()
    if changes:
        audit.record("channel.updated", "channel", channel.id, actor=actor,
                     details={"partner_id": channel.partner_id, **changes})
    return changes


def issue_api_key(partner: Partner, *, actor, label: str | None = None) -> str:
    """A new API key for the partner; only its hash is stored, the key itself is returned once."""
    label = (label or "").strip() if isinstance(label, str) else ""
    if len(label) > LABEL_MAX:
        raise ValidationError(_("At most %(n)d characters.", n=LABEL_MAX), fields={"label": _("too long")})
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = PartnerApiKey(partner_id=partner.id, prefix=raw[:KEY_VISIBLE], key_hash=hash_api_key(raw),
                        label=label or None, created_by_id=_actor_id(actor))
    db.session.add(key)
    db.session.flush()
    audit.record("partner.api_key_issued", "partner", partner.id, actor=actor,
                 details={"prefix": key.prefix, "key_id": key.id, "label": key.label})
    return raw


def revoke_api_key(key: PartnerApiKey, *, actor, reason: str) -> None:
    """Revoke a key at once; requests with it get 401 from then on."""
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if key.revoked_at is not None:
        raise Conflict(_("This key is already revoked."), code="key_revoked")
    if not reason:
        raise ValidationError(_("A reason is required to revoke a key."), fields={"reason": _("required")})
    if not compare_and_set(key, [PartnerApiKey.revoked_at.is_(None)], revoked_at=utcnow(),
                           revoked_by_id=_actor_id(actor), revoke_reason=reason[:REASON_MAX]):
        raise Conflict(_("This key is already revoked."), code="key_revoked")
    audit.record("partner.api_key_revoked", "partner", key.partner_id, actor=actor,
                 details={"prefix": key.prefix, "key_id": key.id, "reason": reason[:REASON_MAX]})


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


def set_user_partner(user, partner: Partner | None, *, actor, move: bool = True) -> bool:
    """Make an mcn user a member of ``partner`` (None: of no partner); return whether anything changed.

    Only users holding the mcn role belong to a partner. ``move=False`` refuses a user who already
    belongs to another partner (the partner page links; only the user page moves someone).
    """
    if partner is not None and not user.has_role("mcn"):
        raise ValidationError(_("Only users holding the MCN partner role can belong to a partner."),
                              fields={"user_id": _("not an mcn user"), "partner_id": _("not an mcn user")},
                              code="not_mcn_user")
    new_id = partner.id if partner is not None else None
    old_id = user.partner_id
    if old_id == new_id:
        return False
    if not move and old_id is not None and new_id is not None:
        other = db.session.get(Partner, old_id)
        raise Conflict(_("%(email)s already belongs to %(partner)s; change it on the user's page.",
                         email=user.email, partner=other.name if other else old_id),
                       fields={"user_id": _("belongs to another partner")}, code="member_of_other_partner")
    model = type(user)
    if not compare_and_set(user, [model.partner_id.is_(None) if old_id is None else model.partner_id == old_id],
                           partner_id=new_id):
        raise stale_conflict(_("user"))
    details = {"from_partner_id": old_id, "to_partner_id": new_id}
    audit.record("user.partner_changed", "user", user.id, actor=actor, details=details)
    for partner_id, action in ((old_id, "partner.member_unlinked"), (new_id, "partner.member_linked")):
        if partner_id is not None:
            audit.record(action, "partner", partner_id, actor=actor, details={"user_id": user.id, "email": user.email})
    return True


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


def _add_unique(row, conflict: Conflict) -> None:
    """Insert ``row``; the loser of a race on its unique index (checked above, settled here) gets ``conflict``."""
    db.session.add(row)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except sa.exc.IntegrityError:
        raise conflict from None


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
    _add_unique(publication, Conflict(_("This post was already reported."), code="duplicate_publication",
                                      fields={"post_url": _("already reported")}))
    audit.record("publication.reported", "assignment", assignment.id, actor=actor,
                 details={"publication_id": publication.id, "post_url": post_url, "platform": platform,
                          "published_at": published_at.isoformat(), "api_key_id": key_id})
    if assignment.status == ASSET_READY:
        transition_assignment(assignment, ASSET_PUBLISHED, actor, system_reasons.PUBLICATION_REPORTED,
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
    _add_unique(takedown, Conflict(_("This post's removal was already confirmed."), code="duplicate_takedown",
                                   fields={"post_url": _("already confirmed")}))
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
