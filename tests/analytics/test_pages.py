"""Analytics pages: who sees what, the CSV equals the page equals the CLI, validation, query counts,
freshness, leaderboard and AARRR. Behaviour is asserted in English (Accept: ?lang=en)."""

from __future__ import annotations

import csv
import html as htmlmod
import io
import json
import re
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from advisor_studio.analytics import rollups
from advisor_studio.analytics.models import FraudFlag, FraudFlagItem
from advisor_studio.analytics.services import mark_days_dirty
from advisor_studio.dbtypes import utcnow
from advisor_studio.extensions import db
from advisor_studio.referrals import conversions
from advisor_studio.referrals.models import CommunityGroup, ReferralLink
from tests.analytics.conftest import (
    at,
    click,
    journey,
    make_channel_link,
    make_group_link,
    new_link,
    traffic_batch,
)
from tests.conftest import signed_in
from tests.studio.test_pages import count_queries

FROM = (utcnow() - timedelta(days=40)).date().isoformat()
TO = utcnow().date().isoformat()
ROW_RE = re.compile(r'<tr[^>]*data-testid="funnel-(row|total|previous|excluded-\w+)"[^>]*>(.*?)</tr>', re.S)
CELL_RE = re.compile(r'<td[^>]*data-(?:metric|rate)="[^"]+"[^>]*>(.*?)</td>', re.S)
B_SECRET = "乙投顾专属群"  # advisor B's group name: must never appear on A's pages
B_CAMPAIGN = "乙活动"


def _text(resp) -> str:
    return resp.get_data(as_text=True)


def page_rows(resp) -> list[tuple[str, list[str]]]:
    """(kind, metric and rate cells) of every row of the funnel table."""
    return [(kind, [htmlmod.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in CELL_RE.findall(body)])
            for kind, body in ROW_RE.findall(_text(resp))]


def csv_table(resp) -> list[list[str]]:
    text = resp.get_data(as_text=True).lstrip("\ufeff")
    return list(csv.reader(io.StringIO(text)))


@pytest.fixture
def data(app, users):
    """Advisor A: a channel link and a group link; advisor B: a group link with its own campaign."""
    with app.app_context():
        a_links = [make_channel_link(users["advisor"].id, campaign="双十一"), make_group_link(users["advisor"].id)]
        b_link = make_group_link(users["advisor2"].id, name=B_SECRET, campaign=B_CAMPAIGN)
        traffic_batch(a_links, 0, prefix="a")
        traffic_batch([b_link], 0, prefix="b")
        traffic_batch([b_link], 3, prefix="b")  # B has more than A: a leak would show
        traffic_batch([b_link], 6, prefix="b")
        db.session.commit()
        rollups.rebuild()
        return {"a_group": a_links[1].group_id, "b_group": b_link.group_id, "b_code": b_link.code,
                "a_codes": [link.code for link in a_links]}


def _get(client, path, **params):
    params.setdefault("lang", "en")
    return client.get(f"{path}?{urlencode(params)}")


# --- who sees what -------------------------------------------------------------------------------


def test_advisor_sees_only_their_own_figures_through_every_page_filter_csv_and_grouping(app, users, data):
    from advisor_studio.analytics import queries

    with app.app_context():
        own = queries.funnel(users["advisor"].id, utcnow().date() - timedelta(days=40), utcnow().date()).total
        everyone = queries.funnel(None, utcnow().date() - timedelta(days=40), utcnow().date()).total
    assert everyone.clicks > own.clicks > 0
    client = signed_in(app, users["advisor"])
    for by in ("", "advisor", "group", "campaign", "package", "channel", "partner", "platform", "day", "week", "month"):
        resp = _get(client, "/analytics/", date_from=FROM, date_to=TO, by=by)
        assert resp.status_code == 200, by
        body = _text(resp)
        assert B_SECRET not in body and B_CAMPAIGN not in body and users["advisor2"].name not in body, by
        rows = page_rows(resp)
        summary = next(cells for kind, cells in rows if kind == ("total" if by else "row"))
        assert summary[0] == str(own.clicks), by
        export = _get(client, "/analytics/export.csv", date_from=FROM, date_to=TO, by=by)
        assert export.status_code == 200
        assert B_SECRET not in export.get_data(as_text=True) and B_CAMPAIGN not in export.get_data(as_text=True)
    # Naming B's things in a filter is refused like an unknown value, on the page and in the CSV.
    for name, value in (("advisor", users["advisor2"].id), ("group", data["b_group"]), ("campaign", B_CAMPAIGN)):
        for path in ("/analytics/", "/analytics/export.csv", "/analytics/aarrr"):
            resp = _get(client, path, date_from=FROM, date_to=TO, **{name: value})
            assert resp.status_code == 400, (path, name)
            assert B_SECRET not in _text(resp)
    assert "Unknown" in _text(_get(client, "/analytics/", group=data["b_group"]))
    # Leaderboard and AARRR: the advisor's own row and figures only.
    board = _text(_get(client, "/analytics/leaderboard", date_from=FROM, date_to=TO))
    assert re.findall(r'data-testid="leader-row" data-advisor="(\d+)"', board) == [str(users["advisor"].id)]
    panel = _text(_get(client, "/analytics/aarrr", date_from=FROM, date_to=TO))
    assert f'data-testid="acquisition">{own.unique_visitors}<' in panel


@pytest.mark.parametrize("role", ["compliance", "admin"])
def test_compliance_and_admin_see_every_advisor(app, users, data, role):
    client = signed_in(app, users[role])
    resp = _get(client, "/analytics/", date_from=FROM, date_to=TO, by="advisor")
    keys = re.findall(r'data-testid="funnel-row" data-key="([^"]*)"', _text(resp))
    assert set(keys) == {users["advisor"].email, users["advisor2"].email}
    filtered = _get(client, "/analytics/", date_from=FROM, date_to=TO, by="group", group=data["b_group"])
    assert filtered.status_code == 200 and B_SECRET in _text(filtered)
    board = _text(_get(client, "/analytics/leaderboard", date_from=FROM, date_to=TO))
    ranked = re.findall(r'data-testid="leader-row" data-advisor="(\d+)"', board)
    assert ranked == [str(users["advisor2"].id), str(users["advisor"].id)]  # B opened more accounts


def test_mcn_users_and_anonymous_visitors_get_nothing(app, users, data):
    client = signed_in(app, users["mcn"])
    for path in ("/analytics/", "/analytics/export.csv", "/analytics/leaderboard", "/analytics/aarrr"):
        assert client.get(path).status_code == 403
        anonymous = app.test_client().get(path)
        assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


# --- one query layer -----------------------------------------------------------------------------


@pytest.mark.parametrize("params", [
    {"by": "group"},
    {"by": "day", "excluded": "y"},
    {"by": "advisor", "campaign": "双十一"},
    {},
])
def test_csv_holds_exactly_the_numbers_of_the_page(app, users, data, params):
    client = signed_in(app, users["admin"])
    page = _get(client, "/analytics/", date_from=FROM, date_to=TO, **params)
    export = _get(client, "/analytics/export.csv", date_from=FROM, date_to=TO, **params)
    assert page.status_code == 200 and export.status_code == 200
    table = csv_table(export)
    shown = [cells for _kind, cells in page_rows(page)]
    assert shown and [row[2:] for row in table[1:]] == shown
    if params.get("excluded"):
        kinds = [kind for kind, _cells in page_rows(page)]
        assert {"excluded-bot", "excluded-employee", "excluded-fraud"} <= set(kinds)
        bot_row = next(cells for kind, cells in page_rows(page) if kind == "excluded-bot")
        assert int(bot_row[0]) > 0  # the crawler's clicks, held out and shown apart
    # The link on the page carries the same query string.
    assert "/analytics/export.csv?" in _text(page)


@pytest.mark.parametrize("by", ["advisor", "day", None])
def test_page_csv_and_cli_agree(app, users, data, by):
    client = signed_in(app, users["compliance"])
    params = {"by": by} if by else {}
    export = csv_table(_get(client, "/analytics/export.csv", date_from=FROM, date_to=TO, **params))
    args = ["analytics", "funnel", "--from", FROM, "--to", TO] + (["--by", by] if by else [])
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output
    cli_rows = json.loads(result.output)["rows"]
    body = export[1:1 + len(cli_rows)]
    assert [row[1] for row in body] == [str(r["key"]) for r in cli_rows]
    for row, expected in zip(body, cli_rows, strict=True):
        assert [int(row[2]), int(row[3]), int(row[4]), int(row[5]), int(row[6]), Decimal(row[7].replace(",", "")),
                int(row[8])] == [expected["clicks"], expected["unique_visitors"], expected["signups"],
                                 expected["accounts_opened"], expected["funded_count"],
                                 Decimal(expected["funded_amount"]), expected["first_trades"]]


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("params, message", [
    ({"date_from": "2026-03-01", "date_to": "2026-02-01"}, "The end date is before the start date."),
    ({"date_from": "2016-01-01", "date_to": "2026-01-01"}, "at most 1096 days"),
    ({"date_from": "2026-02-30"}, "Enter a date as YYYY-MM-DD."),
    ({"date_to": "yesterday"}, "Enter a date as YYYY-MM-DD."),
    ({"date_from": "0001-01-01", "date_to": "0001-01-02"}, "Dates must lie between"),
    ({"by": "colour"}, "Unknown dimension"),
    ({"package": "999999"}, "Unknown Package"),
    ({"advisor": "abc"}, "Unknown Advisor"),
    ({"channel": "9" * 40}, "Field cannot be longer"),
    ({"platform": "myspace"}, "Unknown Platform"),
    ({"campaign": "没有这个活动"}, "Unknown Campaign"),
])
def test_bad_filters_get_a_clear_message_never_a_500(app, users, data, params, message):
    client = signed_in(app, users["admin"])
    for path in ("/analytics/", "/analytics/aarrr", "/analytics/export.csv"):
        resp = _get(client, path, **params)
        assert resp.status_code == 400, (path, params)
        assert message in htmlmod.unescape(_text(resp)), (path, _text(resp)[:3000])
    leaderboard = _get(client, "/analytics/leaderboard", **params)
    assert leaderboard.status_code in (200, 400)  # it reads the period only


def test_a_three_year_range_is_accepted(app, users, data):
    client = signed_in(app, users["admin"])
    end = utcnow().date()
    resp = _get(client, "/analytics/", date_from=(end - timedelta(days=1095)).isoformat(), date_to=end.isoformat(),
                by="month")
    assert resp.status_code == 200
    assert len(page_rows(resp)) >= 3


# --- cost, freshness, charts, empty states -------------------------------------------------------


def _more_groups(app, owner_id: int, n: int) -> None:
    with app.app_context():
        links = [make_group_link(owner_id, name=f"群{owner_id}-{i}-{utcnow().timestamp()}") for i in range(n)]
        for index, link in enumerate(links):
            first = click(link, at(2), visitor=f"g{index}")
            journey(f"G{link.id}", first, [("signup", 1, None), ("account_opened", 2, None)])
        db.session.commit()
        rollups.refresh()


@pytest.mark.parametrize("by", ["group", "channel", "advisor", "day"])
def test_the_funnel_page_costs_the_same_queries_for_3_or_15_groups(app, users, data, by):
    client = signed_in(app, users["admin"])
    url = f"/analytics/?date_from={FROM}&date_to={TO}&by={by}&lang=en"
    client.get(url)  # warm-up
    with count_queries(app) as small:
        assert client.get(url).status_code == 200
    _more_groups(app, users["advisor"].id, 12)
    with count_queries(app) as large:
        resp = client.get(url)
    if by == "group":
        assert len(page_rows(resp)) >= 15
    assert len(large) == len(small), (small, large)
    assert len(small) <= 16, small


def test_freshness_is_shown_in_the_users_time_zone(app, users, data):
    client = signed_in(app, users["admin"])
    with app.app_context():
        as_of = rollups.fresh_as_of()
    from zoneinfo import ZoneInfo

    local = as_of.astimezone(ZoneInfo("Asia/Shanghai"))
    body = _text(_get(client, "/analytics/"))
    shown = local.strftime("%H:%M") if local.date() == utcnow().astimezone(ZoneInfo("Asia/Shanghai")).date() \
        else local.strftime("%Y-%m-%d %H:%M")
    assert f"Figures up to {shown}" in body
    zh = _text(client.get("/analytics/?lang=zh_CN"))
    assert shown in zh


def test_before_any_refresh_the_page_says_so_and_shows_an_empty_state(app, users):
    client = signed_in(app, users["advisor"])
    body = _text(_get(client, "/analytics/my"))
    assert "Figures not computed yet" in body
    assert 'data-testid="empty-state"' in body
    assert "analytics-chart-data" not in body


def test_charts_come_from_the_apps_own_echarts_and_a_json_block(app, users, data):
    client = signed_in(app, users["admin"])
    resp = _get(client, "/analytics/", date_from=FROM, date_to=TO, by="group")
    body = _text(resp)
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in resp.headers["Content-Security-Policy"]
    match = re.search(r'<script type="application/json" id="analytics-chart-data">(.*?)</script>', body, re.S)
    chart = json.loads(htmlmod.unescape(match.group(1)))
    total = next(cells for kind, cells in page_rows(resp) if kind == "total")
    assert [step["value"] for step in chart["steps"]][0] == int(total[0])  # the total clicks
    assert len(chart["daily"]["days"]) == len(chart["daily"]["series"][0]["data"]) > 0
    assert re.search(r"<script>(?!\s*</script>)", body) is None  # no inline script
    assert "/static/vendor/echarts/echarts.common.min.js" in body
    served = client.get("/static/vendor/echarts/echarts.common.min.js")
    assert served.status_code == 200 and b"echarts" in served.data[:2000]
    assert client.get("/static/vendor/echarts/LICENSE").status_code == 200
    assert client.get("/static/js/analytics.js").status_code == 200


# --- leaderboard and AARRR -------------------------------------------------------------------------


def test_leaderboard_never_counts_employees_or_confirmed_fraud(app, users):
    with app.app_context():
        a = new_link(users["advisor"].id)
        b = new_link(users["advisor2"].id)
        for n in range(2):  # A: two real customers
            first = click(a, at(3, 9 + n), visitor=f"a{n}")
            journey(f"A{n}", first, [("signup", 1, None), ("account_opened", 2, None), ("funded", 3, "500.00")])
        for n in range(3):  # B: three employees ...
            first = click(b, at(3, 9 + n), visitor=f"b{n}")
            journey(f"B{n}", first, [("signup", 1, None), ("account_opened", 2, None), ("funded", 3, "9000.00")],
                    employee=True)
        first = click(b, at(3, 15), visitor="bf")  # ... and one fraud, confirmed
        journey("BF", first, [("signup", 1, None), ("account_opened", 2, None)])
        opened = db.session.scalar(sa.select(sa.func.max(conversions.Conversion.id)))
        flag = FraudFlag(kind="self_conversion", subject=f"conversion:{opened}", status="confirmed",
                         advisor_id=users["advisor2"].id, day=at(3).date(), detail={})
        db.session.add(flag)
        db.session.flush()
        db.session.add(FraudFlagItem(flag_id=flag.id, conversion_pk=opened))
        mark_days_dirty([at(3).date()])
        db.session.commit()
        rollups.refresh()
        from advisor_studio.analytics import queries

        rows = queries.leaderboard(None, at(10).date(), utcnow().date())
    assert [(r.advisor_id, r.accounts_opened, r.funded_amount) for r in rows] == [
        (users["advisor"].id, 2, Decimal("1000.00")), (users["advisor2"].id, 0, Decimal("0.00"))]
    assert rows[0].conversion_rate == 1.0
    client = signed_in(app, users["admin"])
    board = _text(_get(client, "/analytics/leaderboard", date_from=at(10).date().isoformat(), date_to=TO))
    first_row = board.split('data-testid="leader-row"')[1]
    assert f'data-advisor="{users["advisor"].id}"' in first_row and "1,000.00" in first_row


def test_leaderboard_counts_packages_approved_in_the_period(app, users):
    from advisor_studio.analytics import queries
    from tests.studio.test_pages import approved_package

    approved_package(app, users["advisor"].id, users["compliance"].id)
    with app.app_context():
        today = utcnow().date()
        rows = queries.leaderboard(None, today - timedelta(days=1), today)
        earlier = queries.leaderboard(None, today - timedelta(days=30), today - timedelta(days=2))
    assert [(r.advisor_id, r.content_count) for r in rows] == [(users["advisor"].id, 1)]
    assert earlier == []


def test_aarrr_counts_retention_revenue_and_customer_referrals(app, users):
    with app.app_context():
        link = new_link(users["advisor"].id)
        steady = click(link, at(50), visitor="s")  # opened 49 days ago, traded 35 days later: retained
        journey("steady", steady, [("signup", 1, None), ("account_opened", 24, None), ("funded", 30, "1000.00"),
                                   ("first_trade", 24 * 36, None)])
        quiet = click(link, at(50, 11), visitor="q")  # opened 49 days ago, nothing after 30 days
        journey("quiet", quiet, [("signup", 1, None), ("account_opened", 24, None), ("withdrawal", 48, "10.00"),
                                 ("funded", 30, "200.00")])
        fresh = click(link, at(5), visitor="f")  # opened 4 days ago: too early to tell
        journey("fresh", fresh, [("signup", 1, None), ("account_opened", 24, None)])
        db.session.commit()
        customer = conversions.customer_by_ref("steady")
        own = conversions.customer_link(customer, actor="test")
        db.session.commit()
        friend = click(db.session.get(ReferralLink, own.id), at(3), visitor="friend")
        journey("friend", friend, [("signup", 1, None), ("account_opened", 2, None)])
        db.session.commit()
        rollups.refresh()
    client = signed_in(app, users["advisor"])
    body = _text(_get(client, "/analytics/aarrr", date_from=at(60).date().isoformat(), date_to=TO))
    assert 'data-testid="activation">4<' in body
    assert 'data-testid="retention">1 / 2<' in body
    assert 'data-testid="revenue">1,190.00<' in body
    assert 'data-testid="referral">1<' in body
    assert 'data-testid="acquisition">4<' in body


def test_group_keys_on_pages_are_the_groups_names(app, users, data):
    client = signed_in(app, users["advisor"])
    body = _text(_get(client, "/analytics/", date_from=FROM, date_to=TO, by="group"))
    with app.app_context():
        name = db.session.get(CommunityGroup, data["a_group"]).name
    assert name in body


def test_pages_speak_chinese_by_default(app, users, data):
    """zh_CN is the default locale (needs the ana-core messages merged into the catalogue)."""
    client = signed_in(app, users["advisor"])
    body = _text(client.get("/analytics/my"))
    assert "我的数据" in body and "数据截至" in body and "明星投顾" in body and "转化漏斗" in body
    refused = _text(client.get("/analytics/?date_from=2026-03-01&date_to=2026-02-01"))
    assert "结束日期早于开始日期。" in refused
    board = _text(client.get("/analytics/leaderboard"))
    assert "您只能看到自己的数据。" in board
    export = client.get(f"/analytics/export.csv?date_from={FROM}&date_to={TO}&by=group")
    assert "独立访客" in export.get_data(as_text=True).splitlines()[0]
