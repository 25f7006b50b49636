"""Lexicon pages: versions and history, rules with filters, add / edit / remove with a reason,
CSV import (bad rows named, nothing imported), export that re-imports unchanged, and the dry-run
scanner box."""

from __future__ import annotations

import csv
import io
import re

import pytest
import sqlalchemy as sa

from advisor_studio.compliance import services as compliance
from advisor_studio.compliance.models import LexiconRule, LexiconVersion, Scan
from advisor_studio.extensions import db
from tests.conftest import csrf_from, signed_in
from tests.factories import ensure_lexicon

RULE_ROW_RE = re.compile(r'data-testid="rule-row" data-rule-id="(\d+)"')


@pytest.fixture
def officer(app, users):
    return signed_in(app, users["compliance"])


def _version(app) -> int:
    with app.app_context():
        return compliance.current_lexicon_version()


def _live_phrases(app) -> set[str]:
    with app.app_context():
        return set(db.session.scalars(sa.select(LexiconRule.phrase).where(LexiconRule.removed_in.is_(None))))


def _get(client, url: str) -> str:
    resp = client.get(url)
    assert resp.status_code == 200, (url, resp.status_code)
    return resp.get_data(as_text=True)


def _upload(client, data: bytes, note: str = ""):
    token = csrf_from(_get(client, "/compliance/lexicon/import"))
    return client.post("/compliance/lexicon/import", content_type="multipart/form-data",
                       data={"csrf_token": token, "note": note, "file": (io.BytesIO(data), "lexicon.csv")})


def test_empty_lexicon_page_says_what_to_do(app, officer):
    html = _get(officer, "/compliance/lexicon")
    assert 'data-version="0"' in html and 'data-testid="empty-state"' in html


def test_add_edit_and_remove_a_rule_each_make_a_version(app, users, officer):
    page = _get(officer, "/compliance/lexicon/rules/new")
    resp = officer.post("/compliance/lexicon/rules/new", data={
        "csrf_token": csrf_from(page), "phrase": "  闭眼买  ", "kind": "forbidden", "severity": "block",
        "category": "return_promise", "note": "承诺收益", "platforms": ["douyin", "kuaishou"]})
    assert resp.status_code == 302
    assert _version(app) == 1
    with app.app_context():
        rule = db.session.scalars(sa.select(LexiconRule)).one()
        assert (rule.phrase, rule.platforms, rule.added_in) == ("闭眼买", ["douyin", "kuaishou"], 1)
        version = db.session.scalars(sa.select(LexiconVersion)).one()
        assert version.created_by_id == users["compliance"].id and version.entry_count == 1
        rule_id = rule.id

    html = _get(officer, "/compliance/lexicon")
    assert RULE_ROW_RE.findall(html) == [str(rule_id)] and 'data-version="1"' in html

    # the same phrase again is a conflict, nothing is added
    resp = officer.post("/compliance/lexicon/rules/new", data={
        "csrf_token": csrf_from(page), "phrase": "闭 眼 买", "kind": "forbidden", "severity": "warn"})
    assert resp.status_code == 409 and _version(app) == 1

    edit = _get(officer, f"/compliance/lexicon/rules/{rule_id}")
    resp = officer.post(f"/compliance/lexicon/rules/{rule_id}", data={
        "csrf_token": csrf_from(edit), "phrase": "闭眼买", "kind": "forbidden", "severity": "warn",
        "category": "return_promise", "note": "承诺收益"})
    assert resp.status_code == 302 and _version(app) == 2
    with app.app_context():
        old = db.session.get(LexiconRule, rule_id)
        new = db.session.scalars(sa.select(LexiconRule).where(LexiconRule.removed_in.is_(None))).one()
        assert old.removed_in == 2 and (new.severity, new.platforms, new.added_in) == ("warn", [], 2)
        new_id = new.id
    # the replaced row is history now: its edit page sends the officer back to the list
    assert officer.get(f"/compliance/lexicon/rules/{rule_id}").status_code == 302

    # saving without changes makes no version
    edit = _get(officer, f"/compliance/lexicon/rules/{new_id}")
    officer.post(f"/compliance/lexicon/rules/{new_id}", data={
        "csrf_token": csrf_from(edit), "phrase": "闭眼买", "kind": "forbidden", "severity": "warn",
        "category": "return_promise", "note": "承诺收益"})
    assert _version(app) == 2

    # removal needs a reason and a confirmation
    url = f"/compliance/lexicon/rules/{new_id}/remove"
    officer.post(url, data={"csrf_token": csrf_from(edit), "reason": "误报太多"})
    officer.post(url, data={"csrf_token": csrf_from(edit), "confirm": "y"})
    assert _version(app) == 2 and _live_phrases(app) == {"闭眼买"}
    assert officer.post(url, data={"csrf_token": csrf_from(edit), "reason": "误报太多", "confirm": "y"}
                        ).status_code == 302
    assert _version(app) == 3 and _live_phrases(app) == set()

    # history lists every version; an old version can still be browsed read-only
    history = _get(officer, "/compliance/lexicon/versions")
    assert [int(v) for v in re.findall(r'data-testid="version-row" data-version="(\d+)"', history)] == [3, 2, 1]
    old_view = _get(officer, "/compliance/lexicon?version=1")
    assert 'data-testid="old-version"' in old_view and RULE_ROW_RE.findall(old_view) == [str(rule_id)]
    assert 'data-testid="rule-edit"' not in old_view


def test_invalid_rule_is_refused_with_the_reason(app, officer):
    page = _get(officer, "/compliance/lexicon/rules/new")
    resp = officer.post("/compliance/lexicon/rules/new", data={
        "csrf_token": csrf_from(page), "phrase": "！！", "kind": "forbidden", "severity": "block"})
    assert resp.status_code == 400 and 'is-invalid' in resp.get_data(as_text=True)
    assert _version(app) == 0


def test_rules_list_filters_and_paginates(app, officer):
    with app.app_context():
        ensure_lexicon()
        db.session.commit()
        total = len(compliance.rules_in_version(compliance.current_lexicon_version()))
    html = _get(officer, "/compliance/lexicon")
    assert len(RULE_ROW_RE.findall(html)) == 25 and f"{total} " in html
    assert len(RULE_ROW_RE.findall(_get(officer, "/compliance/lexicon?per_page=100"))) == min(total, 100)

    def phrases(query):
        html = _get(officer, "/compliance/lexicon?per_page=100&" + query)
        ids = [int(i) for i in RULE_ROW_RE.findall(html)]
        with app.app_context():
            return [db.session.get(LexiconRule, i) for i in ids]

    found = [r.phrase for r in phrases("q=稳赚不赔")]
    assert "稳赚不赔" in found and all("稳赚不赔" in p for p in found)
    assert {r.severity for r in phrases("severity=warn")} == {"warn"}
    assert {r.kind for r in phrases("kind=required")} == {"required"}
    assert {r.category for r in phrases("category=return_promise")} == {"return_promise"}
    platform_rules = phrases("platform=douyin")
    assert platform_rules and all(not r.platforms or "douyin" in r.platforms for r in platform_rules)
    assert 'data-testid="empty-state"' in _get(officer, "/compliance/lexicon?q=不存在的短语xyz")


BAD_CSV = (
    "phrase,kind,severity,note\n"
    "新词一,forbidden,block,ok\n"
    "新词二,forbidden,fatal,bad severity\n"
    "新词三,maybe,block,bad kind\n"
    "新词一,forbidden,warn,duplicate\n"
).encode()


def test_csv_import_with_bad_rows_names_them_and_imports_nothing(app, officer):
    resp = _upload(officer, BAD_CSV)
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert [int(r) for r in re.findall(r'data-testid="import-error" data-row="(\d+)"', html)] == [3, 4, 5]
    assert _version(app) == 0 and _live_phrases(app) == set()

    resp = _upload(officer, b"\xff\xfe not utf-8")
    assert resp.status_code == 400 and 'data-testid="import-error"' in resp.get_data(as_text=True)
    assert _version(app) == 0


def test_csv_import_merges_as_one_version(app, officer):
    good = "phrase,kind,severity,note,category\n新词一,forbidden,block,ok,test\n新词二,forbidden,warn,,test\n"
    resp = _upload(officer, good.encode(), note="季度更新")
    assert resp.status_code == 302 and _version(app) == 1
    assert _live_phrases(app) == {"新词一", "新词二"}
    with app.app_context():
        assert db.session.scalars(sa.select(LexiconVersion.note)).one() == "季度更新"
    # importing the same file again changes nothing
    assert _upload(officer, good.encode()).status_code == 302 and _version(app) == 1


def test_export_then_import_round_trips_without_a_new_version(app, officer):
    with app.app_context():
        ensure_lexicon()
        compliance.add_rule(phrase="多平台, 带逗号", kind="forbidden", severity="warn", category="test",
                            note='含"引号"\n和换行', platforms=["douyin", "bilibili"], group="",
                            suggestion="改写, 带逗号", actor=None)
        db.session.commit()
    before = _version(app)
    resp = officer.get("/compliance/lexicon/export.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert f'filename="lexicon-v{before}.csv"' in resp.headers["Content-Disposition"]
    data = resp.data
    assert data.decode("utf-8-sig").splitlines()[0] == "phrase,kind,severity,note,category,platforms,group,suggestion"
    resp = _upload(officer, data)
    assert resp.status_code == 302
    assert _version(app) == before
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert ["多平台, 带逗号", "forbidden", "warn", '含"引号"\n和换行', "test", "bilibili|douyin", "",
            "改写, 带逗号"] in rows
    with app.app_context():
        assert len(compliance.rules_in_version(before)) == len(rows) - 1
    # an older version can be exported too
    assert officer.get("/compliance/lexicon/export.csv?version=1").status_code == 200


def test_try_the_scanner_shows_findings_and_stores_nothing(app, officer):
    with app.app_context():
        ensure_lexicon()
        db.session.commit()
    versions = _version(app)
    text = "跟我买，稳 赚 不 赔！"
    page = _get(officer, "/compliance/lexicon/try")
    resp = officer.post("/compliance/lexicon/try", data={"csrf_token": csrf_from(page), "text": text,
                                                         "platform": "douyin"})
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert 'data-testid="try-result" data-blocking="true"' in html
    spans = [(int(s), int(e)) for s, e in re.findall(
        r'data-testid="finding-row" data-rule="forbidden_phrase" data-start="(\d+)" data-end="(\d+)"', html)]
    assert any(text[s:e] == "稳 赚 不 赔" for s, e in spans)
    assert '<mark class="finding finding-block"' in html
    assert _version(app) == versions
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Scan)) == 0
    assert officer.post("/compliance/lexicon/try", data={"csrf_token": csrf_from(page), "text": ""}
                        ).status_code == 400
