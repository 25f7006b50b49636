"""Celery tasks of referrals: draining the click spool (celery beat, every second)."""

from __future__ import annotations

from celery import shared_task

from advisor_studio.referrals import clicks


@shared_task(name="advisor_studio.referrals.drain_clicks", ignore_result=True)
def drain_clicks() -> int:
    """Move spooled clicks into ``clicks``; idempotent, safe to run twice at once."""
    return clicks.drain()
