"""POST /api/v1/conversions: the account-opening system's events (contract.md "Conversion webhook").

Authenticated by an HMAC over "<t>.<raw body>" instead of a session, hence CSRF-exempt. The checks
run cheapest first, and nothing is stored unless every one passes.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify, request
from flask_babel import gettext as _

from advisor_studio.access import machine
from advisor_studio.errors import error_response
from advisor_studio.extensions import csrf, db
from advisor_studio.referrals import attribution, conversions

bp = Blueprint("referrals_api", __name__)

RACE_ATTEMPTS = 3


def _read_body(limit: int) -> bytes | None:
    """The raw body, or None when it is larger than ``limit`` (read no further than that)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    body = request.stream.read(limit + 1)
    return None if len(body) > limit else body


def _answer(outcome: conversions.Outcome):
    response = jsonify(outcome.body)
    response.status_code = outcome.status
    response.headers["Cache-Control"] = "no-store"
    return response


def _lost_race(err: Exception) -> bool:
    # A unique index fired (the same key or customer committed meanwhile), or SQLite refused to upgrade
    # a read snapshot another writer has moved past: both succeed when the request is run again.
    if isinstance(err, sa.exc.IntegrityError):
        return True
    return isinstance(err, sa.exc.OperationalError) and "locked" in str(err.orig).lower()


@bp.post("/api/v1/conversions")
@machine("hmac")
@csrf.exempt
def conversions_webhook():
    """Record one conversion event, once per Idempotency-Key."""
    body = _read_body(current_app.config["CONVERSION_MAX_BODY_BYTES"])
    if body is None:
        return error_response(413, _("The body is larger than %(n)d bytes.",
                                     n=current_app.config["CONVERSION_MAX_BODY_BYTES"]), "body_too_large")
    if not attribution.signature_is_valid(current_app.config["CONVERSION_WEBHOOK_SECRET"],
                                          request.headers.get("X-Signature"), body, time.time()):
        return error_response(401, _("Missing, invalid or stale X-Signature."), "bad_signature")
    key = request.headers.get("Idempotency-Key")
    if not attribution.idempotency_key_is_valid(key):
        return error_response(400, _("The Idempotency-Key header is required (1 to 255 printable ASCII "
                                     "characters)."), "bad_idempotency_key",
                              {"Idempotency-Key": _("required, 1 to 255 printable ASCII characters")})
    digest = attribution.body_sha256(body)
    earlier = conversions.replay(key, digest)
    if earlier is not None:
        return _answer(earlier)
    event = conversions.validate_event(conversions.decode_body(body))
    for attempt in range(RACE_ATTEMPTS):
        try:
            outcome = conversions.record_conversion(event, idempotency_key=key, digest=digest)
            db.session.commit()
            return _answer(outcome)
        except (sa.exc.IntegrityError, sa.exc.OperationalError) as err:
            db.session.rollback()
            if attempt == RACE_ATTEMPTS - 1 or not _lost_race(err):
                raise
    raise AssertionError("unreachable")  # pragma: no cover
