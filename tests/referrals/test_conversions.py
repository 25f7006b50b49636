"""POST /api/v1/conversions per contract.md "Conversion webhook": signature, idempotency, validation."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest
import requests
import sqlalchemy as sa

from advisor_studio.audit import AuditEntry
from advisor_studio.dbtypes import business_day
from advisor_studio.extensions import db
from advisor_studio.referrals.attribution import sign
from advisor_studio.referrals.models import Conversion, Customer, ReferralLink
from tests.referrals.convert_helpers import (
    URL,
    counts,
    event,
    make_click,
    make_link,
    post_event,
    raw,
    signed_headers,
)


@pytest.fixture
def code(app, users):
    return make_link(app, users["advisor"].id)


@pytest.fixture
def click_id(app, code):
    return make_click(app, code)


def test_signup_through_a_click_is_stored_with_the_links_attribution(app, client, users, code, click_id):
    resp = post_event(app, client, event("signup", click_id=click_id))
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert set(body) == {"id", "event", "attributed"} and body["event"] == "signup"
    assert body["attributed"] == {"advisor_id": users["advisor"].id, "link_code": code, "content_id": None,
                                  "group_id": None, "channel_id": None, "campaign": "双十一"}
    with app.app_context():
        row = db.session.get(Conversion, body["id"])
        link = db.session.scalar(sa.select(ReferralLink).where(ReferralLink.code == code))
        assert (row.link_id, row.advisor_id, row.campaign, row.currency) == (link.id, users["advisor"].id, "双十一",
                                                                               "CNY")
        assert row.day == business_day(row.occurred_at) and row.amount is None and row.is_employee is False


def test_same_key_and_same_body_replays_the_first_answer_and_stores_nothing_new(app, client, click_id):
    body = raw(event("signup", click_id=click_id))
    first = post_event(app, client, body, key="order-1")
    again = post_event(app, client, body, key="order-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json() == first.get_json()
    assert counts(app) == (1, 1)


def test_same_key_with_a_different_body_is_409_and_changes_nothing(app, client, click_id):
    assert post_event(app, client, event("signup", click_id=click_id), key="k-1").status_code == 201
    other = post_event(app, client, event("signup", ref="CUST-0002", click_id=click_id), key="k-1")
    assert other.status_code == 409
    assert other.get_json()["error"]["code"] == "idempotency_key_reused"
    assert counts(app) == (1, 1)


@pytest.mark.parametrize("case", ["missing", "wrong-secret", "tampered-body", "stale", "future", "garbage",
                                  "no-v1", "non-numeric-t", "short-hex"])
def test_missing_forged_or_stale_signature_is_401_and_stores_nothing(app, client, click_id, case):
    body = raw(event("signup", click_id=click_id))
    now = int(time.time())
    secret = app.config["CONVERSION_WEBHOOK_SECRET"]
    header = {
        "missing": None,
        "wrong-secret": sign("not-the-secret", now, body),
        "tampered-body": sign(secret, now, body + b" "),
        "stale": sign(secret, now - 301, body),
        "future": sign(secret, now + 301, body),
        "garbage": "hello",
        "no-v1": f"t={now}",
        "non-numeric-t": sign(secret, now, body).replace(f"t={now}", "t=12ab"),
        "short-hex": sign(secret, now, body)[:-2],
    }[case]
    headers = {"Content-Type": "application/json", "Idempotency-Key": "k"}
    if header is not None:
        headers["X-Signature"] = header
    resp = client.post(URL, data=body, headers=headers)
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "bad_signature"
    assert counts(app) == (0, 0)


def test_signature_inside_the_300_second_window_is_accepted(app, client, click_id):
    resp = post_event(app, client, event("signup", click_id=click_id), t=int(time.time()) - 290)
    assert resp.status_code == 201


@pytest.mark.parametrize("key", [None, "", "x" * 256, "a\x7fb", "tab\there"])
def test_missing_or_malformed_idempotency_key_is_400(app, client, click_id, key):
    resp = post_event(app, client, event("signup", click_id=click_id), key=key)
    assert resp.status_code == 400
    error = resp.get_json()["error"]
    assert error["code"] == "bad_idempotency_key" and "Idempotency-Key" in error["fields"]
    assert counts(app) == (0, 0)


def test_a_255_character_printable_key_is_accepted(app, client, click_id):
    assert post_event(app, client, event("signup", click_id=click_id), key="~" * 255).status_code == 201


BAD_FIELDS = [
    ({"event": "funded", "amount": "-5"}, "amount"),
    ({"event": "funded", "amount": -5}, "amount"),
    ({"event": "funded", "amount": "1e309"}, "amount"),
    ({"event": "funded", "amount": "0.001"}, "amount"),
    ({"event": "funded", "amount": "NaN"}, "amount"),
    ({"event": "funded", "amount": "0"}, "amount"),
    ({"event": "funded", "amount": "0.00"}, "amount"),
    ({"event": "funded", "amount": "12,50"}, "amount"),
    ({"event": "funded", "amount": True}, "amount"),
    ({"event": "funded", "amount": "12345678901234.00"}, "amount"),
    ({"event": "funded"}, "amount"),
    ({"event": "withdrawal"}, "amount"),
    ({"event": "signup", "amount": "10.00"}, "amount"),
    ({"event": "refund"}, "event"),
    ({"event": None}, "event"),
    ({"event": ["signup"]}, "event"),
    ({"customer_ref": ""}, "customer_ref"),
    ({"customer_ref": "x" * 129}, "customer_ref"),
    ({"customer_ref": 12345}, "customer_ref"),
    ({"customer_ref": None}, "customer_ref"),
    ({"occurred_at": None}, "occurred_at"),
    ({"occurred_at": "2026-11-30T10:00:00"}, "occurred_at"),
    ({"occurred_at": "2026-11-30"}, "occurred_at"),
    ({"occurred_at": "yesterday"}, "occurred_at"),
    ({"occurred_at": "2026-13-40T10:00:00Z"}, "occurred_at"),
    ({"occurred_at": 1764460800}, "occurred_at"),
    ({"occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at"),
    ({"currency": "cny"}, "currency"),
    ({"currency": "RMB1"}, "currency"),
    ({"currency": 156}, "currency"),
    ({"is_employee": "yes"}, "is_employee"),
    ({"is_employee": 1}, "is_employee"),
    ({"click_id": "no-such-click"}, "click_id"),
    ({"click_id": 42}, "click_id"),
    ({"click_id": "x" * 33}, "click_id"),
    ({"referral_code": "zzzzzzz"}, "referral_code"),
]


@pytest.mark.parametrize(("changes", "field"), BAD_FIELDS)
def test_each_bad_field_is_named_in_a_400_and_nothing_is_stored(app, client, click_id, changes, field):
    body = {"event": "signup", "customer_ref": "CUST-1", "occurred_at": "2026-11-30T10:00:00+08:00",
            "click_id": click_id}
    if "click_id" in changes or "referral_code" in changes:
        body.pop("click_id")
    body.update(changes)
    body = {k: v for k, v in body.items() if v is not None}
    resp = post_event(app, client, body)
    assert resp.status_code == 400, resp.get_json()
    error = resp.get_json()["error"]
    assert set(error) >= {"code", "message", "fields"} and error["message"]
    assert field in error["fields"] and error["fields"][field]
    assert counts(app) == (0, 0)


def test_several_bad_fields_are_named_together(app, client):
    resp = post_event(app, client, {"event": "funded", "customer_ref": "", "occurred_at": "now", "amount": "-1",
                                    "currency": "yen", "is_employee": "no"})
    assert resp.status_code == 400
    assert set(resp.get_json()["error"]["fields"]) == {"customer_ref", "occurred_at", "amount", "currency",
                                                       "is_employee"}


@pytest.mark.parametrize("literal", [b"1e309", b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_json_numbers_are_refused_as_amounts(app, client, click_id, literal):
    body = (b'{"event": "funded", "customer_ref": "C", "occurred_at": "2026-11-30T10:00:00Z", "click_id": "'
            + click_id.encode() + b'", "amount": ' + literal + b"}")
    resp = post_event(app, client, body)
    assert resp.status_code == 400
    assert "amount" in resp.get_json()["error"]["fields"]
    assert counts(app) == (0, 0)


@pytest.mark.parametrize("body", [b"not json", b"", b"[1, 2]", b'"signup"', b"\xff\xfe{}", b"{" * 5000])
def test_non_json_or_non_object_bodies_are_400(app, client, body):
    resp = post_event(app, client, body)
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] in ("invalid_json", "invalid_body")
    assert counts(app) == (0, 0)


@pytest.mark.parametrize("size", [64 * 1024 + 1, 5 * 1024 * 1024])
def test_oversized_body_is_413_in_the_error_shape(app, client, click_id, size):
    body = json.dumps(event("signup", click_id=click_id, padding="x" * size)).encode()
    resp = post_event(app, client, body)
    assert resp.status_code == 413
    assert resp.get_json()["error"]["code"] == "body_too_large"
    assert counts(app) == (0, 0)


def test_first_event_without_click_or_code_is_400_on_click_id(app, client):
    resp = post_event(app, client, event("signup"))
    assert resp.status_code == 400
    assert "click_id" in resp.get_json()["error"]["fields"]
    assert counts(app) == (0, 0)


def test_later_event_of_a_known_customer_needs_no_click(app, client, click_id):
    assert post_event(app, client, event("signup", click_id=click_id)).status_code == 201
    resp = post_event(app, client, event("account_opened"))
    assert resp.status_code == 201 and resp.get_json()["attributed"] is not None


def test_currency_defaults_to_cny_and_amounts_are_kept_exactly(app, client, click_id):
    ids = []
    for amount, currency in (("1000.10", None), ("0.01", "USD"), ("9999999999999.99", "HKD")):
        resp = post_event(app, client, event("funded", click_id=click_id, amount=amount, currency=currency))
        assert resp.status_code == 201, resp.get_json()
        ids.append(resp.get_json()["id"])
    with app.app_context():
        rows = [db.session.get(Conversion, i) for i in ids]
        assert [(str(r.amount), r.currency) for r in rows] == [("1000.10", "CNY"), ("0.01", "USD"),
                                                              ("9999999999999.99", "HKD")]


def test_customer_ref_is_stored_only_as_a_keyed_hash_never_in_clear(app, client, click_id, caplog):
    ref = "ID-110101199001011234"
    caplog.set_level(logging.DEBUG)
    assert post_event(app, client, event("signup", ref=ref, click_id=click_id)).status_code == 201
    assert post_event(app, client, event("funded", ref=ref, amount="5.00")).status_code == 201
    bad = post_event(app, client, event("funded", ref=ref, amount="-1"))
    assert bad.status_code == 400 and ref not in bad.get_data(as_text=True)
    with app.app_context():
        customer = db.session.scalars(sa.select(Customer)).one()
        assert ref not in customer.ref_hash and len(customer.ref_hash) == 64
        import hashlib

        assert customer.ref_hash != hashlib.sha256(ref.encode()).hexdigest()  # keyed, not a bare hash
        dump = json.dumps([e.details for e in db.session.scalars(sa.select(AuditEntry))], ensure_ascii=False)
        assert ref not in dump and customer.ref_hash not in dump
        for row in db.session.scalars(sa.select(Conversion)):
            assert ref not in json.dumps(row.response, ensure_ascii=False)
    assert ref not in caplog.text


def test_customer_ref_key_setting_changes_the_stored_hash(app_factory, users):
    from advisor_studio.referrals import conversions

    app_a = app_factory(CUSTOMER_REF_KEY="key-a")
    app_b = app_factory(CUSTOMER_REF_KEY="key-b")
    with app_a.app_context():
        a = conversions.customer_ref_hash("C-1")
    with app_b.app_context():
        b = conversions.customer_ref_hash("C-1")
    assert a != b


def test_fifty_concurrent_identical_posts_store_one_row(app, live_server, click_id):
    body = raw(event("funded", click_id=click_id, amount="88.00"))
    headers = signed_headers(app.config["CONVERSION_WEBHOOK_SECRET"], body, key="same-key")
    barrier = threading.Barrier(50)
    results: list = [None] * 50

    def post(i: int) -> None:
        barrier.wait()
        resp = requests.post(live_server + URL, data=body, headers=headers, timeout=120)
        results[i] = (resp.status_code, resp.json())

    threads = [threading.Thread(target=post, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(status for status, _ in results)
    assert statuses.count(201) == 1 and statuses.count(200) == 49, statuses
    assert len({json.dumps(b, sort_keys=True) for _, b in results}) == 1
    assert counts(app) == (1, 1)


def test_concurrent_first_events_of_one_customer_make_one_customer(app, live_server, click_id):
    secret = app.config["CONVERSION_WEBHOOK_SECRET"]
    bodies = [raw(event(name, click_id=click_id, amount="1.00" if name == "funded" else None))
              for name in ("signup", "account_opened", "funded", "first_trade") * 3]
    barrier = threading.Barrier(len(bodies))
    statuses: list = []

    def post(body: bytes) -> None:
        headers = signed_headers(secret, body)
        barrier.wait()
        statuses.append(requests.post(live_server + URL, data=body, headers=headers, timeout=120).status_code)

    threads = [threading.Thread(target=post, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [201] * len(bodies)
    assert counts(app) == (len(bodies), 1)


def test_a_click_still_in_the_redirect_spool_attributes_its_signup(app, client, users, code):
    # The redirect answered, its click waits in the spool (drained about every second): the webhook
    # drains once instead of calling the click id unknown.
    from urllib.parse import parse_qs, urlsplit

    resp = client.get(f"/r/{code}", headers={"User-Agent": "Mozilla/5.0 (iPhone) MicroMessenger/8.0"})
    assert resp.status_code == 302
    click = parse_qs(urlsplit(resp.headers["Location"]).query)["click_id"][0]
    resp = post_event(app, client, event("signup", click_id=click))
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["attributed"]["link_code"] == code
