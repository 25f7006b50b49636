"""Every response carries a request id: the caller's when it is sane, a fresh one otherwise."""

from __future__ import annotations

import re

import pytest

HEX32 = re.compile(r"[0-9a-f]{32}")


def test_request_id_is_generated_and_returned_and_logged(client, json_logs):
    resp = client.get("/healthz")
    rid = resp.headers["X-Request-ID"]
    assert HEX32.fullmatch(rid)
    line = [r for r in json_logs.requests() if r["endpoint"] == "core.healthz"][-1]
    assert line["request_id"] == rid
    assert line["status"] == resp.status_code and line["method"] == "GET" and line["rule"] == "/healthz"
    assert line["level"] == "INFO" and line["time"] and line["latency_ms"] >= 0
    assert client.get("/healthz").headers["X-Request-ID"] != rid  # one per request


def test_sane_request_id_from_the_proxy_is_kept(client, json_logs):
    resp = client.get("/healthz", headers={"X-Request-ID": "nginx-5f2c1a9e-7b3d-4c2e"})
    assert resp.headers["X-Request-ID"] == "nginx-5f2c1a9e-7b3d-4c2e"
    assert json_logs.requests()[-1]["request_id"] == "nginx-5f2c1a9e-7b3d-4c2e"


@pytest.mark.parametrize("forged", [
    "a" * 10 * 1024,                      # 10 KB
    "abcdefgh\x00\x1b[31mred",            # control characters, terminal escapes
    'abcdefgh" "level": "CRITICAL',       # JSON/log injection attempt
    "short",                              # too short to be an id
    "abcdefgh ijklmnop",                  # spaces
    "请求编号一二三四五六七八",              # not ASCII
])
def test_forged_request_id_is_replaced(client, json_logs, forged):
    resp = client.get("/healthz", headers={"X-Request-ID": forged})
    rid = resp.headers["X-Request-ID"]
    assert HEX32.fullmatch(rid) and rid != forged
    assert json_logs.requests()[-1]["request_id"] == rid
    assert forged not in json_logs.text


def test_request_id_with_newlines_is_replaced():
    # The test client (rightly) refuses to send a header with a newline, so the sanitizer is checked
    # directly; the server path is the same accept_or_new call.
    from advisor_studio.observability.requestid import accept_or_new

    forged = "abcdefgh\r\nX-Injected: 1"
    assert accept_or_new(forged) != forged and HEX32.fullmatch(accept_or_new(forged))
    assert accept_or_new("abcdefgh\n") != "abcdefgh\n"


def test_refused_and_missing_requests_are_traced_too(client, json_logs):
    assert client.get("/no-such-page").status_code == 404
    assert client.get("/admin/users").status_code == 302  # not signed in
    lines = json_logs.requests()
    assert [(r["rule"], r["status"]) for r in lines[-2:]] == [(None, 404), ("/admin/users", 302)]
    assert all(HEX32.fullmatch(r["request_id"]) for r in lines[-2:])


def test_every_log_line_is_one_json_object_with_the_request_id(app, client, json_logs):
    @app.get("/__log_probe")
    def __log_probe():  # registered after create_app: undeclared, so refused with 403 -- and still logged
        return "x"

    resp = client.get("/__log_probe", headers={"X-Request-ID": "probe-req-0001"})
    assert resp.status_code == 403
    probe = [r for r in json_logs.records() if r["request_id"] == "probe-req-0001"]
    # The access rule's error line and the request line, both with the id.
    assert any("no declared access rule" in r["message"] for r in probe)
    assert any(r["logger"] == "advisor_studio.access" for r in probe)


def test_request_line_names_the_signed_in_user_and_survives_a_self_referencing_login(app, users, json_logs):
    from flask_login import current_user, login_user

    from advisor_studio.access import login_required
    from tests.conftest import signed_in

    @app.get("/__relogin_probe")
    @login_required
    def __relogin_probe():
        # What a view does when it hands the current_user proxy itself back to login_user().
        login_user(current_user)
        return "ok"

    client = signed_in(app, users["advisor"])
    assert client.get("/studio/").status_code == 200
    assert json_logs.requests()[-1]["user_id"] == users["advisor"].id
    resp = client.get("/__relogin_probe")
    assert resp.status_code == 200
    assert json_logs.requests()[-1]["rule"] == "/__relogin_probe"
