"""Every state change of distribution: partners, channels and API keys."""

from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa
from flask_babel import gettext as _

from advisor_studio import audit
from advisor_studio.dbtypes import utcnow
from advisor_studio.distribution.models import PLATFORMS, Channel, Partner, PartnerApiKey
from advisor_studio.errors import Conflict, ValidationError
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
    if not raw or not raw.startswith(KEY_PREFIX) or len(raw) > 200:
        return None
    key = db.session.scalar(sa.select(PartnerApiKey).where(PartnerApiKey.key_hash == hash_api_key(raw),
                                                          PartnerApiKey.revoked_at.is_(None)))
    if key is None or not key.partner.active:
        return None
    return key.partner
