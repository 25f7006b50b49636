"""Rollups: incremental refresh equals a rebuild, nothing is counted twice, dirty days and fraud flags."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from advisor_studio.analytics import rollups
from advisor_studio.analytics.models import DailyRollup, DirtyDay, FraudFlag, FraudFlagItem, RollupState
from advisor_studio.analytics.services import mark_days_dirty
from advisor_studio.extensions import db
from advisor_studio.referrals.models import Conversion
from tests.analytics.conftest import (
    at,
    click,
    event,
    make_channel_link,
    make_group_link,
    new_link,
    rollup_snapshot,
    traffic_batch,
)


def _links(users) -> list:
    return [make_channel_link(users["advisor"].id, campaign="双十一"),
            make_group_link(users["advisor"].id),
            new_link(users["advisor2"].id, campaign="春季")]


@pytest.fixture
def no_lookback(monkeypatch):
    """Refresh strictly above the marks, so the look-back cannot hide a missed day."""
    monkeypatch.setattr(rollups, "LOOKBACK_ROWS", 0)


def test_refresh_after_each_batch_equals_one_rebuild(app, users, no_lookback):
    with app.app_context():
        links = _links(users)
        db.session.commit()
        incremental = None
        for batch in range(4):
            traffic_batch(links, batch)
            db.session.commit()
            rollups.refresh()
        incremental = rollup_snapshot()
        segments = {row.segment for row in db.session.execute(sa.select(DailyRollup.segment))}
        assert segments == {"counted", "bot", "employee"}
        rollups.rebuild()
        assert rollup_snapshot() == incremental
        rollups.rebuild()  # idempotent
        rollups.refresh()  # nothing new: no change
        assert rollup_snapshot() == incremental
        # The marks cover every raw row; the rollups hold every counted click once.
        state = db.session.get(RollupState, rollups.STATE_NAME)
        assert state.last_conversion_pk == db.session.scalar(sa.select(sa.func.max(Conversion.id)))
        assert state.fresh_as_of is not None


def test_rebuild_of_a_range_recomputes_only_it_and_drops_rows_of_days_without_data(app, users):
    with app.app_context():
        links = _links(users)
        traffic_batch(links, 0)
        db.session.commit()
        rollups.rebuild()
        before = rollup_snapshot()
        # An insider's stray row on a day without raw data, and a wrong figure on a day with data.
        db.session.add(DailyRollup(day=at(300).date(), segment="counted", clicks=99))
        db.session.execute(sa.update(DailyRollup).where(DailyRollup.day == at(3).date()).values(clicks=12345))
        db.session.commit()
        rollups.rebuild(at(3).date(), at(3).date())
        assert 12345 not in set(db.session.scalars(sa.select(DailyRollup.clicks)))
        rollups.rebuild(at(400).date(), at(200).date())
        assert rollup_snapshot() == before


def test_a_rejection_recorded_before_its_opening_counts_once_the_opening_arrives(app, users, no_lookback):
    with app.app_context():
        link = new_link(users["advisor"].id)
        first = click(link, at(5))
        event("late", "signup", at(5, 11), click_id=first.click_id)
        event("late", "account_rejected", at(2))  # the account system sent the rejection first
        db.session.commit()
        rollups.refresh()
        event("late", "account_opened", at(4))
        db.session.commit()
        rollups.refresh()
        incremental = rollup_snapshot()
        rejected = db.session.scalar(sa.select(sa.func.sum(DailyRollup.accounts_rejected)))
        assert rejected == 1
        rollups.rebuild()
        assert rollup_snapshot() == incremental


def test_confirming_a_fraud_flag_moves_its_rows_out_of_counted_on_the_next_refresh(app, users):
    with app.app_context():
        link = new_link(users["advisor"].id)
        clicked = click(link, at(3), visitor="a")
        event("fraudster", "signup", at(3, 11), click_id=clicked.click_id)
        opened = event("fraudster", "account_opened", at(3, 12))
        db.session.commit()
        rollups.refresh()

        def counted(column):
            return db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(column), 0))
                                     .where(DailyRollup.segment == "counted"))

        assert (counted(DailyRollup.clicks), counted(DailyRollup.accounts_opened)) == (1, 1)
        flag = FraudFlag(kind="short_lag", subject=f"conversion:{opened['id']}", status="open",
                         advisor_id=users["advisor"].id, day=at(3).date(), detail={})
        db.session.add(flag)
        db.session.flush()
        db.session.add_all([FraudFlagItem(flag_id=flag.id, conversion_pk=opened["id"]),
                            FraudFlagItem(flag_id=flag.id, click_pk=clicked.id)])
        db.session.commit()
        rollups.refresh()
        assert counted(DailyRollup.accounts_opened) == 1  # an open flag changes nothing
        flag.status = "confirmed"
        mark_days_dirty([at(3).date()])
        db.session.commit()
        rollups.refresh()
        assert (counted(DailyRollup.clicks), counted(DailyRollup.accounts_opened)) == (0, 0)
        fraud = db.session.execute(sa.select(sa.func.sum(DailyRollup.clicks), sa.func.sum(DailyRollup.accounts_opened))
                                   .where(DailyRollup.segment == "fraud")).one()
        assert tuple(fraud) == (1, 1)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(DirtyDay)) == 0
        snapshot = rollup_snapshot()
        rollups.rebuild()
        assert rollup_snapshot() == snapshot


def test_a_refresh_that_dies_midway_leaves_each_day_whole_and_the_next_one_catches_up(app, users, monkeypatch,
                                                                                      no_lookback):
    with app.app_context():
        links = _links(users)
        traffic_batch(links, 0)
        db.session.commit()
        rollups.rebuild()
        before = rollup_snapshot()
        traffic_batch(links, 1)  # touches days 3..5 ago again, and a new one
        db.session.commit()
        monkeypatch.setattr(rollups, "DAYS_PER_TRANSACTION", 1)
        real = rollups._replace_days
        calls = []

        def dying(days):
            calls.append(days)
            if len(calls) == 2:
                raise RuntimeError("worker killed")
            return real(days)

        monkeypatch.setattr(rollups, "_replace_days", dying)
        with pytest.raises(RuntimeError):
            rollups.refresh()
        db.session.rollback()
        after_crash = rollup_snapshot()
        first_day = calls[0][0].isoformat()
        # The first day was recomputed and committed; every other day still has its previous rows.
        assert [r for r in after_crash if r[0] != first_day] == [r for r in before if r[0] != first_day]
        state = db.session.get(RollupState, rollups.STATE_NAME)
        db.session.refresh(state)
        monkeypatch.setattr(rollups, "_replace_days", real)
        rollups.refresh()
        incremental = rollup_snapshot()
        rollups.rebuild()
        assert rollup_snapshot() == incremental


def test_two_refreshes_at_once_count_everything_once(app, users, no_lookback):
    with app.app_context():
        links = _links(users)
        for batch in range(3):
            traffic_batch(links, batch)
        db.session.commit()
    errors = []
    barrier = threading.Barrier(2)

    def run():
        try:
            with app.app_context():
                barrier.wait(timeout=10)
                rollups.refresh()
                db.session.remove()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    with app.app_context():
        concurrent = rollup_snapshot()
        rollups.rebuild()
        assert rollup_snapshot() == concurrent


def test_days_and_platform_follow_the_raw_rows(app, users):
    with app.app_context():
        link = make_channel_link(users["advisor"].id, platform="bilibili")
        for days_ago in (1, 1, 4):
            click(link, at(days_ago), visitor=f"p{days_ago}")
        db.session.commit()
        rollups.refresh()
        rows = db.session.execute(sa.select(DailyRollup.day, DailyRollup.platform, DailyRollup.clicks,
                                            DailyRollup.unique_visitors, DailyRollup.partner_id)
                                  .order_by(DailyRollup.day)).all()
        assert [(r.day, r.platform, r.clicks, r.unique_visitors) for r in rows] == [
            (at(4).date(), "bilibili", 1, 1), (at(1).date(), "bilibili", 2, 1)]
        assert all(r.partner_id is not None for r in rows)
        assert at(4).date() + timedelta(days=3) == at(1).date()


def test_celery_beat_refreshes_the_rollups_every_minute(app, users, no_lookback):
    from advisor_studio.analytics.tasks import refresh_rollups

    schedule = app.extensions["celery"].conf.beat_schedule["refresh-rollups"]
    assert schedule["task"] == refresh_rollups.name and schedule["schedule"] == 60.0
    with app.app_context():
        click(new_link(users["advisor"].id), at(1))
        db.session.commit()
        assert refresh_rollups.run() == 1  # the one day with a new click
        assert db.session.scalar(sa.select(sa.func.sum(DailyRollup.clicks))) == 1
        assert refresh_rollups.run() == 0


def test_a_days_clicks_and_conversions_on_one_link_make_one_row_per_segment(app, users):
    with app.app_context():
        link = new_link(users["advisor"].id, campaign="双十一")
        first = click(link, at(2), visitor="v1")
        click(link, at(2, 11), visitor="v1")
        click(link, at(2, 12), visitor="crawler", bot=True)
        event("one", "signup", at(2, 13), click_id=first.click_id)
        event("one", "account_opened", at(2, 14))
        event("one", "funded", at(2, 15), amount="1234.56")
        # A customer whose only click is older than the attribution window: an unattributed row.
        stale = click(link, at(70), visitor="old")
        event("stale", "signup", at(2, 15, 30), click_id=stale.click_id)  # 23:30 in Beijing, the same day
        db.session.commit()
        result = rollups.rebuild()
        rows = db.session.execute(
            sa.select(DailyRollup.segment, DailyRollup.link_id, DailyRollup.campaign, DailyRollup.clicks,
                      DailyRollup.unique_visitors, DailyRollup.signups, DailyRollup.accounts_opened,
                      DailyRollup.funded_count, DailyRollup.funded_amount)
            .where(DailyRollup.day == at(2).date())).all()
        assert sorted((tuple(r) for r in rows), key=lambda r: (r[0], r[1] is None)) == [
            ("bot", link.id, "双十一", 1, 1, 0, 0, 0, Decimal("0.00")),
            ("counted", link.id, "双十一", 2, 1, 1, 1, 1, Decimal("1234.56")),
            ("counted", None, None, 0, 0, 1, 0, 0, Decimal("0.00")),
        ]
        assert result.rows == db.session.scalar(sa.select(sa.func.count()).select_from(DailyRollup)) == 4
