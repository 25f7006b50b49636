"""Reconciliation over HTTP as an admin: the account-opening system's CSV for a period (UTF-8, UTF-8 with
BOM, GBK) matched against the account_opened conversions recorded here (net of account_rejected), the
upload kept byte for byte with its SHA-256 and an audit entry; and every refusal (missing columns, bad
dates, the row cap, empty files, binary garbage, a bad period) storing neither a row nor a file."""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from advisor_studio.accounts.models import User
from advisor_studio.analytics.models import ReconciliationUpload
from advisor_studio.audit import AuditEntry
from advisor_studio.extensions import db
from advisor_studio.referrals import services as referrals
from advisor_studio.referrals.conversions import Event, customer_ref_hash, record_conversion
from tests.conftest import csrf_from, signed_in, stored_keys

PERIOD = {"period_from": "2026-11-01", "period_to": "2026-11-30"}
PAGE = "/analytics/reconciliation"


def convert(app, code: str, ref: str, event: str, when: datetime) -> None:
    with app.app_context():
        record_conversion(Event(event=event, customer_ref=ref, occurred_at=when, referral_code=code),
                          idempotency_key=uuid.uuid4().hex, digest=hashlib.sha256(uuid.uuid4().bytes).hexdigest())
        db.session.commit()


@pytest.fixture
def link_code(app, users) -> str:
    with app.app_context():
        advisor = db.session.get(User, users["advisor"].id)
        link = referrals.create_link(owner=advisor, actor=advisor, destination="https://kaihu.example.com/open")
        db.session.commit()
        return link.code


@pytest.fixture
def recorded(app, link_code):
    """Openings here: A and B in November, C rejected after opening, D in October, E only signed up."""
    convert(app, link_code, "A001", "account_opened", datetime(2026, 11, 3, 2, 0, tzinfo=UTC))
    # 2026-11-30 20:00 UTC is 2026-12-01 in Beijing: outside a November period of Beijing days.
    convert(app, link_code, "B002", "account_opened", datetime(2026, 11, 10, 8, 0, tzinfo=UTC))
    convert(app, link_code, "C003", "account_opened", datetime(2026, 11, 12, 8, 0, tzinfo=UTC))
    convert(app, link_code, "C003", "account_rejected", datetime(2026, 11, 13, 8, 0, tzinfo=UTC))
    convert(app, link_code, "D004", "account_opened", datetime(2026, 10, 20, 8, 0, tzinfo=UTC))
    convert(app, link_code, "E005", "signup", datetime(2026, 11, 5, 8, 0, tzinfo=UTC))
    convert(app, link_code, "F006", "account_opened", datetime(2026, 11, 30, 20, 0, tzinfo=UTC))
    convert(app, link_code, "G007", "account_opened", datetime(2026, 11, 20, 8, 0, tzinfo=UTC))


@pytest.fixture
def admin(app, users):
    return signed_in(app, users["admin"])


def upload(client, data: bytes, filename: str = "kaihu.csv", **period):
    token = csrf_from(client.get(PAGE).get_data(as_text=True))
    form = {**PERIOD, **period, "csrf_token": token, "file": (io.BytesIO(data), filename)}
    return client.post(PAGE + "?lang=en", data=form, content_type="multipart/form-data")


def uploads(app) -> list[ReconciliationUpload]:
    with app.app_context():
        rows = list(db.session.scalars(sa.select(ReconciliationUpload).order_by(ReconciliationUpload.id)))
        db.session.expunge_all()
        return rows


def text(resp) -> str:
    return resp.get_data(as_text=True)


FILE = ("customer_ref,opened_on,amount\n"
        "A001,2026-11-03,1000.00\n"
        "C003,2026-11-12,\n"
        "D004,2026-11-15,50\n"
        "X999,2026-11-16,\n"
        "E005,2026-11-05,\n"
        "A001,2026-11-03,\n"
        "B002,2026/11/11,200.5\n"
        "Z000,2026-10-31,\n")


def test_upload_matches_and_lists_each_side(app, admin, recorded):
    resp = upload(admin, FILE.encode())
    assert resp.status_code == 302, text(resp)
    [made] = uploads(app)
    assert resp.headers["Location"].endswith(f"{PAGE}/{made.id}")
    assert (made.encoding, made.row_count, made.matched) == ("utf-8", 8, 2)  # A001, B002
    assert made.missing_here == 4 and made.missing_there == 1  # G007 (F006 is December in Beijing)
    totals = made.result["totals"]
    assert totals["duplicates"] == 1 and totals["outside_period"] == 1 and totals["date_mismatch"] == 1
    assert totals["opened_here"] == 3 and totals["rejected_here"] == 1 and totals["file_amount"] == "1250.50"
    reasons = {line: reason for line, _hash, _day, reason in made.result["missing_here"]}
    assert reasons == {3: "rejected", 4: "other_period", 5: "unknown", 6: "no_opening"}
    with app.app_context():
        assert [item[1] for item in made.result["missing_there"]] == [customer_ref_hash("G007")]
        assert made.result["missing_here"][2][1] == customer_ref_hash("X999")
    page = admin.get(f"{PAGE}/{made.id}?lang=en")
    assert page.status_code == 200
    html = text(page)
    assert 'data-testid="total-matched">2<' in html and 'data-testid="total-missing-here">4<' in html
    assert html.count('data-testid="reconciliation-item"') == 4
    there = text(admin.get(f"{PAGE}/{made.id}?list=missing_there&lang=en"))
    assert there.count('data-testid="reconciliation-item"') == 1
    assert "X999" not in html and "X999" not in there  # references never appear in clear


def test_the_file_is_kept_unchanged_with_its_sha256_and_audited(app, admin, recorded):
    data = FILE.encode()
    before = stored_keys(app)
    assert upload(admin, data, filename="../../开户明细 11月.csv").status_code == 302
    [made] = uploads(app)
    assert made.sha256 == hashlib.sha256(data).hexdigest() and made.size_bytes == len(data)
    assert made.filename == "开户明细 11月.csv"
    assert stored_keys(app) - before == {made.storage_key}
    download = admin.get(f"{PAGE}/{made.id}/file")
    assert download.status_code == 200 and download.data == data
    assert "attachment" in download.headers["Content-Disposition"]
    with app.app_context():
        entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "reconciliation.uploaded")).one()
        assert entry.object_id == str(made.id) and entry.details["sha256"] == made.sha256
        assert entry.details["matched"] == 2


def test_a_kept_file_changed_behind_our_back_is_not_served_and_the_mismatch_audited(app, admin, recorded):
    from advisor_studio import storage

    assert upload(admin, FILE.encode()).status_code == 302
    [made] = uploads(app)
    with app.app_context():
        store = storage.get_storage()
        store.put_stream(io.BytesIO(FILE.replace("X999", "X998").encode()), made.storage_key)  # an insider's edit
    resp = admin.get(f"{PAGE}/{made.id}/file?lang=en")
    assert resp.status_code == 409 and "no longer matches" in text(resp)
    with app.app_context():
        entry = db.session.scalars(sa.select(AuditEntry).where(
            AuditEntry.action == "reconciliation.evidence_mismatch")).one()
        assert entry.details["expected"] == made.sha256 and entry.details["actual"] != made.sha256


def test_gbk_file_is_read_and_its_encoding_recorded(app, admin, recorded):
    data = "客户编号,开户日期,金额\nA001,2026-11-03,1000\nB002,2026-11-10,\nG007,2026-11-20,\n".encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert upload(admin, data).status_code == 302
    [made] = uploads(app)
    assert (made.encoding, made.matched, made.missing_here, made.missing_there) == ("gb18030", 3, 0, 0)
    assert made.result["columns"] == {"customer_ref": "客户编号", "opened_on": "开户日期", "amount": "金额"}
    assert admin.get(f"{PAGE}/{made.id}/file").data == data


def test_utf8_file_with_bom_is_read_and_its_encoding_recorded(app, admin, recorded):
    data = "\ufeff客户编号,开户日期\r\nA001,2026-11-03\r\n".encode()
    assert upload(admin, data).status_code == 302
    [made] = uploads(app)
    assert (made.encoding, made.matched, made.missing_there) == ("utf-8-sig", 1, 2)
    assert made.sha256 == hashlib.sha256(data).hexdigest()


def _refused(app, admin, resp, status: int, *phrases: str) -> str:
    assert resp.status_code == status, text(resp)[:2000]
    body = text(resp)
    for phrase in phrases:
        assert phrase in body, phrase
    assert uploads(app) == []
    return body


@pytest.fixture
def clean_storage(app):
    return stored_keys(app)


@pytest.mark.parametrize("data, phrases", [
    (b"customer_ref,amount\nA001,10\n", ["opened_on", "lacks required columns"]),
    (b"name,opened_on\nA001,2026-11-03\n", ["customer_ref", "lacks required columns"]),
    (b"", ["The file is empty"]),
    (b"\n\n  \n", ["The file is empty"]),
    (b"customer_ref,opened_on\n", ["no data rows"]),
    (b"customer_ref,opened_on\nA001,2026-13-01\nB002,yesterday\nC003,2026-11-03\n",
     ["2 rows cannot be read", "line 2", "line 3", "yesterday"]),
    (b"customer_ref,opened_on\n,2026-11-03\n", ["customer reference is empty"]),
    (b"customer_ref,opened_on,amount\nA001,2026-11-03,-5\n", ["not an amount"]),
    (b"customer_ref,opened_on\n" + b"A" * 129 + b",2026-11-03\n", ["longer than 128"]),
    (b"\xff\xfec\x00u\x00s\x00", ["UTF-16"]),
    (bytes(range(256)) * 40, ["nothing was stored"]),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01", ["nothing was stored"]),
    (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xb5U0#\xf4", ["nothing was stored"]),
    (b'customer_ref,opened_on\n"A001,2026-11-03\n', ["not a readable CSV"]),
])
def test_bad_files_are_refused_with_a_clear_message_and_nothing_stored(app, admin, recorded, clean_storage, data,
                                                                       phrases):
    _refused(app, admin, upload(admin, data), 400, *phrases)
    assert stored_keys(app) == clean_storage


@pytest.mark.parametrize("period, phrase", [
    ({"period_from": "2026-11-30", "period_to": "2026-11-01"}, "ends before it starts"),
    ({"period_from": "2016-01-01", "period_to": "2026-01-01"}, "at most 366 days"),
    ({"period_from": "2026-02-30"}, "Not a valid date"),
    ({"period_from": ""}, "Enter the first day of the period."),
])
def test_bad_periods_are_refused_and_nothing_stored(app, admin, recorded, clean_storage, period, phrase):
    resp = upload(admin, FILE.encode(), **period)
    _refused(app, admin, resp, 400, phrase)
    assert stored_keys(app) == clean_storage


def test_a_million_row_file_is_refused_naming_the_cap_and_nothing_stored(app, admin, clean_storage):
    rows = b"".join(b"C%07d,2026-11-05\n" % n for n in range(1_000_000))
    data = b"customer_ref,opened_on\n" + rows
    resp = upload(admin, data)
    _refused(app, admin, resp, 400, "more than 200000 rows")
    assert stored_keys(app) == clean_storage


def test_row_cap_is_configured_and_a_file_at_the_cap_is_accepted(app_factory, users):
    app = app_factory(RECONCILIATION_MAX_ROWS=3)
    admin = signed_in(app, users["admin"])
    ok = b"customer_ref,opened_on\nA,2026-11-01\n\nB,2026-11-02\nC,2026-11-03\n"  # blank lines do not count
    assert upload(admin, ok).status_code == 302
    resp = upload(admin, ok + b"D,2026-11-04\n")
    assert resp.status_code == 400 and "more than 3 rows" in text(resp)
    assert len(uploads(app)) == 1


def test_byte_cap_is_configured_and_named(app_factory, users):
    app = app_factory(RECONCILIATION_MAX_MB=1)
    admin = signed_in(app, users["admin"])
    data = b"customer_ref,opened_on\n" + b"A123456789,2026-11-01\n" * 60_000
    resp = upload(admin, data)
    assert resp.status_code == 400 and "larger than 1 MB" in text(resp)
    assert uploads(app) == []


def test_a_failing_commit_leaves_no_stored_file(app, admin, recorded, clean_storage, monkeypatch):
    from advisor_studio.analytics import reconciliation

    def broken_record(*args, **kwargs):
        raise RuntimeError("audit down")

    monkeypatch.setattr(reconciliation.audit, "record", broken_record)
    resp = upload(admin, FILE.encode())
    assert resp.status_code == 500
    assert uploads(app) == []
    assert stored_keys(app) == clean_storage


def test_past_uploads_are_listed_newest_first(app, admin, recorded):
    upload(admin, FILE.encode(), filename="first.csv")
    upload(admin, FILE.encode(), filename="second.csv", period_from="2026-10-01", period_to="2026-10-31")
    html = text(admin.get(PAGE + "?lang=en"))
    assert html.index("second.csv") < html.index("first.csv")
    october = uploads(app)[1]
    assert october.matched == 0 and october.missing_there == 1  # D004 opened in October here


def test_lists_are_paginated(app, admin, link_code):
    rows = "".join(f"R{n:04d},2026-11-02\n" for n in range(120))
    assert upload(admin, ("customer_ref,opened_on\n" + rows).encode()).status_code == 302
    [made] = uploads(app)
    assert made.missing_here == 120
    first = text(admin.get(f"{PAGE}/{made.id}?page=1"))
    third = text(admin.get(f"{PAGE}/{made.id}?page=3"))
    assert first.count('data-testid="reconciliation-item"') == 50
    assert third.count('data-testid="reconciliation-item"') == 20
    assert 'data-line="2"' in first and 'data-line="2"' not in third
    assert admin.get(f"{PAGE}/{made.id}?page=abc").status_code == 400


@pytest.mark.parametrize("role", ["advisor", "compliance", "mcn"])
def test_only_admins_upload_read_or_download(app, users, recorded, role):
    admin = signed_in(app, users["admin"])
    assert upload(admin, FILE.encode()).status_code == 302
    [made] = uploads(app)
    client = signed_in(app, users[role])
    token = csrf_from(client.get("/account/password").get_data(as_text=True))
    for path in (PAGE, f"{PAGE}/{made.id}", f"{PAGE}/{made.id}/file"):
        assert client.get(path).status_code == 403, path
    resp = client.post(PAGE, data={**PERIOD, "csrf_token": token, "file": (io.BytesIO(FILE.encode()), "x.csv")},
                       content_type="multipart/form-data")
    assert resp.status_code == 403
    assert len(uploads(app)) == 1


def test_upload_without_csrf_token_is_refused(app, admin, recorded):
    resp = admin.post(PAGE, data={**PERIOD, "file": (io.BytesIO(FILE.encode()), "x.csv")},
                      content_type="multipart/form-data")
    assert resp.status_code == 400
    assert uploads(app) == []


def test_file_references_are_hashed_exactly_as_the_webhook_hashes_customers(app_factory):
    from advisor_studio.analytics.reconciliation import ref_hasher

    for key in (None, "a-dedicated-customer-ref-key"):
        app = app_factory(CUSTOMER_REF_KEY=key)
        with app.app_context():
            hasher = ref_hasher()
            for ref in ("A001", "客户-0001", " padded ", "x" * 128):
                assert hasher(ref) == customer_ref_hash(ref)


def test_parse_date_accepts_the_usual_back_office_forms():
    from advisor_studio.analytics.reconciliation import parse_date

    assert parse_date("2026-11-03") == parse_date("2026/11/03") == parse_date("20261103") == date(2026, 11, 3)
    assert parse_date("2026-11-03 09:30:00") == date(2026, 11, 3)
    assert parse_date("2026-11-31") is None and parse_date("03/11/2026") is None and parse_date("") is None
