"""Celery task of fraud flags: detection over the recent window (celery beat, every few minutes)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from flask import current_app

from advisor_studio.analytics import fraud
from advisor_studio.dbtypes import utcnow
from advisor_studio.extensions import db


@shared_task(name="advisor_studio.analytics.detect_fraud", ignore_result=True)
def detect_fraud() -> dict:
    """Detect over the last FRAUD_DETECT_LOOKBACK_MINUTES and commit once; idempotent, safe to overlap."""
    end = utcnow()
    start = end - timedelta(minutes=current_app.config["FRAUD_DETECT_LOOKBACK_MINUTES"])
    result = fraud.detect(start, end)
    db.session.commit()
    return result.as_dict()
