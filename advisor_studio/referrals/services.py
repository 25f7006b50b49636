"""Every state change of referrals: community groups, referral links (and, in later modules, clicks and
conversions). Services flush, never commit, and write the audit entry."""

from __future__ import annotations

import secrets
import unicodedata
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from advisor_studio import audit
from advisor_studio.dbtypes import utcnow
from advisor_studio.errors import Conflict, PermissionDenied, ValidationError
from advisor_studio.extensions import db
from advisor_studio.referrals.models import (
    LINK_CUSTOMER,
    LINK_GENERAL,
    LINK_GROUP,
    LINK_KINDS,
    LINK_PACKAGE,
    CommunityGroup,
    ReferralLink,
)

# No 0/o, 1/l/i: a code read aloud or typed from a printed card is unambiguous.
CODE_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
CODE_LENGTH = 7  # 31**7 = 2.75e10 codes
CODE_MAX = 16  # longer path segments are not codes at all (the redirect answers 404 at once)
CAMPAIGN_MAX = 64
DESTINATION_MAX = 1000
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
UTM_VALUE_MAX = 100


def new_code() -> str:
    """A fresh random code that no link has (checked; the unique index settles any race)."""
    for _attempt in range(10):
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if db.session.scalar(sa.select(ReferralLink.id).where(ReferralLink.code == code)) is None:
            return code
    raise RuntimeError("could not find a free referral code in 10 attempts")  # 1e-40 at a million links


def is_code_shaped(code: str) -> bool:
    """Whether ``code`` could be a code at all (cheap check before any lookup)."""
    return 0 < len(code) <= CODE_MAX and all(ch in CODE_ALPHABET for ch in code)


def validate_destination(url) -> str:
    """The destination if it is an https URL on an allowed host (REFERRAL_ALLOWED_HOSTS), else a
    ValidationError. Refuses user info, backslashes, control characters, scheme-relative and
    non-https URLs, and hosts that only look like an allowed one (IDN, trailing labels, ports)."""
    fields = {"destination": _("not an allowed account-opening address")}
    if not isinstance(url, str) or not url.strip():
        raise ValidationError(_("The destination is required."), fields={"destination": _("required")})
    url = url.strip()
    if len(url) > DESTINATION_MAX or any(ord(ch) < 33 or ch == "\\" or ord(ch) == 127 for ch in url):
        raise ValidationError(_("The destination is not a valid URL."), fields=fields)
    if unicodedata.normalize("NFKC", url) != url or not url.isascii():
        raise ValidationError(_("The destination must be written in plain ASCII (no look-alike characters)."),
                              fields=fields)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationError(_("The destination is not a valid URL."), fields=fields) from None
    host = (parts.hostname or "").lower()
    allowed = current_app.config["REFERRAL_ALLOWED_HOSTS"]
    if (parts.scheme != "https" or not parts.netloc or "@" in parts.netloc or parts.username or parts.password
            or port not in (None, 443) or host not in allowed):
        raise ValidationError(_("A referral link may only lead to an account-opening page on %(hosts)s (https).",
                                hosts=", ".join(allowed)), fields=fields)
    return url


def _validate_utm(utm) -> dict:
    utm = dict(utm or {})
    unknown = sorted(set(utm) - set(UTM_KEYS))
    if unknown:
        raise ValidationError(_("Unknown UTM parameter %(name)s.", name=unknown[0]), fields={unknown[0]: _("unknown")})
    clean = {}
    for key in UTM_KEYS:
        value = (utm.get(key) or "").strip()
        if len(value) > UTM_VALUE_MAX or any(ord(ch) < 32 for ch in value):
            raise ValidationError(_("A UTM value is at most %(n)d printable characters.", n=UTM_VALUE_MAX),
                                  fields={key: _("too long")})
        if value:
            clean[key] = value
    return clean


def _link_kind(package, channel, group, customer) -> str:
    if customer is not None:
        return LINK_CUSTOMER
    if group is not None:
        return LINK_GROUP
    if package is not None:
        return LINK_PACKAGE
    return LINK_GENERAL


def create_link(*, owner, destination, actor, package=None, channel=None, group: CommunityGroup | None = None,
                customer=None, campaign: str | None = None, utm: dict | None = None,
                expires_at: datetime | None = None, kind: str | None = None) -> ReferralLink:
    """A new referral link of advisor ``owner``; its dimensions and destination never change later."""
    if owner is None or not owner.has_role("advisor"):
        raise ValidationError(_("A referral link belongs to an advisor."), fields={"owner": _("not an advisor")})
    if package is not None and package.author_id != owner.id:
        raise PermissionDenied(_("This package is not the advisor's own."))
    if group is not None and group.owner_id != owner.id:
        raise PermissionDenied(_("This community group is not the advisor's own."))
    if group is not None and (not group.active or group.archived_at is not None):
        raise Conflict(_("This community group is archived."), code="group_archived")
    if channel is not None and package is not None and channel.id not in {c.id for c in package.channels}:
        raise ValidationError(_("The package does not target this channel."), fields={"channel": _("not targeted")})
    campaign = (campaign or "").strip() or None
    if campaign is not None and (len(campaign) > CAMPAIGN_MAX or any(ord(ch) < 32 for ch in campaign)):
        raise ValidationError(_("The campaign is at most %(n)d characters.", n=CAMPAIGN_MAX),
                              fields={"campaign": _("too long")})
    if expires_at is not None and (expires_at.tzinfo is None or expires_at <= utcnow()):
        raise ValidationError(_("The expiry must be in the future."), fields={"expires_at": _("in the past")})
    kind = kind or _link_kind(package, channel, group, customer)
    if kind not in LINK_KINDS:
        raise ValidationError(_("Unknown link kind."), fields={"kind": _("invalid")})
    link = ReferralLink(code=new_code(), kind=kind, owner_id=owner.id, package_id=getattr(package, "id", None),
                        channel_id=getattr(channel, "id", None), partner_id=getattr(channel, "partner_id", None),
                        group_id=getattr(group, "id", None), customer_id=getattr(customer, "id", None),
                        campaign=campaign, destination=validate_destination(destination), utm=_validate_utm(utm),
                        expires_at=expires_at, enabled=True, created_by_id=getattr(actor, "id", None))
    db.session.add(link)
    db.session.flush()
    audit.record("link.created", "referral_link", link.id, actor=actor,
                 details={"code": link.code, "kind": kind, "owner_id": owner.id, "package_id": link.package_id,
                          "channel_id": link.channel_id, "group_id": link.group_id, "campaign": campaign,
                          "destination": link.destination})
    return link


def set_link_enabled(link: ReferralLink, enabled: bool, *, actor) -> None:
    """Enable or disable a link (a disabled link answers 410); a replaced link stays disabled.

    A compare-and-set: of two people flipping one link at once, one writes and audits it, the other's
    request finds it already done and changes nothing.
    """
    from advisor_studio.concurrency import compare_and_set

    if enabled and link.replaced_by_id is not None:
        raise Conflict(_("This link was replaced; enable its newest version instead."), code="link_replaced")
    expected = [ReferralLink.enabled.is_(not enabled)]
    if enabled:
        expected.append(ReferralLink.replaced_by_id.is_(None))
    if not compare_and_set(link, expected, enabled=enabled, disabled_at=None if enabled else utcnow()):
        return
    audit.record("link.enabled" if enabled else "link.disabled", "referral_link", link.id, actor=actor,
                 details={"code": link.code})


def public_url(link: ReferralLink) -> str:
    """The link's public address (what a QR code and a caption carry)."""
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + "/r/" + link.code


def destination_with(link: ReferralLink, click_id: str) -> str:
    """The destination with the link's UTM parameters and ``click_id`` added (its own query kept)."""
    parts = urlsplit(link.destination)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "click_id"]
    present = {k for k, _v in query}
    query += [(k, v) for k, v in (link.utm or {}).items() if k not in present]
    query.append(("click_id", click_id))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


# --- replacing and bulk creation (links lane) ---------------------------------------------------

REPLACEABLE = ("destination", "package", "channel", "group", "campaign", "utm", "expires_at")


def replace_link(link: ReferralLink, actor, **changes) -> ReferralLink:
    """A new link with ``changes`` to the destination or dimensions; the old one is disabled and points
    to it (``replaced_by_id``), keeping its clicks. Returns ``link`` itself when nothing changes."""
    from advisor_studio.concurrency import compare_and_set, stale_conflict

    unknown = sorted(set(changes) - set(REPLACEABLE))
    if unknown:
        raise ValueError(f"replace_link cannot change {unknown}")
    if link.replaced_by_id is not None:
        raise Conflict(_("This link was already replaced; edit its newest version."), code="link_replaced")
    now = utcnow()
    current = {"destination": link.destination, "package": link.package, "channel": link.channel,
               "group": link.group, "campaign": link.campaign, "utm": dict(link.utm or {}),
               # An expiry that has passed is not carried over: the new link is meant to be used.
               "expires_at": link.expires_at if link.expires_at and link.expires_at > now else None}
    wanted = {**current, **changes}
    same = (wanted["destination"] == link.destination and getattr(wanted["package"], "id", None) == link.package_id
            and getattr(wanted["channel"], "id", None) == link.channel_id
            and getattr(wanted["group"], "id", None) == link.group_id
            and ((wanted["campaign"] or "").strip() or None) == link.campaign
            and _validate_utm(wanted["utm"]) == (link.utm or {}) and wanted["expires_at"] == link.expires_at)
    if same:
        return link
    customer = None
    if link.customer_id is not None:
        from advisor_studio.referrals.models import Customer

        customer = db.session.get(Customer, link.customer_id)
    # Claim the old link first (disabled, still unreplaced): of two people replacing it at once one
    # wins here, and a customer's one-current-link index never sees two enabled links of theirs.
    if not compare_and_set(link, [ReferralLink.replaced_by_id.is_(None)], enabled=False,
                           disabled_at=link.disabled_at or now):
        raise stale_conflict(_("referral link"))
    new = create_link(owner=link.owner, actor=actor, customer=customer, **wanted)
    link.replaced_by_id = new.id
    db.session.flush()
    audit.record("link.replaced", "referral_link", link.id, actor=actor,
                 details={"code": link.code, "replaced_by": new.code, "replaced_by_id": new.id,
                          "changed": sorted(k for k in changes if k in REPLACEABLE)})
    return new


def bulk_links_for_groups(*, owner, actor, destination, package=None, campaign=None, utm=None,
                          expires_at=None) -> list[ReferralLink]:
    """One new link per active group of ``owner`` (optionally for one of their packages), all or none."""
    groups = list(db.session.scalars(
        sa.select(CommunityGroup).where(CommunityGroup.owner_id == owner.id, CommunityGroup.active.is_(True),
                                        CommunityGroup.archived_at.is_(None)).order_by(CommunityGroup.id)))
    if not groups:
        raise ValidationError(_("You have no active community groups yet. Add a group first."),
                              fields={"target": _("no active groups")})
    return [create_link(owner=owner, actor=actor, destination=destination, package=package, group=group,
                        campaign=campaign, utm=utm, expires_at=expires_at) for group in groups]


def bulk_links_for_channels(*, owner, actor, package, destination, campaign=None, utm=None,
                            expires_at=None) -> list[ReferralLink]:
    """One new link per target channel of ``owner``'s approved ``package``, all or none."""
    from advisor_studio.studio.models import PKG_APPROVED

    if package is None or package.status != PKG_APPROVED:
        raise ValidationError(_("Choose one of your approved packages."), fields={"package": _("not approved")})
    if not package.channels:
        raise ValidationError(_("The package targets no channels."), fields={"package": _("no channels")})
    return [create_link(owner=owner, actor=actor, destination=destination, package=package, channel=channel,
                        campaign=campaign, utm=utm, expires_at=expires_at) for channel in package.channels]


def link_live_clause(now: datetime | None = None) -> sa.ColumnElement[bool]:
    """SQL condition on links that still redirect: enabled, not replaced, not expired (one definition;
    ``link_is_live`` is its Python twin, tested to agree)."""
    now = now or utcnow()
    return sa.and_(ReferralLink.enabled.is_(True), ReferralLink.replaced_by_id.is_(None),
                   sa.or_(ReferralLink.expires_at.is_(None), ReferralLink.expires_at > now))


def link_is_live(enabled: bool, expires_at: datetime | None, replaced_by_id: int | None = None,
                 now: datetime | None = None) -> bool:
    """Python twin of ``link_live_clause`` for values already in memory (the redirect's cache)."""
    now = now or utcnow()
    return bool(enabled) and replaced_by_id is None and (expires_at is None or expires_at > now)
