"""Background jobs of distribution: deliver webhook events, and the minute sweep that retries due
deliveries and raises overdue take-downs. Every task takes ids (never objects) and is idempotent."""

from __future__ import annotations

from datetime import datetime, timedelta

from celery import shared_task
from flask import current_app

from advisor_studio.dbtypes import utcnow
from advisor_studio.distribution import services, webhooks
from advisor_studio.distribution.models import DELIVERY_DELIVERED, DELIVERY_PENDING, WebhookEvent
from advisor_studio.extensions import db

SWEEP_MAX_DELIVERIES = 200  # per sweep; the next minute's sweep continues where this one stopped


def deliver(event_pk: int, now: datetime | None = None) -> str:
    """One attempt at one event if it is due and next in line; return what happened.

    ``now`` drives the clock in tests; in production every step reads the real time.
    """
    claimed_at = now or utcnow()
    event = db.session.get(WebhookEvent, event_pk)
    if event is None or event.status != DELIVERY_PENDING:
        db.session.rollback()
        return "not_pending"
    timeout = float(current_app.config.get("WEBHOOK_TIMEOUT_SECONDS", webhooks.TIMEOUT_S))
    lease = webhooks.claim(event, claimed_at, max(webhooks.LEASE, timedelta(seconds=3 * timeout)))
    if lease is None:
        db.session.rollback()
        return "not_due"
    url, secret = event.partner.webhook_url, event.partner.webhook_secret
    body = webhooks.body_bytes(event.payload)
    if not url:
        webhooks.skip(event, lease)
        db.session.commit()
        return "skipped"
    # The claim is committed before the request, so another worker sees it and keeps off.
    db.session.commit()
    outcome = webhooks.post(url, body, secret, allow_private=current_app.config["WEBHOOK_ALLOW_PRIVATE"],
                            timeout=timeout)
    event = db.session.get(WebhookEvent, event_pk)
    status = webhooks.record_outcome(event, url, outcome, now=now or utcnow(), lease=lease)
    db.session.commit()
    return status


@shared_task(name="advisor_studio.distribution.deliver_webhook_event", acks_late=True)
def deliver_webhook_event(event_pk: int) -> str:
    """Deliver one event now (queued after the commit that recorded it); then the next of its asset."""
    status = deliver(event_pk)
    if status == DELIVERY_DELIVERED:
        # The next event of the same asset was waiting for this one: send it now, not at the next sweep.
        following = webhooks.next_in_line(db.session.get(WebhookEvent, event_pk))
        if following is not None:
            deliver_webhook_event.delay(following)
    return status


def deliver_due(now: datetime | None = None, *, limit: int = SWEEP_MAX_DELIVERIES) -> dict[str, int]:
    """Attempt every due event once, oldest first; an event that became next in line during the sweep
    (its predecessor was just delivered) is attempted in the same sweep. Return counts by outcome."""
    tried: set[int] = set()
    counts: dict[str, int] = {}
    while len(tried) < limit:
        ids = webhooks.due_event_ids(now or utcnow(), exclude=tried, limit=limit - len(tried))
        db.session.rollback()  # end the read transaction: each delivery runs its own
        if not ids:
            break
        for event_pk in ids:
            tried.add(event_pk)
            status = deliver(event_pk, now)
            counts[status] = counts.get(status, 0) + 1
    return counts


@shared_task(name="advisor_studio.distribution.sweep_webhooks", acks_late=True)
def sweep_webhooks() -> dict[str, int]:
    """Every minute (celery beat): raise overdue take-downs, then deliver every due webhook event."""
    return sweep()


def sweep(now: datetime | None = None) -> dict[str, int]:
    """The beat task's body with an injectable clock (tests drive time without sleeping)."""
    overdue = services.raise_overdue_takedowns(now)
    db.session.commit()
    counts = deliver_due(now)
    counts["overdue_raised"] = overdue
    return counts
