"""`flask fraud detect` and the periodic detection task."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from advisor_studio.accounts.models import User
from advisor_studio.analytics.fraud_tasks import detect_fraud
from advisor_studio.analytics.models import FLAG_VISITOR_BURST, FraudFlag
from advisor_studio.dbtypes import utcnow
from advisor_studio.extensions import db
from advisor_studio.referrals import services as referrals
from tests.analytics.fraud_helpers import T0, add_click

DEST = "https://kaihu.example.com/open"


def _burst(app, users, start, visitor="cli"):
    with app.app_context():
        advisor = db.session.get(User, users["advisor"].id)
        link = referrals.create_link(owner=advisor, actor=advisor, destination=DEST)
        for i in range(20):
            add_click(link, start + timedelta(seconds=i), visitor=visitor)
        db.session.commit()


def _flags(app) -> list[tuple[str, str]]:
    with app.app_context():
        return [(f.kind, f.status) for f in db.session.scalars(sa.select(FraudFlag))]


def test_detect_command_over_days_prints_what_it_did_and_is_idempotent(app, users):
    _burst(app, users, T0)
    runner = app.test_cli_runner()
    day = T0.date().isoformat()
    first = runner.invoke(args=["fraud", "detect", "--from", day, "--to", day])
    assert first.exit_code == 0, first.output
    summary = json.loads(first.output)
    assert summary["raised"] == {FLAG_VISITOR_BURST: 1} and summary["items_added"] == {FLAG_VISITOR_BURST: 20}
    again = json.loads(runner.invoke(args=["fraud", "detect", "--from", day, "--to", day]).output)
    assert again["raised"] == {} and again["items_added"] == {}
    assert _flags(app) == [(FLAG_VISITOR_BURST, "open")]


@pytest.mark.parametrize("args", [["--from", "2026-11-30", "--to", "2026-11-01"], ["--from", "30.11.2026"],
                                  ["--from", "2016-01-01", "--to", "2026-01-01"]])
def test_detect_command_refuses_bad_ranges_with_exit_2_and_stores_nothing(app, users, args):
    _burst(app, users, T0)
    result = app.test_cli_runner().invoke(args=["fraud", "detect", *args])
    assert result.exit_code == 2 and result.output.strip()
    assert _flags(app) == []


def test_detect_command_without_dates_covers_the_recent_window(app, users):
    _burst(app, users, utcnow() - timedelta(minutes=30))
    _burst(app, users, utcnow() - timedelta(days=2), visitor="old")
    result = app.test_cli_runner().invoke(args=["fraud", "detect"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["raised"] == {FLAG_VISITOR_BURST: 1}


def test_periodic_task_flags_recent_bursts_and_commits(app, users):
    _burst(app, users, utcnow() - timedelta(minutes=10))
    with app.app_context():
        summary = detect_fraud()
    assert summary["raised"] == {FLAG_VISITOR_BURST: 1}
    assert _flags(app) == [(FLAG_VISITOR_BURST, "open")]


def test_beat_schedules_the_detection(app):
    schedule = app.extensions["celery"].conf.beat_schedule
    entry = schedule["detect-fraud"]
    assert entry["task"] == "advisor_studio.analytics.detect_fraud"
    assert entry["schedule"] == app.config["FRAUD_DETECT_INTERVAL_SECONDS"]
    assert detect_fraud.name in app.extensions["celery"].tasks
