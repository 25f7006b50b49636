"""No 500s from input: ids and numbers beyond what the database holds, impossible dates, CR/LF in
``next``, NUL characters and oversized Range positions answer 400/404 with a clear message, and
nothing is stored or half-done."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa

from advisor_studio.audit import AuditEntry
from advisor_studio.compliance.models import ReviewComment
from advisor_studio.extensions import db
from advisor_studio.studio.models import Script
from advisor_studio.web import MAX_ID, MAX_PAGE
from tests.compliance.test_review_pages import submit_package
from tests.conftest import csrf_from, post_form, signed_in
from tests.factories import ensure_lexicon
from tests.studio.test_pages import create_script, package_for
from tests.studio.test_pages_packages import form_of, package_state

# Beyond PostgreSQL's INTEGER (2**31), beyond BIGINT and SQLite's INTEGER (2**63, 2**64), and absurd.
HUGE_IDS = [MAX_ID + 1, 2**63, 2**64, 10**30]


@pytest.fixture
def lexicon(app):
    with app.app_context():
        ensure_lexicon()
        db.session.commit()


def _text(resp) -> str:
    return resp.get_data(as_text=True)


def _count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


# --- ids in URLs ---------------------------------------------------------------------------------


def _int_rules(app):
    return sorted((rule for rule in app.url_map.iter_rules() if "<int:" in rule.rule), key=lambda r: r.rule)


def test_every_int_route_answers_404_for_ids_beyond_the_integer_range(app, users):
    rules = _int_rules(app)
    assert len(rules) > 20  # the walk reaches the studio, compliance, video and admin routes
    for role in ("advisor", "compliance", "admin"):
        client = signed_in(app, users[role])
        for rule in rules:
            method = "GET" if "GET" in rule.methods else "POST"
            for huge in HUGE_IDS:
                path = rule.rule
                for arg in rule.arguments:
                    path = path.replace(f"<int:{arg}>", str(huge))
                resp = client.open(path, method=method)
                assert resp.status_code == 404, (role, method, path, resp.status_code)


def test_largest_integer_id_is_still_looked_up_and_simply_not_found(app, users):
    client = signed_in(app, users["advisor"])
    assert client.get(f"/studio/scripts/{MAX_ID}").status_code == 404
    assert client.get("/studio/scripts/0").status_code == 404
    script_id = create_script(app, users["advisor"].id)
    assert client.get(f"/studio/scripts/{script_id}").status_code == 200
    arabic_indic = "".join(chr(0x660 + int(d)) for d in str(script_id))  # int() reads them, the URL map must not
    assert client.get(f"/studio/scripts/{arabic_indic}").status_code == 404


# --- numbers in query strings and forms -----------------------------------------------------------


@pytest.mark.parametrize(("role", "url"), [
    ("advisor", "/studio/scripts?page=1e20"),
    ("advisor", f"/studio/scripts?page={2**64}"),
    ("advisor", f"/studio/packages?page={MAX_PAGE + 1}"),
    ("advisor", "/studio/?page=-1"),
    ("advisor", f"/studio/scripts/1/diff?a={2**64}"),
    ("compliance", "/compliance/queue?advisor=1e23"),
    ("compliance", f"/compliance/queue?advisor={2**64}"),
    ("compliance", f"/compliance/queue?advisor={MAX_ID + 1}"),
    ("compliance", f"/compliance/queue?per_page={2**64}"),
    ("compliance", f"/compliance/queue?page={2**64}"),
    ("compliance", f"/compliance/approved?page={2**64}"),
    ("compliance", f"/compliance/lexicon?version={2**64}"),
    ("compliance", "/compliance/lexicon/versions?page=NaN"),
    ("compliance", f"/compliance/lexicon/export.csv?version={2**64}"),
    ("compliance", f"/audit?page={2**64}"),
    ("admin", f"/admin/users?page={2**64}"),
    ("admin", "/admin/users?page=１"),  # a full-width digit is a digit to Python, not to us
])
def test_numbers_in_the_query_string_beyond_range_answer_400_naming_the_parameter(app, users, lexicon, role, url):
    client = signed_in(app, users[role])
    if "/diff" in url:
        url = url.replace("/1/", f"/{create_script(app, users['advisor'].id)}/")
    resp = client.get(url + "&lang=en")
    assert resp.status_code == 400, (url, resp.status_code)
    name = url.split("?", 1)[1].split("=", 1)[0]
    assert f"“{name}” in the address must be a whole number" in _text(resp)


def test_numbers_in_range_still_filter_and_page(app, users, lexicon):
    client = signed_in(app, users["compliance"])
    assert client.get(f"/compliance/queue?advisor={users['advisor'].id}&per_page=50&page=2").status_code == 200
    assert client.get("/compliance/queue?advisor=&age=").status_code == 200  # the filter form's "all"
    assert signed_in(app, users["advisor"]).get(f"/studio/scripts?page={MAX_PAGE}").status_code == 200


def test_json_clients_get_the_query_error_as_json(app, users):
    client = signed_in(app, users["advisor"])
    resp = client.get("/studio/scripts?page=1e20", headers={"Accept": "application/json"})
    assert resp.status_code == 400
    assert resp.json["error"]["code"] == "bad_query" and list(resp.json["error"]["fields"]) == ["page"]


def test_review_comment_numbers_beyond_the_integer_range_are_refused_and_nothing_is_stored(app, users, lexicon):
    _package_id, review_id = submit_package(app, users["advisor"], users["compliance"])
    client = signed_in(app, users["compliance"])
    token = csrf_from(_text(client.get(f"/compliance/reviews/{review_id}")))
    for field in ("parent_id", "anchor_start", "anchor_end", "timecode_ms"):
        for value in (str(MAX_ID + 1), str(2**64), "1e20"):
            data = {"body": "请补充风险提示", "anchor_field": "body", "anchor_start": "0", "anchor_end": "2",
                    field: value, "csrf_token": token}
            resp = client.post(f"/compliance/reviews/{review_id}/comments", data=data)
            assert resp.status_code == 400, (field, value, resp.status_code)
    assert _count(app, ReviewComment) == 0


# --- dates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["to=9999-12-31", "from=0001-01-01", "to=2026-02-30", "from=2026-13-01",
                                   "from=20260101", "to=２０２６-01-01", "from=1899-12-31", "to=3000-01-01"])
def test_audit_date_filters_outside_the_calendar_answer_400_with_the_expected_form(app, users, query):
    client = signed_in(app, users["compliance"])
    resp = client.get(f"/audit?{query}&lang=en")
    assert resp.status_code == 400, query
    assert "must be a date written YYYY-MM-DD, from 1900-01-01 to 2999-12-31" in _text(resp)


def test_audit_date_filters_at_the_bounds_still_work(app, users):
    client = signed_in(app, users["admin"])
    assert client.get("/audit?from=1900-01-01&to=2999-12-31").status_code == 200
    assert client.get("/audit?from=&to=").status_code == 200


# --- CR/LF in next -------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["/\r\nX-Injected: yes", "/studio/\nSet-Cookie: a=b", "/audit\x85", "/\x1b[31m"])
def test_login_with_control_characters_in_next_signs_in_and_goes_home(app, users, target):
    client = app.test_client()
    advisor = users["advisor"]
    token = csrf_from(_text(client.get("/login", query_string={"next": target})))
    resp = client.post("/login", query_string={"next": target},
                       data={"email": advisor.email, "password": advisor.password, "csrf_token": token})
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/"
    assert "X-Injected" not in resp.headers and "Set-Cookie: a" not in str(resp.headers)
    assert client.get("/").status_code == 200  # the sign-in is complete, not half-done
    with app.app_context():
        logins = db.session.scalars(sa.select(AuditEntry.action).where(AuditEntry.action.like("%login%"))).all()
    assert len(logins) == 1


def test_non_ascii_next_is_followed_percent_encoded(app, users):
    client = app.test_client()
    advisor = users["advisor"]
    token = csrf_from(_text(client.get("/login")))
    resp = client.post("/login", query_string={"next": "/studio/scripts?q=资产"},
                       data={"email": advisor.email, "password": advisor.password, "csrf_token": token})
    assert resp.headers["Location"] == "/studio/scripts?q=%E8%B5%84%E4%BA%A7"


# --- NUL characters ------------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "url"), [
    ("advisor", "/studio/scripts?q=%00"),
    ("advisor", "/studio/?q=a%00b"),
    ("admin", "/admin/users?role=%00"),
    ("compliance", "/audit?actor=%00"),
    ("compliance", "/compliance/lexicon?q=%00&category=x"),
    ("compliance", "/compliance/queue?%00=1"),
])
def test_nul_in_the_query_string_answers_400(app, users, role, url):
    resp = signed_in(app, users[role]).get(url + "&lang=en")
    assert resp.status_code == 400
    assert "NUL character" in _text(resp)


def test_nul_in_form_fields_is_refused_before_anything_is_stored(app, users, lexicon):
    _package_id, review_id = submit_package(app, users["advisor"], users["compliance"])
    officer = signed_in(app, users["compliance"])
    resp = post_form(officer, f"/compliance/reviews/{review_id}/comments", {"body": "风险\x00提示"},
                     form_page=f"/compliance/reviews/{review_id}")
    assert resp.status_code == 400 and _count(app, ReviewComment) == 0
    advisor = signed_in(app, users["advisor"])
    scripts = _count(app, Script)
    resp = post_form(advisor, "/studio/scripts/new", {"title": "标题", "body": "正常\x00文字"})
    assert resp.status_code == 400 and _count(app, Script) == scripts
    anonymous = app.test_client()
    resp = post_form(anonymous, "/login", {"email": "a\x00@example.com", "password": "x"})
    assert resp.status_code == 400


# --- SRT -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("control", "line"), [("\x00", 3), ("\x1b", 7), ("\x0c", 3)])
def test_srt_with_a_control_character_is_refused_with_its_line_and_nothing_is_saved(
        app, users, lexicon, control, line):
    package_id = package_for(app, users["advisor"].id, users["compliance"].id)
    before = package_state(app, package_id)
    lines = ["1", "00:00:01,000 --> 00:00:02,000", "分散投资", "", "2", "00:00:03,000 --> 00:00:04,000", "长期持有", ""]
    lines[line - 1] = lines[line - 1][:1] + control + lines[line - 1][1:]
    srt = "\n".join(lines).encode()
    client = signed_in(app, users["advisor"])
    data = form_of(app, package_id, subtitles=(io.BytesIO(srt), "clip.srt"))
    resp = post_form(client, f"/studio/packages/{package_id}?lang=en", data, content_type="multipart/form-data",
                     form_page=f"/studio/packages/{package_id}")
    assert resp.status_code == 400
    assert f"control character (such as a NUL byte) on line {line}" in _text(resp)
    assert package_state(app, package_id) == before


def test_parse_srt_names_the_line_of_a_control_character():
    from advisor_studio.video.srt import SubtitleError, parse_srt

    with pytest.raises(SubtitleError) as caught:
        parse_srt("1\r\n00:00:01,000 --> 00:00:02,000\r\nok\r\n\r\n2\r\n00:00:03,000 --> 00:00:04,000\r\nb\x00ad\r\n")
    assert (caught.value.reason_code, caught.value.line_no) == ("control_character", 7)


# --- Range positions -----------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["bytes=" + "9" * 5000 + "-", "bytes=0-" + "9" * 5000, "bytes=-" + "9" * 5000,
                                    "bytes=١-٢"])
def test_absurd_range_positions_are_ignored_and_the_whole_file_is_sent(app, users, lexicon, header):
    package_id = package_for(app, users["advisor"].id, users["compliance"].id, rendition=True)
    with app.app_context():
        from advisor_studio.studio.models import Package

        rendition_id = db.session.get(Package, package_id).rendition_id
    resp = signed_in(app, users["advisor"]).get(f"/studio/renditions/{rendition_id}/video.mp4",
                                                headers={"Range": header})
    assert resp.status_code == 200
    assert "Content-Range" not in resp.headers


def test_multipart_part_with_an_unreadable_name_is_not_a_crash(app, users):
    client = signed_in(app, users["advisor"])
    data = {"bio": "x", "\n": "0", "avatar": (io.BytesIO(b"\x89PNG\r\n\x1a\n"), "upload.bin")}
    resp = post_form(client, "/account/profile", data, form_page="/account/profile")
    assert resp.status_code == 400
