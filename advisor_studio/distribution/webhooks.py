"""Webhook delivery to partners: the signed body, the transport, the back-off schedule, and the
delivery state changes (claim, outcome, re-send, test event).

Nothing here commits. ``tasks.deliver`` claims an event and commits *before* the HTTP request (so a
second worker sees the claim and keeps off), then records the outcome in a second transaction.

The claim reuses ``next_attempt_at`` as a lease: claiming moves it ``LEASE`` into the future with a
compare-and-set, so the event is no longer due for anyone else; a worker that dies mid-send leaves
the event due again once the lease runs out (at-least-once; the event id lets the receiver drop a
duplicate). An event stays ``pending`` while leased, so it keeps blocking the later events of its
asset: per (partner, asset) events go out strictly in id order.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
import sqlalchemy.orm as so
import urllib3
from flask import current_app
from flask_babel import gettext as _

from advisor_studio import audit
from advisor_studio.concurrency import compare_and_set, stale_conflict
from advisor_studio.dbtypes import utcnow
from advisor_studio.distribution.models import (
    DELIVERY_DELIVERED,
    DELIVERY_FAILED,
    DELIVERY_PENDING,
    DELIVERY_SKIPPED,
    EVENT_TEST,
    Partner,
    WebhookAttempt,
    WebhookEvent,
)
from advisor_studio.distribution.urlsafety import UnsafeURL, parse_webhook_url, resolve_public
from advisor_studio.errors import Conflict, ValidationError
from advisor_studio.extensions import db

USER_AGENT = "AdvisorStudio-Webhooks/1"
TIMEOUT_S = 10.0  # connect and read together, per attempt (WEBHOOK_TIMEOUT_SECONDS)
# Longer than one attempt can take (the timeout bounds connect, read and excerpt), so a live worker never
# loses its claim; a dead one's event is due again this long after it was claimed.
LEASE = timedelta(minutes=2)
READ_LIMIT = 16 * 1024  # only an excerpt is kept; a receiver cannot make us read a huge body
EXCERPT_CHARS = 1000
MAX_ADDRESSES = 4  # addresses tried (connection errors only) before an attempt counts as failed


# --- body, signature, schedule (pure) ------------------------------------------------------------------

def body_bytes(payload: dict) -> bytes:
    """The exact bytes sent: deterministic (sorted keys, no spaces), so every retry signs the same body."""
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Signature`` value of contract.md: ``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def retry_ceiling(attempt: int, *, base: float, cap: float, factor: float = 2.0) -> float:
    """The longest wait after failed attempt number ``attempt`` (1-based): base * factor^(n-1), capped."""
    # min() before the power would overflow: 2**2000 is a float error, not "the cap".
    exponent = min(max(attempt, 1) - 1, 64)
    return min(cap, base * factor**exponent)


def retry_delay(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds until the next attempt: "full jitter" (uniform between 0 and the ceiling), so receivers
    that come back are not hit by every sender at the same instant."""
    return (rng or random).uniform(0.0, retry_ceiling(attempt, base=base, cap=cap))


def retry_settings() -> dict:
    """Base, cap and window of the retry schedule from the app config."""
    cfg = current_app.config
    return {"base": float(cfg.get("WEBHOOK_RETRY_BASE_SECONDS", 30)),
            "cap": float(cfg.get("WEBHOOK_RETRY_CAP_SECONDS", 3600)),
            "window": timedelta(hours=float(cfg.get("WEBHOOK_RETRY_HOURS", 24)))}


# --- transport -------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What one HTTP attempt gave."""

    ok: bool
    status_code: int | None = None
    latency_ms: int | None = None
    error: str | None = None
    excerpt: str | None = None


def _host_header(host: str, scheme: str, port: int) -> str:
    name = f"[{host}]" if ":" in host else host
    return name if port == (443 if scheme == "https" else 80) else f"{name}:{port}"


def _pool(scheme: str, address: str, port: int, host: str, timeout: float):
    pool_timeout = urllib3.Timeout(total=timeout)
    if scheme == "https":
        # Connect to the checked address, but verify the certificate for (and send SNI of) the URL's host.
        return urllib3.HTTPSConnectionPool(address, port, timeout=pool_timeout, retries=False, maxsize=1,
                                           server_hostname=host, assert_hostname=host, cert_reqs="CERT_REQUIRED")
    return urllib3.HTTPConnectionPool(address, port, timeout=pool_timeout, retries=False, maxsize=1)


def _read_excerpt(response, deadline: float) -> str:
    chunks, size = [], 0
    while size < READ_LIMIT and time.monotonic() < deadline:
        chunk = response.read(min(4096, READ_LIMIT - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks).decode("utf-8", "replace")[:EXCERPT_CHARS]


def post(url: str, body: bytes, secret: str | None, *, allow_private: bool, timeout: float = TIMEOUT_S) -> Outcome:
    """POST ``body`` signed with ``secret`` to ``url``; never raises, never follows a redirect.

    The URL is checked again here (server-side request forgery) and the connection goes to an address
    that passed the check, so a DNS answer changed after the check cannot redirect the request.
    """
    if not secret:
        return Outcome(ok=False, error="refused: the partner has no webhook secret")
    try:
        addresses = resolve_public(url, allow_private=allow_private)
        scheme, host, port = parse_webhook_url(url)
    except UnsafeURL as err:
        return Outcome(ok=False, error=f"refused: {err.message}"[:500])
    parts = urlsplit(url.strip())
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {"Host": _host_header(host, scheme, port), "Content-Type": "application/json; charset=utf-8",
               "User-Agent": USER_AGENT, "X-Signature": signature(secret, int(time.time()), body)}
    started = time.monotonic()
    deadline = started + timeout
    error = "no address"
    for address in addresses[:MAX_ADDRESSES]:
        pool = _pool(scheme, address, port, host, max(0.1, deadline - time.monotonic()))
        try:
            response = pool.urlopen("POST", target, body=body, headers=headers, retries=False, redirect=False,
                                    assert_same_host=False, preload_content=False, release_conn=False)
        except urllib3.exceptions.NewConnectionError as exc:
            error = f"connection failed: {exc}"  # nothing was sent: the next address may work
            pool.close()
            continue
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            pool.close()
            return Outcome(ok=False, latency_ms=_ms(started), error=f"{type(exc).__name__}: {exc}"[:500])
        try:
            excerpt = _read_excerpt(response, deadline)
        except (urllib3.exceptions.HTTPError, OSError):
            excerpt = ""  # the status line arrived; a broken body does not change the verdict
        finally:
            response.release_conn()
            pool.close()
        ok = 200 <= response.status < 300
        return Outcome(ok=ok, status_code=response.status, latency_ms=_ms(started), excerpt=excerpt,
                       error=None if ok else f"HTTP {response.status}")
    return Outcome(ok=False, latency_ms=_ms(started), error=error[:500])


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


# --- delivery state (no commits) -----------------------------------------------------------------------

@functools.cache
def _earlier_alias():
    """Built once (not at import: every mapper must exist first); an alias costs milliseconds to make."""
    return so.aliased(WebhookEvent, name="earlier_event")


def _no_earlier_pending():
    """SQL condition on WebhookEvent: no earlier event of the same asset for the same partner is pending.

    Events without an asset (test events) neither block nor are blocked (NULL never equals NULL).
    """
    earlier = _earlier_alias()
    return ~sa.exists().where(earlier.partner_id == WebhookEvent.partner_id,
                              earlier.assignment_id == WebhookEvent.assignment_id,
                              earlier.id < WebhookEvent.id, earlier.status == DELIVERY_PENDING)


def due_clause(now: datetime) -> sa.ColumnElement[bool]:
    """SQL condition on WebhookEvent: pending, due by ``now``, and next in line for its asset."""
    return sa.and_(WebhookEvent.status == DELIVERY_PENDING, WebhookEvent.next_attempt_at.is_not(None),
                   WebhookEvent.next_attempt_at <= now, _no_earlier_pending())


def due_event_ids(now: datetime, *, exclude=(), limit: int = 100) -> list[int]:
    """Ids of events to deliver now, oldest first."""
    stmt = sa.select(WebhookEvent.id).where(due_clause(now)).order_by(WebhookEvent.id).limit(limit)
    if exclude:
        stmt = stmt.where(WebhookEvent.id.not_in(list(exclude)))
    return list(db.session.scalars(stmt))


def claim(event: WebhookEvent, now: datetime, length: timedelta = LEASE) -> datetime | None:
    """Take the event for one attempt (compare-and-set on the lease); the lease, or None if not ours."""
    lease = now + length
    stmt = (sa.update(WebhookEvent).where(WebhookEvent.id == event.id, due_clause(now))
            .values(next_attempt_at=lease).execution_options(synchronize_session=False))
    if db.session.execute(stmt).rowcount != 1:
        return None
    return lease


def record_outcome(event: WebhookEvent, url: str, outcome: Outcome, *, now: datetime, lease: datetime,
                   rng: random.Random | None = None) -> str:
    """Write the attempt and the event's next state: delivered, retried later, or failed; return the status."""
    error = (outcome.error or "")[:500] or None
    db.session.add(WebhookAttempt(event_id=event.id, attempted_at=now, url=url[:500], status_code=outcome.status_code,
                                  latency_ms=outcome.latency_ms, ok=outcome.ok, error=error,
                                  response_excerpt=(outcome.excerpt or "")[:EXCERPT_CHARS] or None, run=event.run))
    attempts = event.attempts + 1
    if outcome.ok:
        values = {"status": DELIVERY_DELIVERED, "delivered_at": now, "next_attempt_at": None, "last_error": None}
    else:
        settings = retry_settings()
        deadline = (event.run_started_at or event.created_at) + settings["window"]
        if now >= deadline:
            values = {"status": DELIVERY_FAILED, "next_attempt_at": None}
        else:
            delay = retry_delay(attempts, base=settings["base"], cap=settings["cap"], rng=rng)
            # The last try happens at the end of the window rather than not at all.
            values = {"next_attempt_at": min(now + timedelta(seconds=delay), deadline)}
        values["last_error"] = error
    # Our lease must still hold: if it ran out and another worker took over, its outcome counts.
    if not compare_and_set(event, [WebhookEvent.status == DELIVERY_PENDING, WebhookEvent.next_attempt_at == lease],
                           attempts=attempts, **values):
        db.session.flush()  # the attempt row still tells what happened
        return "lease_lost"
    return values.get("status", DELIVERY_PENDING)


def skip(event: WebhookEvent, lease: datetime) -> None:
    """The partner's webhook URL was removed after the event was recorded: nothing to send it to."""
    compare_and_set(event, [WebhookEvent.status == DELIVERY_PENDING, WebhookEvent.next_attempt_at == lease],
                    status=DELIVERY_SKIPPED, next_attempt_at=None, last_error="the partner has no webhook URL")


def next_in_line(event: WebhookEvent) -> int | None:
    """The id of the next pending event of the same asset and partner (delivered right after this one)."""
    if event.assignment_id is None:
        return None
    return db.session.scalar(sa.select(WebhookEvent.id).where(
        WebhookEvent.partner_id == event.partner_id, WebhookEvent.assignment_id == event.assignment_id,
        WebhookEvent.id > event.id, WebhookEvent.status == DELIVERY_PENDING).order_by(WebhookEvent.id).limit(1))


def resend(event: WebhookEvent, *, actor, now: datetime | None = None) -> WebhookEvent:
    """Start a new delivery run of the same event (same event id, so the receiver can de-duplicate)."""
    from advisor_studio.distribution.services import _after_event_recorded

    now = now or utcnow()
    if event.status == DELIVERY_PENDING:
        raise Conflict(_("This event is still being delivered; wait for the result before sending it again."),
                       code="delivery_pending")
    if not event.partner.webhook_url:
        raise ValidationError(_("The partner has no webhook URL; set one on the partner first."),
                              fields={"webhook_url": _("required")})
    old = event.status
    if not compare_and_set(event, [WebhookEvent.status == old, WebhookEvent.run == event.run],
                           status=DELIVERY_PENDING, run=event.run + 1, run_started_at=now, attempts=0,
                           next_attempt_at=now, delivered_at=None, last_error=None):
        raise stale_conflict(_("webhook event"))
    audit.record("webhook.resent", "webhook_event", event.id, actor=actor,
                 details={"event_id": event.event_id, "type": event.type, "partner_id": event.partner_id,
                          "previous_status": old, "run": event.run})
    _after_event_recorded(event)
    return event


def send_test_event(partner: Partner, *, actor) -> WebhookEvent:
    """Record a ``test`` event for the partner (delivered like any other) and audit who sent it."""
    from advisor_studio.distribution.services import record_event

    if not partner.webhook_url:
        raise ValidationError(_("The partner has no webhook URL; set one on the partner first."),
                              fields={"webhook_url": _("required")})
    event = record_event(partner, EVENT_TEST, data={"asset_id": None, "status": None, "takedown_due_at": None})
    audit.record("webhook.test_sent", "partner", partner.id, actor=actor,
                 details={"event_id": event.event_id, "webhook_event_id": event.id})
    return event


# --- read side: the delivery log -------------------------------------------------------------------------

def delivery_log_query(*, partner_id: int | None = None, type_: str | None = None, status: str | None = None):
    """Events for the admin log, newest first, with partner and attempts loaded."""
    stmt = (sa.select(WebhookEvent).options(so.joinedload(WebhookEvent.partner),
                                            so.selectinload(WebhookEvent.attempt_rows))
            .order_by(WebhookEvent.id.desc()))
    if partner_id is not None:
        stmt = stmt.where(WebhookEvent.partner_id == partner_id)
    if type_:
        stmt = stmt.where(WebhookEvent.type == type_)
    if status:
        stmt = stmt.where(WebhookEvent.status == status)
    return stmt


def partners_for_log() -> list[Partner]:
    """Every partner, by name (the log's filter and the test-event form)."""
    return list(db.session.scalars(sa.select(Partner).order_by(Partner.name)))


def failed_delivery_count() -> int:
    """Events whose delivery gave up (the admin landing page shows them until re-sent)."""
    return db.session.scalar(sa.select(sa.func.count(WebhookEvent.id))
                             .where(WebhookEvent.status == DELIVERY_FAILED)) or 0
