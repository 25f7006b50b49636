"""Compliance pages of fraud flags: list and filters, a flag's page, the decision (validation, audit,
dirty days, two officers at once) and who may see any of it."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa

from advisor_studio.accounts.models import User
from advisor_studio.analytics import fraud
from advisor_studio.analytics.models import (
    FLAG_CLEARED,
    FLAG_CONFIRMED,
    FLAG_OPEN,
    FLAG_SHORT_LAG,
    FLAG_VISITOR_BURST,
    FraudFlag,
)
from advisor_studio.analytics.services import dirty_days
from advisor_studio.audit import AuditEntry
from advisor_studio.errors import Conflict, ValidationError
from advisor_studio.extensions import db
from advisor_studio.referrals import services as referrals
from tests.analytics.fraud_helpers import T0, add_click, add_conversion
from tests.conftest import csrf_from, record_of, signed_in
from tests.factories import make_user

DEST = "https://kaihu.example.com/open"
EN = {"lang": "en"}


def _make_flags(app, users) -> dict:
    """A visitor burst on advisor's link (clicks on T0's day) and a short lag on advisor2's (next day)."""
    with app.app_context():
        advisor = db.session.get(User, users["advisor"].id)
        advisor2 = db.session.get(User, users["advisor2"].id)
        link = referrals.create_link(owner=advisor, actor=advisor, destination=DEST)
        link2 = referrals.create_link(owner=advisor2, actor=advisor2, destination=DEST)
        for i in range(20):
            add_click(link, T0 + timedelta(seconds=i * 3), visitor="burst")
        next_day = T0 + timedelta(days=1)
        click = add_click(link2, next_day)
        add_conversion(link2, "signup", next_day + timedelta(seconds=3), click=click)
        fraud.detect(T0 - timedelta(hours=1), next_day + timedelta(hours=1))
        db.session.commit()
        ids = {f.kind: f.id for f in db.session.scalars(sa.select(FraudFlag))}
        return ids


@pytest.fixture
def flag_ids(app, users):
    return _make_flags(app, users)


@pytest.fixture
def officer(app, users):
    return signed_in(app, users["compliance"])


def _rows(html: str) -> int:
    return html.count('data-testid="fraud-row"')


def _decide(client, flag_id: int, data: dict):
    page = client.get(f"/compliance/fraud/{flag_id}")
    token = csrf_from(page.get_data(as_text=True))
    return client.post(f"/compliance/fraud/{flag_id}/decision", data={**data, "csrf_token": token},
                       query_string=EN)


def _flag(app, flag_id: int) -> FraudFlag:
    with app.app_context():
        flag = db.session.get(FraudFlag, flag_id)
        db.session.expunge(flag)
        return flag


def _decisions(app) -> list[AuditEntry]:
    with app.app_context():
        return list(db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action.like("fraud_flag.%"),
                                                                   AuditEntry.action != "fraud_flag.raised")))


# --- list ----------------------------------------------------------------------------------------


def test_list_shows_open_flags_by_default_and_filters_by_kind_advisor_status_and_day(app, officer, users, flag_ids):
    html = officer.get("/compliance/fraud", query_string=EN).get_data(as_text=True)
    assert _rows(html) == 2 and "Click burst from one visitor" in html
    by_kind = officer.get("/compliance/fraud", query_string={**EN, "kind": FLAG_SHORT_LAG}).get_data(as_text=True)
    assert _rows(by_kind) == 1 and f'data-flag-id="{flag_ids[FLAG_SHORT_LAG]}"' in by_kind
    by_advisor = officer.get("/compliance/fraud", query_string={"advisor": users["advisor"].id}).get_data(as_text=True)
    assert _rows(by_advisor) == 1 and f'data-flag-id="{flag_ids[FLAG_VISITOR_BURST]}"' in by_advisor
    day = (T0 + timedelta(days=1)).date().isoformat()
    by_day = officer.get("/compliance/fraud", query_string={"from": day, "to": day}).get_data(as_text=True)
    assert _rows(by_day) == 1 and f'data-flag-id="{flag_ids[FLAG_SHORT_LAG]}"' in by_day
    assert _rows(officer.get("/compliance/fraud?status=confirmed").get_data(as_text=True)) == 0
    assert _rows(officer.get("/compliance/fraud?status=all").get_data(as_text=True)) == 2


def test_decided_flags_leave_the_default_list_and_show_under_their_status(app, officer, flag_ids):
    resp = _decide(officer, flag_ids[FLAG_SHORT_LAG], {"decision": FLAG_CLEARED, "note": "real person", "confirm": "y"})
    assert resp.status_code == 302
    assert _rows(officer.get("/compliance/fraud").get_data(as_text=True)) == 1
    cleared = officer.get("/compliance/fraud?status=cleared").get_data(as_text=True)
    assert _rows(cleared) == 1 and f'data-flag-id="{flag_ids[FLAG_SHORT_LAG]}"' in cleared


def test_empty_list_says_what_to_do(app, officer):
    html = officer.get("/compliance/fraud", query_string=EN).get_data(as_text=True)
    assert 'data-testid="empty-state"' in html and "No fraud flags match." in html


def test_list_pages_through_many_flags(app, officer, users):
    with app.app_context():
        advisor = db.session.get(User, users["advisor"].id)
        link = referrals.create_link(owner=advisor, actor=advisor, destination=DEST)
        for i in range(30):
            db.session.add(FraudFlag(kind=FLAG_SHORT_LAG, subject=f"conversion:{i}", advisor_id=advisor.id,
                                     day=T0.date(), detail={}))
        db.session.commit()
        assert link.id
    first = officer.get("/compliance/fraud").get_data(as_text=True)
    second = officer.get("/compliance/fraud?page=2").get_data(as_text=True)
    assert _rows(first) == 25 and _rows(second) == 5


@pytest.mark.parametrize("query", ["status=maybe", "kind=robbery", "from=2026-11-30&to=2026-11-01", "advisor=x",
                                   "from=30/11/2026", "page=0"])
def test_bad_filters_answer_400_with_a_message(app, officer, query):
    resp = officer.get(f"/compliance/fraud?{query}&lang=en")
    assert resp.status_code == 400
    assert "must be" in resp.get_data(as_text=True) or "before the start" in resp.get_data(as_text=True)


# --- a flag's page -------------------------------------------------------------------------------


def test_flag_page_shows_the_numbers_and_the_items(app, officer, flag_ids):
    html = officer.get(f"/compliance/fraud/{flag_ids[FLAG_SHORT_LAG]}", query_string=EN).get_data(as_text=True)
    assert 'data-detail="lag_seconds"' in html and "Click to signup (seconds)" in html
    assert 'data-testid="flag-clicks"' in html and 'data-testid="flag-conversions"' in html
    assert 'data-testid="decision-form"' in html and 'name="csrf_token"' in html
    burst = officer.get(f"/compliance/fraud/{flag_ids[FLAG_VISITOR_BURST]}", query_string=EN).get_data(as_text=True)
    assert "Clicks covered (20)" in burst and "Conversions covered (0)" in burst


def test_flag_page_names_device_and_in_app_browser_in_chinese_not_by_code(app, officer, flag_ids):
    html = officer.get(f"/compliance/fraud/{flag_ids[FLAG_SHORT_LAG]}").get_data(as_text=True)
    cells = re.findall(r'data-testid="click-device">([^<]*)</td><td[^>]*>([^<]*)</td>', html)
    assert cells == [("手机", "微信")]  # add_click's device "mobile", in_app "wechat"
    assert ">mobile<" not in html and ">wechat<" not in html


def test_unknown_flag_is_404(app, officer):
    assert officer.get("/compliance/fraud/999999").status_code == 404
    assert _decide_missing(officer).status_code == 404


def _decide_missing(client):
    page = client.get("/account/password")
    token = csrf_from(page.get_data(as_text=True))
    return client.post("/compliance/fraud/999999/decision",
                       data={"decision": FLAG_CONFIRMED, "note": "x", "confirm": "y", "csrf_token": token})


# --- deciding ------------------------------------------------------------------------------------


def test_confirming_records_the_decision_audits_it_and_marks_the_covered_days_dirty(app, officer, users, flag_ids):
    flag_id = flag_ids[FLAG_SHORT_LAG]
    resp = _decide(officer, flag_id, {"decision": FLAG_CONFIRMED, "note": "  bot signups  ", "confirm": "y"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/compliance/fraud/{flag_id}")
    flag = _flag(app, flag_id)
    assert flag.status == FLAG_CONFIRMED and flag.decided_by_id == users["compliance"].id
    assert flag.decision_note == "bot signups" and flag.decided_at is not None
    [entry] = _decisions(app)
    assert entry.action == "fraud_flag.confirmed" and entry.actor_id == users["compliance"].id
    assert entry.object_id == str(flag_id) and entry.details["note"] == "bot signups"
    assert entry.details["clicks"] == 1 and entry.details["conversions"] == 1
    with app.app_context():
        assert dirty_days() == [(T0 + timedelta(days=1)).date()]
    page = officer.get(f"/compliance/fraud/{flag_id}", query_string=EN).get_data(as_text=True)
    assert 'data-testid="flag-decision"' in page and 'data-testid="decision-form"' not in page


def test_clearing_is_audited_and_also_marks_the_days_dirty(app, officer, flag_ids):
    resp = _decide(officer, flag_ids[FLAG_VISITOR_BURST], {"decision": FLAG_CLEARED, "note": "office wifi",
                                                          "confirm": "y"})
    assert resp.status_code == 302
    assert _flag(app, flag_ids[FLAG_VISITOR_BURST]).status == FLAG_CLEARED
    assert [e.action for e in _decisions(app)] == ["fraud_flag.cleared"]
    with app.app_context():
        assert dirty_days() == [T0.date()]


@pytest.mark.parametrize("data, field", [
    ({"decision": FLAG_CONFIRMED, "note": "", "confirm": "y"}, "note"),
    ({"decision": FLAG_CONFIRMED, "note": "   ", "confirm": "y"}, "note"),
    ({"decision": FLAG_CONFIRMED, "note": "x" * 2001, "confirm": "y"}, "note"),
    ({"decision": FLAG_CONFIRMED, "note": "why"}, "confirm"),
    ({"decision": "open", "note": "why", "confirm": "y"}, "decision"),
    ({"decision": "deleted", "note": "why", "confirm": "y"}, "decision"),
    ({"note": "why", "confirm": "y"}, "decision"),
])
def test_an_invalid_decision_is_refused_with_a_message_and_changes_nothing(app, officer, flag_ids, data, field):
    flag_id = flag_ids[FLAG_SHORT_LAG]
    resp = _decide(officer, flag_id, data)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "The decision was not saved" in html
    assert 'class="invalid-feedback"' in html or 'text-danger small' in html
    assert _flag(app, flag_id).status == FLAG_OPEN and _decisions(app) == []
    with app.app_context():
        assert dirty_days() == []


def test_a_decision_without_csrf_token_is_refused(app, officer, flag_ids):
    resp = officer.post(f"/compliance/fraud/{flag_ids[FLAG_SHORT_LAG]}/decision",
                        data={"decision": FLAG_CONFIRMED, "note": "why", "confirm": "y"})
    assert resp.status_code == 400
    assert _flag(app, flag_ids[FLAG_SHORT_LAG]).status == FLAG_OPEN


def test_deciding_a_decided_flag_tells_who_decided_and_changes_nothing(app, officer, users, flag_ids):
    flag_id = flag_ids[FLAG_SHORT_LAG]
    assert _decide(officer, flag_id, {"decision": FLAG_CLEARED, "note": "fine", "confirm": "y"}).status_code == 302
    page = officer.get(f"/compliance/fraud/{flag_id}").get_data(as_text=True)
    token = csrf_from(page)
    resp = officer.post(f"/compliance/fraud/{flag_id}/decision?lang=en", follow_redirects=True,
                        data={"decision": FLAG_CONFIRMED, "note": "no, fraud", "confirm": "y", "csrf_token": token})
    html = resp.get_data(as_text=True)
    assert f"{users['compliance'].name} already cleared this flag" in html
    assert _flag(app, flag_id).status == FLAG_CLEARED and len(_decisions(app)) == 1


def test_a_stale_read_loses_the_compare_and_set(app, users, flag_ids):
    """The officer's page was loaded while the flag was open; another officer decided meanwhile."""
    with app.app_context():
        stale = db.session.get(FraudFlag, flag_ids[FLAG_SHORT_LAG])
        assert stale.status == FLAG_OPEN
        with db.engine.begin() as conn:  # the other officer's transaction, committed
            conn.execute(sa.update(FraudFlag).where(FraudFlag.id == stale.id)
                         .values(status=FLAG_CLEARED, decided_by_id=users["admin"].id, decision_note="other"))
        officer = db.session.get(User, users["compliance"].id)
        with pytest.raises(Conflict):
            fraud.decide(stale, FLAG_CONFIRMED, "late", actor=officer)
        db.session.rollback()
        assert db.session.get(FraudFlag, stale.id).status == FLAG_CLEARED
    assert _decisions(app) == []
    with app.app_context():
        assert dirty_days() == []


def test_the_service_refuses_a_decision_by_anyone_but_compliance(app, users, flag_ids):
    from advisor_studio.errors import PermissionDenied

    with app.app_context():
        flag = db.session.get(FraudFlag, flag_ids[FLAG_SHORT_LAG])
        for role in ("advisor", "admin", "mcn"):
            with pytest.raises(PermissionDenied):
                fraud.decide(flag, FLAG_CLEARED, "mine", actor=db.session.get(User, users[role].id))
        assert flag.status == FLAG_OPEN


def test_decide_validates_in_the_service_too(app, users, flag_ids):
    with app.app_context():
        flag = db.session.get(FraudFlag, flag_ids[FLAG_SHORT_LAG])
        officer = db.session.get(User, users["compliance"].id)
        with pytest.raises(ValidationError) as err:
            fraud.decide(flag, "reopened", " ", actor=officer)
        assert set(err.value.fields) == {"decision", "note"}


def _login(base: str, record) -> requests.Session:
    session = requests.Session()
    token = csrf_from(session.get(f"{base}/login").text)
    resp = session.post(f"{base}/login", data={"email": record.email, "password": record.password,
                                               "csrf_token": token}, allow_redirects=False)
    assert resp.status_code == 302
    return session


def test_two_officers_deciding_at_once_produce_one_decision(app, users, live_server, flag_ids):
    with app.app_context():
        second = record_of(make_user("compliance"))
        db.session.commit()
    flag_id = flag_ids[FLAG_VISITOR_BURST]
    officers = [(_login(live_server, users["compliance"]), FLAG_CONFIRMED),
                (_login(live_server, second), FLAG_CLEARED)]
    tokens = [csrf_from(s.get(f"{live_server}/compliance/fraud/{flag_id}").text) for s, _ in officers]
    barrier = threading.Barrier(2)
    answers: list = [None, None]

    def decide(i: int) -> None:
        session, decision = officers[i]
        barrier.wait()
        answers[i] = session.post(f"{live_server}/compliance/fraud/{flag_id}/decision?lang=en",
                                  data={"decision": decision, "note": f"officer {i}", "confirm": "y",
                                        "csrf_token": tokens[i]})

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    texts = [a.text for a in answers]
    assert all(a.status_code == 200 for a in answers)  # both redirected back to the flag's page
    won = [i for i, text in enumerate(texts) if "Flag confirmed" in text or "Flag cleared" in text]
    lost = [i for i, text in enumerate(texts) if "already" in text and "nothing was changed" in text]
    assert len(won) == 1 and len(lost) == 1
    [entry] = _decisions(app)
    flag = _flag(app, flag_id)
    assert flag.status == officers[won[0]][1] and entry.details["note"] == f"officer {won[0]}"


# --- who may ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["advisor", "mcn", "admin"])
def test_only_compliance_sees_or_decides_fraud_flags(app, users, flag_ids, role):
    client = signed_in(app, users[role])
    flag_id = flag_ids[FLAG_SHORT_LAG]
    assert client.get("/compliance/fraud").status_code == 403
    assert client.get(f"/compliance/fraud/{flag_id}").status_code == 403
    token = csrf_from(client.get("/account/password").get_data(as_text=True))
    resp = client.post(f"/compliance/fraud/{flag_id}/decision",
                       data={"decision": FLAG_CLEARED, "note": "mine", "confirm": "y", "csrf_token": token})
    assert resp.status_code == 403
    assert _flag(app, flag_id).status == FLAG_OPEN and _decisions(app) == []


def test_anonymous_visitors_are_sent_to_sign_in(app, client, flag_ids):
    resp = client.get(f"/compliance/fraud/{flag_ids[FLAG_SHORT_LAG]}")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_compliance_menu_has_the_fraud_flags_entry(app, officer):
    html = officer.get("/compliance/queue", query_string=EN).get_data(as_text=True)
    assert 'href="/compliance/fraud"' in html


def _statements(app, client, url: str) -> int:
    from sqlalchemy import event

    with app.app_context():
        engine = db.engine
    seen: list[str] = []

    def record(_conn, _cursor, statement, _params, _context, _many):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return len(seen)


def _add_flags(app, advisor_ids: list[int], count: int, offset: int) -> None:
    with app.app_context():
        for i in range(count):
            db.session.add(FraudFlag(kind=FLAG_VISITOR_BURST, subject=f"visitor:{offset + i}",
                                     advisor_id=advisor_ids[i % len(advisor_ids)], day=T0.date(), detail={}))
        db.session.commit()


def test_list_renders_with_the_same_number_of_queries_for_3_and_25_flags(app, officer, users):
    advisors = [users["advisor"].id, users["advisor2"].id]
    _add_flags(app, advisors, 3, 0)
    officer.get("/compliance/fraud")  # warm-up
    small = _statements(app, officer, "/compliance/fraud")
    with app.app_context():  # more advisors too: a lazy load per advisor would show up
        advisors += [make_user("advisor").id for _ in range(6)]
        db.session.commit()
    _add_flags(app, advisors, 40, 100)
    large = _statements(app, officer, "/compliance/fraud")
    assert _rows(officer.get("/compliance/fraud").get_data(as_text=True)) == 25
    assert large == small


def test_pages_speak_chinese_by_default(app, officer, flag_ids):
    """Passes once /work/pending-po/ana-fraud.po is merged into the catalogue."""
    html = officer.get("/compliance/fraud").get_data(as_text=True)
    assert "异常流量" in html and "同一访客集中点击" in html and "待处理" in html
    page = officer.get(f"/compliance/fraud/{flag_ids[FLAG_SHORT_LAG]}").get_data(as_text=True)
    assert "注册过快" in page and "点击至注册间隔（秒）" in page and "确认作弊：从数据中剔除" in page
