"""`flask retention report`: records past RETENTION_YEARS by table, with counts and the oldest date; it
never deletes anything."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from advisor_studio import audit
from advisor_studio.accounts.models import User
from advisor_studio.backup import retention
from advisor_studio.extensions import db
from tests.backup.conftest import cli, table_counts
from tests.referrals.convert_helpers import make_click, make_link

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=int(365.25 * 21))  # 21 years ago: past a 20-year retention
OLDER = NOW - timedelta(days=int(365.25 * 25))


@pytest.fixture
def dated(app, users, monkeypatch):
    """Audit entries and clicks from 25 and 21 years ago beside today's, written through the real code."""
    code = make_link(app, users["advisor"].id)
    for moment in (OLDER, OLD):
        make_click(app, code, at=moment)
    make_click(app, code)
    with app.app_context():
        admin = db.session.get(User, users["admin"].id)
        for moment in (OLDER, OLD):
            monkeypatch.setattr(audit, "utcnow", lambda moment=moment: moment)
            audit.record("test.old_record", "user", admin.id, actor=admin)
        monkeypatch.undo()
        db.session.commit()
    return code


def by_table(output: str) -> dict[str, dict]:
    return {row["table"]: row for row in json.loads(output)["tables"]}


def test_report_lists_records_past_retention_with_counts_and_oldest_date(app, dated):
    result = cli(app, "retention", "report", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["retention_years"] == 20
    rows = by_table(result.output)
    assert (rows["clicks"]["past_retention"], rows["clicks"]["rows"], rows["clicks"]["date_column"]) == (2, 3, "at")
    assert rows["clicks"]["oldest"][:10] == OLDER.date().isoformat()
    audit_rows = rows["audit_entries"]
    assert audit_rows["past_retention"] == 2 and audit_rows["rows"] > 2
    assert audit_rows["oldest"][:10] == OLDER.date().isoformat()
    assert rows["referral_links"]["past_retention"] == 0 and rows["referral_links"]["rows"] == 1
    assert rows["users"]["past_retention"] == 0
    assert rows["audit_head"]["date_column"] is None  # no record date: listed, never counted as past


def test_report_as_text_names_each_table_past_retention_and_deletes_nothing(app, dated):
    before = table_counts(app)
    result = cli(app, "retention", "report")
    assert result.exit_code == 0, result.output
    assert "clicks: 2 of 3 rows past retention (by at; oldest " + OLDER.strftime("%Y-%m-%d") in result.output
    assert "audit_entries: 2 of" in result.output
    assert "referral_links" not in result.output.split("undated")[0]
    assert "nothing was deleted" in result.output
    assert table_counts(app) == before
    with app.app_context():
        assert audit.verify(use_checkpoints=False).ok  # the dated entries are part of an intact chain


def test_a_longer_retention_moves_the_cutoff(app, dated):
    rows = by_table(cli(app, "retention", "report", "--json", "--years", "23").output)
    assert rows["clicks"]["past_retention"] == 1 and rows["audit_entries"]["past_retention"] == 1
    assert by_table(cli(app, "retention", "report", "--json", "--years", "30").output)["clicks"]["past_retention"] == 0


def test_retention_years_comes_from_the_configuration(app_factory, users):
    app = app_factory(RETENTION_YEARS=1)
    code = make_link(app, users["advisor"].id)
    make_click(app, code, at=NOW - timedelta(days=400))
    rows = by_table(cli(app, "retention", "report", "--json").output)
    assert rows["clicks"]["past_retention"] == 1


def test_nothing_past_retention_says_so(app, users):
    result = cli(app, "retention", "report")
    assert result.exit_code == 0 and "no record is past retention" in result.output


@pytest.mark.parametrize("years", ["0", "-3", "abc", "100000"])
def test_report_refuses_a_nonsense_retention(app, years):
    result = cli(app, "retention", "report", "--years", years)
    assert result.exit_code == 2 and "--years" in result.output


def test_retention_years_setting_defaults_to_20_and_fails_fast_on_bad_values(monkeypatch):
    from config import Config

    monkeypatch.delenv("RETENTION_YEARS", raising=False)
    assert Config().RETENTION_YEARS == 20
    for bad in ("0", "twenty"):
        monkeypatch.setenv("RETENTION_YEARS", bad)
        with pytest.raises(RuntimeError, match="RETENTION_YEARS"):
            Config()


def test_cutoff_of_29_february_falls_back_to_the_28th():
    assert retention.cutoff(1, datetime(2028, 2, 29, 12, tzinfo=UTC)) == datetime(2027, 2, 28, 12, tzinfo=UTC)
    assert retention.cutoff(20, datetime(2026, 11, 30, tzinfo=UTC)) == datetime(2006, 11, 30, tzinfo=UTC)


def test_every_record_table_of_issue_12_is_dated(app):  # the app registers every model
    names = {t.name: retention.record_date_column(t) for t in db.metadata.sorted_tables}
    for table in ("audit_entries", "approvals", "packages", "scripts", "clicks", "conversions", "reviews"):
        assert names[table] is not None, table
    assert names["approvals"].name == "approved_at" and names["conversions"].name == "occurred_at"
