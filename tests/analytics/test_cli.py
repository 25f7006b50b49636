"""`flask analytics funnel` and `flask analytics rebuild` per contract.md."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from advisor_studio.audit import AuditEntry
from advisor_studio.dbtypes import utcnow
from advisor_studio.extensions import db
from tests.analytics.conftest import at, make_channel_link, make_group_link, new_link, traffic_batch
from tests.referrals.test_redirect import BROWSER, GOOGLEBOT

ROW_KEYS = ["key", "clicks", "unique_visitors", "signups", "accounts_opened", "funded_count", "funded_amount",
            "first_trades"]
FAR_BACK = (utcnow() - timedelta(days=60)).date().isoformat()
TODAY = utcnow().date().isoformat()


def cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def funnel(app, *args) -> dict:
    result = cli(app, "analytics", "funnel", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _live_clicks(app, code: str) -> None:
    """Clicks through the real redirect: a visitor three times (two duplicates), a bot, a HEAD."""
    alice = app.test_client()
    for _ in range(3):
        alice.get(f"/r/{code}", headers={"User-Agent": BROWSER}, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    app.test_client().get(f"/r/{code}", headers={"User-Agent": BROWSER}, environ_base={"REMOTE_ADDR": "192.0.2.1"})
    app.test_client().get(f"/r/{code}", headers={"User-Agent": GOOGLEBOT})
    app.test_client().head(f"/r/{code}", headers={"User-Agent": BROWSER})


@pytest.fixture
def traffic(app, users):
    """Two advisors' links with bots, HEAD, duplicates, rejections and withdrawals (no employees)."""
    with app.app_context():
        links = [make_channel_link(users["advisor"].id, campaign="双十一"), make_group_link(users["advisor"].id),
                 new_link(users["advisor2"].id, campaign="春季")]
        traffic_batch(links, 0)
        traffic_batch(links, 2)
        db.session.commit()
        codes = [link.code for link in links]
    for code in codes:
        _live_clicks(app, code)
    return codes


def _links_stats_sum(app, codes) -> dict:
    total = {"clicks": 0, "unique_visitors": 0, "signups": 0, "accounts_opened": 0, "funded_amount": Decimal("0"),
             "first_trades": 0}
    for code in codes:
        result = cli(app, "links", "stats", code)
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        for key in total:
            total[key] += Decimal(data[key]) if key == "funded_amount" else data[key]
    return total


def _funnel_sum(rows) -> dict:
    total = {"clicks": 0, "unique_visitors": 0, "signups": 0, "accounts_opened": 0, "funded_amount": Decimal("0"),
             "first_trades": 0}
    for row in rows:
        for key in total:
            total[key] += Decimal(row[key]) if key == "funded_amount" else row[key]
    return total


@pytest.mark.parametrize("by", [None, "advisor", "day", "group", "campaign", "platform", "channel", "package"])
def test_after_a_rebuild_the_funnel_agrees_with_links_stats(app, users, traffic, by):
    result = cli(app, "analytics", "rebuild")
    assert result.exit_code == 0, result.output
    data = funnel(app, "--from", FAR_BACK, "--to", TODAY, *(["--by", by] if by else []))
    expected = _links_stats_sum(app, traffic)
    assert expected["clicks"] > 0 and expected["accounts_opened"] > 0 and expected["funded_amount"] > 0
    assert _funnel_sum(data["rows"]) == expected
    per_advisor = funnel(app, "--from", FAR_BACK, "--to", TODAY, "--advisor", users["advisor"].email)
    assert _funnel_sum(per_advisor["rows"]) == _links_stats_sum(app, traffic[:2])


def test_funnel_prints_the_contract_shape(app, users, traffic):
    cli(app, "analytics", "rebuild")
    data = funnel(app, "--from", FAR_BACK, "--to", TODAY, "--by", "advisor")
    assert list(data) == ["from", "to", "as_of", "rows"]
    assert (data["from"], data["to"]) == (FAR_BACK, TODAY)
    assert data["as_of"].endswith("Z")
    assert {row["key"] for row in data["rows"]} == {users["advisor"].email, users["advisor2"].email}
    for row in data["rows"]:
        assert list(row) == ROW_KEYS
        assert isinstance(row["funded_amount"], str) and Decimal(row["funded_amount"]).as_tuple().exponent == -2
    days = funnel(app, "--from", FAR_BACK, "--to", TODAY, "--by", "day")["rows"]
    assert [row["key"] for row in days] == sorted(row["key"] for row in days)
    # Today: the live clicks only, 4 human clicks (2 visitors) on each of the 3 links; bots and HEAD apart.
    assert (days[-1]["key"], days[-1]["clicks"], days[-1]["unique_visitors"]) == (TODAY, 12, 6)
    whole = funnel(app)  # the last 30 days by default
    assert [row["key"] for row in whole["rows"]] == ["all"]


def test_funnel_without_any_data_prints_one_zero_row_and_no_as_of(app):
    data = funnel(app)
    assert data["as_of"] is None
    assert data["rows"] == [{"key": "all", "clicks": 0, "unique_visitors": 0, "signups": 0, "accounts_opened": 0,
                             "funded_count": 0, "funded_amount": "0.00", "first_trades": 0}]


def test_employees_are_held_out_of_the_funnel_but_still_in_links_stats(app, users):
    with app.app_context():
        link = new_link(users["advisor"].id)
        traffic_batch([link], 1)  # its first customer is an employee
        db.session.commit()
        code = link.code
    cli(app, "analytics", "rebuild")
    stats = _links_stats_sum(app, [code])
    data = funnel(app, "--from", FAR_BACK, "--to", TODAY)
    assert data["rows"][0]["signups"] == stats["signups"] - 1
    assert data["rows"][0]["clicks"] == stats["clicks"]


@pytest.mark.parametrize("args, message", [
    (["--by", "colour"], "--by must be one of"),
    (["--from", "2026-13-01"], "YYYY-MM-DD"),
    (["--from", "20260101"], "YYYY-MM-DD"),
    (["--to", "0001-01-01"], "between"),
    (["--from", "2026-03-01", "--to", "2026-02-01"], "早于开始日期"),
    (["--from", "2016-01-01", "--to", "2026-01-01"], "1096"),
    (["--advisor", "nobody@example.com"], "no advisor"),
])
def test_funnel_refuses_bad_input_with_exit_2_and_a_message(app, users, args, message):
    result = cli(app, "analytics", "funnel", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stdout == ""  # nothing a script could mistake for figures


def test_funnel_refuses_a_compliance_officer_as_advisor(app, users):
    result = cli(app, "analytics", "funnel", "--advisor", users["compliance"].email)
    assert result.exit_code == 2


def test_rebuild_is_idempotent_audited_and_refuses_a_reversed_range(app, users, traffic):
    first = cli(app, "analytics", "rebuild")
    assert first.exit_code == 0 and "rebuilt" in first.output
    before = funnel(app, "--from", FAR_BACK, "--to", TODAY, "--by", "day")
    again = cli(app, "analytics", "rebuild", "--from", at(4).date().isoformat(), "--to", TODAY)
    assert again.exit_code == 0, again.output
    after = funnel(app, "--from", FAR_BACK, "--to", TODAY, "--by", "day")
    assert before["rows"] == after["rows"]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)
                                 .where(AuditEntry.action == "analytics.rebuilt")) == 2
    bad = cli(app, "analytics", "rebuild", "--from", "2026-03-01", "--to", "2026-02-01")
    assert bad.exit_code == 2


def test_refresh_command_folds_in_new_clicks(app, users, traffic):
    assert funnel(app)["rows"][0]["clicks"] == 0  # nothing folded in yet
    result = cli(app, "analytics", "refresh")
    assert result.exit_code == 0, result.output
    assert funnel(app)["rows"][0]["clicks"] > 0
