"""The logs of a flow full of secrets and personal data contain none of them."""

from __future__ import annotations

from tests.conftest import login, signed_in
from tests.distribution.test_admin_pages import make_partner
from tests.referrals.convert_helpers import event, post_event
from tests.referrals.test_redirect import BROWSER, make_link

METRICS_TOKEN = "metrics-secret-token-5f1e2d3c4b5a6978"
CUSTOMER_REF = "CUST-PII-8812734"
CLIENT_IP = "203.0.113.77"
PEER_IP = "10.9.8.7"
WRONG_PASSWORD = "Wrong-Secret-Passw0rd!"


def test_logs_of_a_flow_hold_no_password_token_key_customer_ref_or_full_address(app_factory, users, json_logs):
    app = app_factory(METRICS_TOKEN=METRICS_TOKEN, TRUSTED_PROXY_COUNT=1, LOGIN_RATE_LIMIT="2 per minute")
    env = {"REMOTE_ADDR": PEER_IP}
    forwarded = {"X-Forwarded-For": CLIENT_IP}

    # Sign-in: a failure with a wrong password, then a success.
    anon = app.test_client()
    anon.environ_base.update(env)
    assert login(anon, users["advisor"].email, WRONG_PASSWORD).status_code == 401
    # A guesser behind the proxy runs into the per-(email, address) limit, which Flask-Limiter logs.
    guesser = app.test_client()
    guesser.environ_base.update(env)
    statuses = [login(guesser, users["advisor"].email, WRONG_PASSWORD).status_code for _ in range(3)]
    assert statuses[-1] == 429
    advisor = signed_in(app, users["advisor"])
    assert advisor.get("/studio/", headers=forwarded, environ_base=env).status_code == 200

    # The partner API with its key, the conversion webhook with a customer reference, a referral click.
    _partner_id, api_key = make_partner(app)
    api = app.test_client()
    assert api.get("/api/v1/partner/assets", headers={"Authorization": f"Bearer {api_key}", **forwarded},
                   environ_base=env).status_code == 200
    assert api.get("/api/v1/partner/assets", headers={"Authorization": f"Bearer {api_key}x"},
                   environ_base=env).status_code == 401
    code = make_link(app, users["advisor"].id)
    resp = anon.get(f"/r/{code}", headers={"User-Agent": BROWSER, **forwarded}, environ_base=env)
    assert resp.status_code == 302
    click_id = resp.headers["Location"].split("click_id=")[1].split("&")[0]
    resp = post_event(app, anon, event(ref=CUSTOMER_REF, click_id=click_id))
    assert resp.status_code in (200, 201, 202), resp.get_data(as_text=True)
    assert anon.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).status_code == 200
    assert anon.get("/metrics", headers={"Authorization": "Bearer wrong-" + METRICS_TOKEN}).status_code == 401

    text = json_logs.text
    lines = json_logs.requests()
    assert len(lines) >= 8  # the flow was logged...
    assert any(r["user_id"] == users["advisor"].id for r in lines)
    assert any(r["client_net"] == "203.0.113.0/24" for r in lines)
    assert any("exceeded" in r["message"] for r in json_logs.records())  # the limiter did log
    # ... and nothing of this is in it.
    secrets = {
        "password": users["advisor"].password, "wrong password": WRONG_PASSWORD, "API key": api_key,
        "metrics token": METRICS_TOKEN, "customer_ref": CUSTOMER_REF, "client address": CLIENT_IP,
        "peer address": PEER_IP, "webhook secret": app.config["CONVERSION_WEBHOOK_SECRET"],
        "secret key": app.config["SECRET_KEY"], "e-mail": users["advisor"].email,
    }
    leaked = [name for name, value in secrets.items() if value and value in text]
    assert leaked == []


def test_scrubber_masks_secret_shaped_text_that_other_code_might_log():
    from advisor_studio.observability.logs import scrub

    for raw, secret in [
        ("Authorization: Bearer abcdef1234567890", "abcdef1234567890"),
        ("unhandled error on GET /files/eyJhbGciOi.secret-token", "eyJhbGciOi.secret-token"),
        ("login payload password=hunter2hunter2&email=a", "hunter2hunter2"),
        ('{"customer_ref": "CUST-1"}', "CUST-1"),
        ("api_key=ak_live_123456", "ak_live_123456"),
        ("ratelimit exceeded for login:wang@example.com|198.51.100.23", "wang@example.com"),
        ("ratelimit exceeded for login:wang@example.com|198.51.100.23", "198.51.100.23"),
    ]:
        assert secret not in scrub(raw), raw


def test_sentry_events_are_scrubbed_before_they_leave():
    from advisor_studio.observability.sentry import before_send

    event = {
        "request": {"url": "https://studio.example.com/files/tok123secret?sig=abc", "method": "GET",
                    "headers": {"Authorization": "Bearer key-123456789", "Cookie": "session=s3cr3t",
                                "User-Agent": "UA", "X-Forwarded-For": CLIENT_IP},
                    "cookies": {"session": "s3cr3t"}, "data": {"password": "pw-123456", "customer_ref": "C-9"},
                    "query_string": "token=abc", "env": {"REMOTE_ADDR": CLIENT_IP}},
        "user": {"id": 7, "email": "a@example.com", "ip_address": CLIENT_IP},
        "exception": {"values": [{"value": "failed for password=pw-123456 via Bearer key-123456789"}]},
    }
    out = repr(before_send(event, {}))
    for secret in ("key-123456789", "s3cr3t", "pw-123456", "C-9", "token=abc", CLIENT_IP, "a@example.com",
                   "tok123secret", "sig=abc"):
        assert secret not in out, secret
    assert "'id': 7" in out and "'User-Agent': 'UA'" in out
