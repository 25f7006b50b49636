"""The advisor slices (analytics_advisor_daily) hold the same figures as analytics_daily: every funnel the
query layer answers from them equals the same funnel summed from analytics_daily."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from advisor_studio.analytics import queries, rollups
from advisor_studio.analytics.models import AdvisorDailyRollup, DailyRollup, FraudFlag, FraudFlagItem
from advisor_studio.analytics.services import mark_days_dirty
from advisor_studio.dbtypes import business_today
from advisor_studio.extensions import db
from tests.analytics.conftest import at, click, event, make_channel_link, make_group_link, new_link, traffic_batch


@pytest.fixture
def varied(app, users):
    """Two advisors over channels, groups and campaigns, an employee, a confirmed fraud flag; rolled up."""
    with app.app_context():
        advisor, other = users["advisor"].id, users["advisor2"].id
        links = [make_channel_link(advisor, campaign="双十一"),
                 make_channel_link(advisor, platform="bilibili", partner="晨光MCN", campaign="双十一"),
                 make_group_link(advisor, name="价值投资一群", campaign="开门红"),
                 make_group_link(advisor, name="价值投资二群"),
                 new_link(advisor),
                 make_group_link(other, name="乙的群", campaign="开门红")]
        for batch in range(3):
            traffic_batch(links, batch)
        clicked = click(links[2], at(3), visitor="f")
        event("fraudster", "signup", at(3, 11), click_id=clicked.click_id)
        opened = event("fraudster", "account_opened", at(3, 12))
        flag = FraudFlag(kind="short_lag", subject=f"conversion:{opened['id']}", status="confirmed",
                         advisor_id=advisor, day=at(3).date(), detail={})
        db.session.add(flag)
        db.session.flush()
        db.session.add_all([FraudFlagItem(flag_id=flag.id, conversion_pk=opened["id"]),
                            FraudFlagItem(flag_id=flag.id, click_pk=clicked.id)])
        mark_days_dirty([at(3).date()])
        db.session.commit()
        rollups.refresh()
        assert set(db.session.scalars(sa.select(DailyRollup.segment).distinct())) == {
            "counted", "bot", "employee", "fraud"}
        return {"advisor": advisor, "group": links[2].group_id, "channel": links[0].channel_id}


def _figures(result: queries.Funnel) -> tuple:
    def row(r):
        return (r.key, r.label, r.export_key, r.contract_dict(), r.customer_referrals)

    return ([row(r) for r in result.rows], row(result.total), result.previous and row(result.previous),
            {k: row(r) for k, r in result.previous_rows.items()},
            {k: row(r) for k, r in result.excluded.items()})


CASES = [
    # (scope is the advisor, by, filters): at most one dimension besides the advisor -> slices
    (False, None, {}), (True, None, {}), (False, "advisor", {}), (False, "group", {}), (True, "group", {}),
    (False, "campaign", {}), (False, "channel", {}), (False, "partner", {}), (False, "platform", {}),
    (False, "package", {}), (False, "day", {}), (True, "week", {}), (False, "month", {}),
    (False, "day", {"group": "group"}), (False, "advisor", {"campaign": "开门红"}),
    (False, "group", {"advisor": "advisor"}), (True, "campaign", {"campaign": "双十一"}),
    # two dimensions -> analytics_daily (the slices cannot answer; compared all the same)
    (False, "campaign", {"group": "group"}), (True, "platform", {"channel": "channel"}),
]


@pytest.mark.parametrize("scoped, by, filters", CASES)
def test_every_funnel_from_the_slices_equals_the_same_funnel_from_analytics_daily(app, varied, monkeypatch,
                                                                                 scoped, by, filters):
    with app.app_context():
        filters = {name: varied.get(value, value) for name, value in filters.items()}
        scope = varied["advisor"] if scoped else None
        today = business_today()
        # The previous period (7 to 4 days ago) has traffic too.
        asked = dict(scope=scope, date_from=today - timedelta(days=3), date_to=today, by=by, filters=filters,
                     include_excluded=True)
        read = []
        real_execute = db.session.execute

        def spy(statement, *args, **kwargs):
            read.append(str(statement))
            return real_execute(statement, *args, **kwargs)

        monkeypatch.setattr(db.session, "execute", spy)
        from_slices = queries.funnel(**asked)
        monkeypatch.setattr(queries, "_source", lambda by, filters: (DailyRollup, None))
        from_links = queries.funnel(**asked)
        monkeypatch.undo()
        assert from_links.total.clicks > 0 and from_links.previous.clicks > 0
        assert _figures(from_slices) == _figures(from_links)
        two = len({*filters, by} - {"advisor", None, "day", "week", "month"}) > 1
        table = DailyRollup.__tablename__ if two else AdvisorDailyRollup.__tablename__
        assert table in read[0] and ("analytics_daily" in read[0]) == two


def test_the_slices_follow_a_refresh_and_a_ranged_rebuild(app, varied):
    with app.app_context():
        def per_day(model):
            return dict(db.session.execute(sa.select(model.day, sa.func.sum(model.clicks))
                                           .where(*([model.dimension == "all"] if model is AdvisorDailyRollup
                                                    else [])).group_by(model.day)).all())

        assert per_day(AdvisorDailyRollup) == per_day(DailyRollup) != {}
        day = at(4).date()
        rollups.rebuild(day, day)
        assert per_day(AdvisorDailyRollup) == per_day(DailyRollup)
        # A day with no raw rows any more keeps no slices either.
        db.session.add(AdvisorDailyRollup(day=at(300).date(), segment="counted", dimension="all", clicks=7))
        db.session.commit()
        rollups.rebuild(at(300).date(), at(200).date())
        assert at(300).date() not in per_day(AdvisorDailyRollup)
