"""Serving stored rendition files: every request is authorized, checked against the recorded SHA-256,
logged and audited.

A whole-file GET is hashed while it streams; when the hash does not match at the end, the alert is
raised and the stream is broken off, so the client never receives a complete, clean response. A byte
range cannot be hashed as it goes, so it is only served while the file is known to be unchanged since
its last full verification (``services.range_allowed``).

Refusals: 410 for a signed link whose approval or audience is no longer valid (or a forged, expired or
purpose-less token); 409 for a file whose bytes no longer match (``integrity_mismatch``).

With S3 storage a signed link is answered with a redirect to a presigned GET that lives at most
``PRESIGN_TTL_SECONDS``: the app cannot hash bytes it does not relay, so the file is verified first
(``services.range_allowed``: the last full verification if the object is unchanged since, else S3's own
whole-object SHA-256, else a full re-hash), and only then handed over.

Every signed response and refusal carries ``Cache-Control: no-store``: a cached copy would outlive a
withdrawal.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from flask import Response, current_app, redirect, request, stream_with_context
from flask_babel import gettext as _
from sqlalchemy.exc import SQLAlchemyError

from advisor_studio import storage
from advisor_studio.errors import error_response
from advisor_studio.extensions import db
from advisor_studio.integrity import services
from advisor_studio.integrity.models import DETECTED_DOWNLOAD, DETECTED_RANGE, FILE_COVER, FILE_KINDS, FILE_VIDEO
from advisor_studio.web import plan_download

# A presigned URL cannot be revoked, so it lives no longer than a player needs to start the request.
PRESIGN_TTL_SECONDS = 60
NO_STORE = "private, no-store"

VIA_SIGNED = "signed"
VIA_APP = "app"
CONTENT_TYPES = {FILE_VIDEO: "video/mp4", FILE_COVER: "image/jpeg"}


class IntegrityBreak(Exception):
    """Raised inside a streaming body whose bytes did not hash to the recorded SHA-256: the server
    then drops the connection instead of finishing a response that looks complete."""


@dataclass(frozen=True)
class Audience:
    """Who a signed link was issued to: a user (holding ``role``) or a partner (through an API key, or
    through one of its mcn users in the portal)."""

    user_id: int | None = None
    role: str | None = None
    partner_id: int | None = None
    # For a partner: the API key the link was issued through (None in the portal) and the asset
    # (assignment) it was issued for; both are logged with every follow.
    api_key_id: int | None = None
    assignment_id: int | None = None

    def claims(self) -> dict:
        if self.partner_id is not None:
            claims = {"pt": self.partner_id}
            if self.api_key_id is not None:
                claims["ak"] = self.api_key_id
            if self.assignment_id is not None:
                claims["as"] = self.assignment_id
            if self.user_id is not None:
                claims["u"] = self.user_id
            return claims
        return {"u": self.user_id, "ro": self.role}

    @classmethod
    def from_claims(cls, claims: dict) -> Audience | None:
        if isinstance(claims.get("pt"), int):
            key, asset, user = claims.get("ak"), claims.get("as"), claims.get("u")
            if any(value is not None and not isinstance(value, int) for value in (key, asset, user)):
                return None
            return cls(partner_id=claims["pt"], api_key_id=key, assignment_id=asset, user_id=user)
        if isinstance(claims.get("u"), int) and isinstance(claims.get("ro"), str):
            return cls(user_id=claims["u"], role=claims["ro"])
        return None

    @property
    def actor_label(self) -> str:
        return f"partner:{self.partner_id}" if self.partner_id is not None else f"user:{self.user_id}"


def rendition_link(rendition, audience: Audience, *, file_kind: str = FILE_VIDEO, filename: str | None = None,
                   ttl_seconds: int | None = None, external: bool = False) -> str:
    """A signed, expiring URL for one file of an approved rendition, bound to ``audience``."""
    if file_kind not in FILE_KINDS:
        raise ValueError(f"unknown file kind {file_kind!r}")
    purpose = {"r": rendition.id, "k": file_kind, **audience.claims()}
    return storage.download_url(purpose, ttl_seconds, filename, external=external)


def approved_rendition(approval):
    """The rendition an approval covers (pinned in its manifest), whatever the package points to today."""
    from advisor_studio.video.models import Rendition

    rendition_id = (approval.manifest or {}).get("rendition_id") if approval is not None else None
    return db.session.get(Rendition, rendition_id) if isinstance(rendition_id, int) else None


def _client_address() -> str | None:
    # The app runs behind ProxyFix where configured, so remote_addr is the client's address.
    return request.remote_addr


def _refuse(status: int, reason: str, message: str, *, rendition_id=None, file_kind=None, via=VIA_SIGNED,
            user_id=None, partner_id=None, api_key_id=None, assignment_id=None, actor=None) -> Response:
    """Log and audit a refused follow, commit that, and answer ``status`` with a clear message."""
    db.session.rollback()
    services.log_download(user_id=user_id, partner_id=partner_id, api_key_id=api_key_id,
                          assignment_id=assignment_id, rendition_id=rendition_id, file_kind=file_kind,
                          via=via, method=request.method, status=status, reason=reason,
                          address=_client_address(), actor=actor)
    db.session.commit()
    response = error_response(status, message, reason)
    response.headers["Cache-Control"] = NO_STORE
    return response


def _partner_has_access(audience: Audience, rendition, approval) -> bool:
    """A partner's link: partner active, key unrevoked, and the asset it names still live and on
    exactly this approval of this rendition (a renewed approval makes new assets, so old links die)."""
    from advisor_studio.accounts.models import User
    from advisor_studio.distribution.models import ASSET_LIVE_STATUSES, Assignment, Partner, PartnerApiKey

    partner = db.session.get(Partner, audience.partner_id)
    if partner is None or not partner.active:
        return False
    if audience.api_key_id is not None:
        key = db.session.get(PartnerApiKey, audience.api_key_id)
        if key is None or key.partner_id != partner.id or key.revoked_at is not None:
            return False
    if audience.user_id is not None:  # issued in the portal: the mcn user must still work for this partner
        user = db.session.get(User, audience.user_id)
        if user is None or not user.active or not user.has_role("mcn") or user.partner_id != partner.id:
            return False
    if audience.assignment_id is None:
        # Links issued before they named an asset: any active channel of this partner on the package.
        return any(c.partner_id == partner.id and c.active for c in rendition.package.channels)
    assignment = db.session.get(Assignment, audience.assignment_id)
    return (assignment is not None and assignment.partner_id == partner.id
            and assignment.package_id == rendition.package_id and assignment.status in ASSET_LIVE_STATUSES
            and assignment.approval_id == approval.id)


def _audience_has_access(audience: Audience, rendition, approval) -> bool:
    from advisor_studio.accounts.models import User
    from advisor_studio.video.permissions import can_view_rendition

    if audience.partner_id is not None:
        return _partner_has_access(audience, rendition, approval)
    user = db.session.get(User, audience.user_id or 0)
    if user is None or not user.active or not user.has_role(audience.role or ""):
        return False
    return can_view_rendition(user, rendition)


def serve_signed(token: str) -> Response:
    """Answer a follow of ``/files/<token>``: decode the token, then ``serve_approved_rendition``."""
    from advisor_studio.video.models import Rendition

    try:
        payload = storage.read_download_token(token)
    except storage.StorageError:
        return _refuse(410, "invalid_link", _("This download link is invalid or has expired."),
                       actor="anonymous")
    purpose = payload["p"]
    audience = Audience.from_claims(purpose)
    rendition = db.session.get(Rendition, purpose.get("r")) if isinstance(purpose.get("r"), int) else None
    if audience is None or rendition is None or purpose.get("k") not in FILE_KINDS:
        return _refuse(410, "invalid_link", _("This download link is invalid or has expired."),
                       actor="anonymous")
    response = serve_approved_rendition(rendition, audience, file_kind=purpose["k"], filename=payload.get("f"),
                                        link_expires_at=int(payload.get("x", 0)))
    response.headers["Cache-Control"] = NO_STORE
    return response


def serve_approved_rendition(rendition, audience: Audience, *, file_kind: str = FILE_VIDEO,
                             filename: str | None = None, link_expires_at: int | None = None) -> Response:
    """Serve one file of a rendition whose package approval is live, to an audience that still has access.

    Checks on every request (not only when the link was issued): the package's live approval covers
    this rendition and the audience may still see it; otherwise 410. Then verifies, logs and streams
    (or, on S3, redirects to a short-lived presigned GET).
    """
    from advisor_studio.compliance import services as compliance

    who = {"user_id": audience.user_id, "partner_id": audience.partner_id, "api_key_id": audience.api_key_id,
           "assignment_id": audience.assignment_id, "actor": audience.actor_label,
           "rendition_id": rendition.id, "file_kind": file_kind}
    approval = compliance.live_approval(rendition.package)
    if approval is None or (approval.manifest or {}).get("rendition_id") != rendition.id:
        return _refuse(410, "approval_not_live", _("This content is no longer approved; the link has been revoked."),
                       **who)
    if not _audience_has_access(audience, rendition, approval):
        return _refuse(410, "audience_revoked", _("You no longer have access to this content."), **who)
    files = {f.file_kind: f for f in services.rendition_files(rendition, approval)}
    file = files.get(file_kind)
    if file is None:
        return _refuse(410, "no_file", _("This file does not exist."), **who)
    recorded = rendition.sha256 if file_kind == FILE_VIDEO else rendition.cover_sha256
    if recorded != file.expected_sha256:
        # The rendition row and the approval disagree: the database was changed behind the approval.
        services.raise_alert(file, recorded, DETECTED_DOWNLOAD)
        db.session.commit()
        return _refuse(409, "integrity_mismatch", mismatch_message(), **who)
    if filename is None:
        filename = default_filename(rendition, file_kind)
    return serve_verified(file, via=VIA_SIGNED, filename=filename, link_expires_at=link_expires_at, **who)


def default_filename(rendition, file_kind: str) -> str:
    """The name a saved file gets when the link named none: the package title, else the rendition id."""
    # Printable characters only: a header value cannot carry a line break or other control character.
    title = "".join(ch for ch in (getattr(rendition.package, "title", None) or "") if ch.isprintable()).strip()
    base = title[:80] if title else f"rendition-{rendition.id}"
    return f"{base}.mp4" if file_kind == FILE_VIDEO else f"{base}-cover.jpg"


def serve_rendition_in_app(rendition, user, *, file_kind: str = FILE_VIDEO) -> Response:
    """Serve a rendition file to a signed-in user the route already authorized (preview, review)."""
    from advisor_studio.compliance import services as compliance

    who = {"user_id": user.id, "partner_id": None, "actor": user, "rendition_id": rendition.id,
           "file_kind": file_kind}
    approval = compliance.live_approval(rendition.package)
    if approval is not None and (approval.manifest or {}).get("rendition_id") != rendition.id:
        approval = None
    # Not yet approved: the rendition's own recorded hash; approved: the manifest's, which must agree.
    own = {f.file_kind: f for f in services.rendition_files(rendition)}.get(file_kind)
    file = {f.file_kind: f for f in services.rendition_files(rendition, approval)}.get(file_kind)
    if file is None or own is None or not file.expected_sha256:
        return _refuse(404, "no_file", _("This file does not exist."), via=VIA_APP, **who)
    if own.expected_sha256 != file.expected_sha256:
        services.raise_alert(file, own.expected_sha256, DETECTED_DOWNLOAD)
        db.session.commit()
        return _refuse(409, "integrity_mismatch", mismatch_message(), via=VIA_APP, **who)
    return serve_verified(file, via=VIA_APP, **who)


def mismatch_message() -> str:
    """What a user reads when stored bytes no longer match: the file is withheld and compliance alerted."""
    return _("This file no longer matches the version on record. It has been withheld and compliance "
             "has been alerted.")


def serve_verified(file: services.StoredFile, *, via: str, user_id, partner_id, actor, rendition_id, file_kind,
                   filename: str | None = None, api_key_id=None, assignment_id=None,
                   link_expires_at: int | None = None) -> Response:
    """Stream a stored file with Range support, checking its bytes against ``file.expected_sha256``;
    on a backend with presigned URLs, a signed link gets a redirect once the file is verified."""
    who = {"user_id": user_id, "partner_id": partner_id, "api_key_id": api_key_id,
           "assignment_id": assignment_id, "actor": actor, "rendition_id": rendition_id,
           "file_kind": file_kind, "via": via}
    store = storage.get_storage()
    if services.open_alert_for(file.key) is not None:
        return _refuse(409, "integrity_mismatch", mismatch_message(), **who)
    try:
        size = store.size(file.key)
        fingerprint = store.fingerprint(file.key)
    except storage.StorageError:
        services.raise_alert(file, None, DETECTED_DOWNLOAD)
        db.session.commit()
        return _refuse(409, "integrity_mismatch", mismatch_message(), **who)
    plan = plan_download(size, filename)
    content_type = CONTENT_TYPES.get(file_kind, "application/octet-stream")
    url = None
    if via == VIA_SIGNED and plan.status != 416:
        url = store.presigned_url(file.key, _presign_ttl(link_expires_at), filename,
                                  content_type=content_type, cache_control=NO_STORE)
    if url is not None or plan.status == 206:
        # Bytes the app does not hash as it sends them (a range, or anything S3 sends directly) are
        # only handed over while the file is known to match.
        detected = DETECTED_RANGE if plan.status == 206 else DETECTED_DOWNLOAD
        if not services.range_allowed(file, detected):
            db.session.commit()  # keep the alert the check may have raised
            return _refuse(409, "integrity_mismatch", mismatch_message(), **who)
    log = {"start": plan.start if plan.status == 206 else None, "end": plan.end if plan.status == 206 else None,
           "address": _client_address(), "method": request.method, "file_kind": file_kind,
           "rendition_id": rendition_id, "user_id": user_id, "partner_id": partner_id,
           "api_key_id": api_key_id, "assignment_id": assignment_id, "actor": actor, "via": via}
    if url is not None:
        # The bytes S3 will send for this request: what the same request would have got from us.
        services.log_download(status=302, bytes_sent=plan.length if request.method != "HEAD" else 0, **log)
        db.session.commit()
        response = redirect(url, code=302)
        response.headers["Cache-Control"] = NO_STORE
        return response
    sending = plan.length if request.method != "HEAD" else 0
    services.log_download(status=plan.status, bytes_sent=sending, **log)
    db.session.commit()
    if plan.status == 416:
        return Response(status=416, headers=plan.headers)
    if request.method == "HEAD":
        return Response(status=plan.status, headers=plan.headers, content_type=content_type)
    if plan.is_whole:  # an empty file too: a file truncated to nothing must not pass unhashed
        body = stream_with_context(_hashing_stream(file, fingerprint))
    else:
        body = stream_with_context(store.iter_range(file.key, plan.start, plan.end))
    return Response(body, status=plan.status, headers=plan.headers, content_type=content_type,
                    direct_passthrough=True)


def _presign_ttl(link_expires_at: int | None) -> int:
    """At most PRESIGN_TTL_SECONDS, and never past the expiry of the app's own link."""
    ttl = PRESIGN_TTL_SECONDS
    if link_expires_at:
        ttl = min(ttl, int(link_expires_at - time.time()))
    return max(ttl, 1)


def _hashing_stream(file: services.StoredFile, fingerprint: str):
    """Yield the whole file while hashing it; on a mismatch, raise the alert and break the stream."""
    digest = hashlib.sha256()
    held = b""
    for chunk in storage.get_storage().iter_range(file.key):
        digest.update(chunk)
        # One chunk is held back until the hash is known, so a tampered file never arrives whole.
        if held:
            yield held
        held = chunk
    actual = digest.hexdigest()
    if actual != file.expected_sha256:
        current_app.logger.error("integrity mismatch while streaming %s: expected %s, got %s",
                                 file.key, file.expected_sha256, actual)
        try:
            # The request's transaction ended before streaming began; this is a new, short one.
            services.raise_alert(file, actual, DETECTED_DOWNLOAD)
            db.session.commit()
        except Exception:
            db.session.rollback()
            current_app.logger.exception("could not record the integrity alert for %s", file.key)
        raise IntegrityBreak(file.key)
    try:
        services.record_verified(file.key, actual, fingerprint)
        db.session.commit()
    except SQLAlchemyError:
        # The bytes were verified; failing to remember it only means the next Range request re-hashes.
        db.session.rollback()
        current_app.logger.exception("could not record the verification of %s", file.key)
    if held:
        yield held
