"""Celery tasks of analytics: the rollup refresh (celery beat, every minute)."""

from __future__ import annotations

from celery import shared_task

from advisor_studio.analytics import rollups


@shared_task(name="advisor_studio.analytics.refresh_rollups", ignore_result=True)
def refresh_rollups() -> int:
    """Fold new clicks and conversions (and dirty days) into analytics_daily; safe to run twice at once."""
    return len(rollups.refresh().days)
