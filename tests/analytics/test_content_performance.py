"""Content performance: per package and channel, the latest partner-reported metrics joined with the
counted rollups (inserted here as the rollup refresh would write them), scoped per advisor, filtered,
paginated, and exported as CSV with the same numbers as the page."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from advisor_studio.analytics.models import DailyRollup, PublicationMetric
from advisor_studio.distribution import services as distribution
from advisor_studio.distribution.models import Assignment
from advisor_studio.extensions import db
from tests.conftest import signed_in
from tests.factories import make_channel
from tests.studio.test_pages import approved_package, count_queries

FROM, TO = date(2026, 11, 1), date(2026, 11, 30)
RANGE = "from=2026-11-01&to=2026-11-30&lang=en"
PAGE = "/analytics/content"
EXPORT = "/analytics/content/export.csv"


def _at(day: int, hour: int = 12) -> datetime:
    return datetime.combine(date(2026, 11, day), time(hour), tzinfo=UTC)


def _publish(assignment: Assignment, post: str):
    publication = distribution.report_publication(assignment, platform=assignment.channel.platform,
                                                  post_url=f"https://www.douyin.com/video/{post}",
                                                  published_at=datetime.now(UTC), actor="test")
    publication.published_at = _at(1, 0)
    return publication


def _metric(publication, day: int, views: int, likes: int = 0, comments: int = 0, shares: int = 0, hour: int = 12):
    db.session.add(PublicationMetric(publication_id=publication.id, observed_at=_at(day, hour), views=views,
                                     likes=likes, comments=comments, shares=shares))


def rollup(day: date, package_id: int | None, channel_id: int | None, advisor_id: int, segment: str = "counted",
           **counts) -> None:
    """One analytics_daily row, as the rollup refresh writes it."""
    db.session.add(DailyRollup(day=day, segment=segment, package_id=package_id, channel_id=channel_id,
                               advisor_id=advisor_id, **counts))


@pytest.fixture
def world(app, users):
    """The advisor's package P1 on channel C1 (two posts) and advisor2's package P2."""
    p1 = approved_package(app, users["advisor"].id, users["compliance"].id)
    p2 = approved_package(app, users["advisor2"].id, users["compliance"].id)
    with app.app_context():
        a1 = db.session.scalars(sa.select(Assignment).where(Assignment.package_id == p1)).one()
        a2 = db.session.scalars(sa.select(Assignment).where(Assignment.package_id == p2)).one()
        first, second = _publish(a1, "1"), _publish(a1, "2")
        other = _publish(a2, "3")
        db.session.flush()
        _metric(first, 2, 100, likes=10, comments=1, shares=1)
        _metric(first, 5, 300, likes=30, comments=4, shares=2)  # the latest of the period counts
        _metric(second, 3, 50, likes=5, comments=0, shares=1)
        _metric(second, 30, 80, likes=6, comments=1, shares=1, hour=15)  # 23:00 in Beijing: the last hour of the period
        _metric(other, 4, 1000, likes=1)
        # After the period: not part of November's figures.
        db.session.add(PublicationMetric(publication_id=first.id, observed_at=datetime(2026, 12, 1, tzinfo=UTC),
                                         views=99999, likes=0, comments=0, shares=0))
        advisor, advisor2 = users["advisor"].id, users["advisor2"].id
        c1 = a1.channel_id
        rollup(date(2026, 11, 2), p1, c1, advisor, clicks=40, unique_visitors=30, accounts_opened=5,
               accounts_rejected=1, funded_amount=Decimal("1000.00"), withdrawn_amount=Decimal("100.00"))
        rollup(date(2026, 11, 30), p1, c1, advisor, clicks=20, unique_visitors=10, accounts_opened=2)
        rollup(date(2026, 11, 3), p1, c1, advisor, segment="bot", clicks=500, unique_visitors=400)
        rollup(date(2026, 11, 3), p1, c1, advisor, segment="employee", clicks=9, accounts_opened=3)
        rollup(date(2026, 10, 31), p1, c1, advisor, clicks=70, accounts_opened=7)  # before the period
        rollup(date(2026, 11, 4), p1, None, advisor, clicks=7, unique_visitors=7, accounts_opened=1,
               funded_amount=Decimal("50.50"))  # a group link of the package: no channel
        rollup(date(2026, 11, 6), p2, a2.channel_id, advisor2, clicks=11, unique_visitors=9)
        rollup(date(2026, 11, 6), None, None, advisor, clicks=1000)  # not a package's link
        db.session.commit()
        return {"p1": p1, "p2": p2, "c1": c1, "c2": a2.channel_id}


def rows_of(resp) -> dict[tuple[str, str], dict]:
    """{(package id, channel id): {testid: text}} from the page's table."""
    html = resp.get_data(as_text=True)
    rows = {}
    for match in re.finditer(r'<tr data-testid="content-row" data-package="(\d+)" data-channel="(\d*)">(.*?)</tr>',
                             html, re.S):
        cells = dict(re.findall(r'data-testid="([a-z-]+)">([^<]*)<', match.group(3)))
        rows[(match.group(1), match.group(2))] = cells
    return rows


def csv_of(resp) -> list[dict]:
    text = resp.get_data(as_text=True)
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


def test_figures_join_latest_metrics_with_counted_rollups(app, users, world):
    resp = signed_in(app, users["admin"]).get(f"{PAGE}?{RANGE}")
    assert resp.status_code == 200
    rows = rows_of(resp)
    p1c1 = rows[(str(world["p1"]), str(world["c1"]))]
    # Views: 300 (first post's latest in November) + 80 (second post's latest); bots, employees and
    # October are held out of clicks; opened net of the rejection; funded net of the withdrawal.
    assert p1c1 == {"views": "380", "clicks": "60", "opened": "6", "funded": "900.00", "click-rate": "15.79%",
                    "open-rate": "10.00%"}
    no_channel = rows[(str(world["p1"]), "")]
    assert no_channel == {"views": "0", "clicks": "7", "opened": "1", "funded": "50.50", "click-rate": "—",
                          "open-rate": "14.29%"}
    assert rows[(str(world["p2"]), str(world["c2"]))]["views"] == "1000"
    assert len(rows) == 3
    html = resp.get_data(as_text=True)
    totals = re.search(r'data-testid="content-totals">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r'<td class="text-end"[^>]*>([^<]*)</td>', totals)[:8] == [
        "1380", "37", "5", "3", "78", "56", "7", "950.50"]


def test_first_page_lists_most_viewed_first(app, users, world):
    rows = list(rows_of(signed_in(app, users["compliance"]).get(f"{PAGE}?{RANGE}")))
    assert rows[0] == (str(world["p2"]), str(world["c2"]))


def test_advisors_see_only_their_own_packages_whatever_they_ask(app, users, world):
    client = signed_in(app, users["advisor"])
    own = rows_of(client.get(f"{PAGE}?{RANGE}"))
    assert {key[0] for key in own} == {str(world["p1"])}
    asked = rows_of(client.get(f"{PAGE}?{RANGE}&advisor={users['advisor2'].id}"))
    assert asked == own
    assert {r["package_id"] for r in csv_of(client.get(f"{EXPORT}?{RANGE}&advisor={users['advisor2'].id}"))} == {
        str(world["p1"])}
    assert rows_of(signed_in(app, users["advisor2"]).get(f"{PAGE}?{RANGE}")).keys() == {
        (str(world["p2"]), str(world["c2"]))}


def test_compliance_and_admins_filter_by_advisor_platform_and_package(app, users, world):
    client = signed_in(app, users["compliance"])
    assert set(rows_of(client.get(f"{PAGE}?{RANGE}&advisor={users['advisor2'].id}"))) == {
        (str(world["p2"]), str(world["c2"]))}
    assert {k[0] for k in rows_of(client.get(f"{PAGE}?{RANGE}&package={world['p1']}"))} == {str(world["p1"])}
    assert rows_of(client.get(f"{PAGE}?{RANGE}&platform=bilibili")) == {}
    douyin = rows_of(client.get(f"{PAGE}?{RANGE}&platform=douyin"))
    assert (str(world["p1"]), "") not in douyin and len(douyin) == 2


def test_date_range_moves_both_metrics_and_rollups(app, users, world):
    rows = rows_of(signed_in(app, users["admin"]).get(f"{PAGE}?from=2026-11-01&to=2026-11-02&lang=en"))
    p1c1 = rows[(str(world["p1"]), str(world["c1"]))]
    assert p1c1["views"] == "100" and p1c1["clicks"] == "40"
    october = rows_of(signed_in(app, users["admin"]).get(f"{PAGE}?from=2026-10-01&to=2026-10-31&lang=en"))
    assert october[(str(world["p1"]), str(world["c1"]))]["clicks"] == "70"
    assert october[(str(world["p1"]), str(world["c1"]))]["views"] == "0"


def test_csv_export_has_exactly_the_pages_numbers(app, users, world):
    client = signed_in(app, users["admin"])
    page = rows_of(client.get(f"{PAGE}?{RANGE}"))
    export = client.get(f"{EXPORT}?{RANGE}")
    assert export.status_code == 200 and export.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in export.headers["Content-Disposition"]
    lines = csv_of(export)
    assert len(lines) == len(page)
    for line in lines:
        cells = page[(line["package_id"], line["channel_id"])]
        assert (line["views"], line["clicks"], line["accounts_opened"], line["funded_amount"]) == (
            cells["views"], cells["clicks"], cells["opened"], cells["funded"])
        assert line["click_rate"] == cells["click-rate"].replace("—", "")
        assert line["open_rate"] == cells["open-rate"].replace("—", "")


def test_csv_cells_typed_by_people_cannot_run_as_formulas(app, users, world):
    from advisor_studio.studio.models import Package

    with app.app_context():
        db.session.execute(sa.update(Package).where(Package.id == world["p1"]).values(title="=HYPERLINK(1)"))
        db.session.commit()
    lines = csv_of(signed_in(app, users["admin"]).get(f"{EXPORT}?{RANGE}"))
    assert {line["package"] for line in lines if line["package_id"] == str(world["p1"])} == {"'=HYPERLINK(1)"}


@pytest.mark.parametrize("query, phrase", [
    ("from=2026-11-30&to=2026-11-01", "the end is before the start"),
    ("from=2016-01-01&to=2026-01-01", "at most 366 days"),
    ("from=2026-02-30", "must be a date"),
    ("to=tomorrow", "must be a date"),
    ("platform=myspace", "unknown platform"),
    ("advisor=abc", "whole number"),
    ("package=99999999999", "whole number"),
])
def test_bad_filters_answer_400_with_a_clear_message(app, users, world, query, phrase):
    client = signed_in(app, users["admin"])
    page = client.get(f"{PAGE}?{query}&lang=en")
    assert page.status_code == 400 and phrase in page.get_data(as_text=True)
    assert 'data-testid="content-filters"' in page.get_data(as_text=True)  # the filters stay to fix them
    export = client.get(f"{EXPORT}?{query}&lang=en")
    assert export.status_code == 400 and not export.headers["Content-Type"].startswith("text/csv")


def test_default_period_is_the_last_30_days(app, users, world):
    resp = signed_in(app, users["admin"]).get(f"{PAGE}?lang=en")
    today = datetime.now(UTC).date()
    assert f"From {(today - timedelta(days=29)).isoformat()} to {today.isoformat()}" in resp.get_data(as_text=True)


def test_rows_are_paginated_and_queries_stay_constant(app, users, world):
    client = signed_in(app, users["admin"])
    with count_queries(app) as few:
        client.get(f"{PAGE}?{RANGE}")
    with app.app_context():
        for n in range(30):
            channel = make_channel(handle=f"extra-{n}")
            rollup(date(2026, 11, 10), world["p1"], channel.id, users["advisor"].id, clicks=n + 1)
        db.session.commit()
    with count_queries(app) as many:
        first = client.get(f"{PAGE}?{RANGE}")
    second = client.get(f"{PAGE}?{RANGE}&page=2")
    assert len(many) == len(few)
    assert len(rows_of(first)) == 25 and len(rows_of(second)) == 8
    assert not set(rows_of(first)) & set(rows_of(second))
    assert len(csv_of(client.get(f"{EXPORT}?{RANGE}"))) == 33


@pytest.mark.parametrize("role, status", [("anonymous", 302), ("mcn", 403), ("advisor", 200), ("compliance", 200),
                                          ("admin", 200)])
def test_page_and_export_access(app, users, world, role, status):
    client = app.test_client() if role == "anonymous" else signed_in(app, users[role])
    assert client.get(f"{PAGE}?{RANGE}").status_code == status
    assert client.get(f"{EXPORT}?{RANGE}").status_code == status


def test_pages_speak_chinese_by_default(app, users, world):
    # Passes once /work/pending-po/ana-content.po is merged into the catalogue.
    html = signed_in(app, users["admin"]).get(f"{PAGE}?from=2026-11-01&to=2026-11-30").get_data(as_text=True)
    assert "内容表现" in html and "播放" in html and "开户率" in html
    refused = signed_in(app, users["admin"]).get(f"{PAGE}?from=2026-11-30&to=2026-11-01").get_data(as_text=True)
    assert "结束日期早于开始日期" in refused
