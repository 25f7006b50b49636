"""/metrics: Prometheus text for a token holder or an allowed address, never for the public."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import login, signed_in
from tests.referrals.test_redirect import BROWSER, make_link

TOKEN = "metrics-token-0123456789abcdef"


def scrape(client, token: str = TOKEN) -> dict:
    resp = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.status_code
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(resp.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_are_not_served_when_nothing_is_configured(client):
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong-token-0123456789abcdef", f"Basic {TOKEN}", "Bearer ",
                                    f"Bearer {TOKEN}x", "Bearer " + "x" * 10000])
def test_metrics_need_the_token(app_factory, header):
    client = app_factory(METRICS_TOKEN=TOKEN).test_client()
    resp = client.get("/metrics", headers={"Authorization": header} if header else {})
    assert resp.status_code == 401 and "advisor_studio" not in resp.get_data(as_text=True)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_signed_in_admin_without_the_token_gets_nothing(app_factory, users):
    app = app_factory(METRICS_TOKEN=TOKEN)
    assert signed_in(app, users["admin"]).get("/metrics").status_code == 401


def test_allow_listed_address_reads_metrics_and_others_get_404(app_factory):
    client = app_factory(METRICS_ALLOW_NETS=("10.0.0.0/8",)).test_client()
    inside = client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert inside.status_code == 200 and b"advisor_studio_http_requests_total" in inside.data
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "192.0.2.1"}).status_code == 404
    # Behind no trusted proxy, claiming an inside address in X-Forwarded-For changes nothing.
    spoofed = client.get("/metrics", environ_base={"REMOTE_ADDR": "192.0.2.1"},
                         headers={"X-Forwarded-For": "10.1.2.3"})
    assert spoofed.status_code == 404


def test_bad_metrics_settings_fail_at_start(app_factory, monkeypatch):
    with pytest.raises(RuntimeError, match="METRICS_ALLOW_NETS"):
        app_factory(METRICS_ALLOW_NETS=("10.0.0.0/8", "not-a-network"))
    from config import Config

    monkeypatch.setenv("METRICS_TOKEN", "short")
    with pytest.raises(RuntimeError, match="METRICS_TOKEN"):
        Config()
    monkeypatch.setenv("METRICS_TOKEN", "")
    monkeypatch.setenv("TRUSTED_PROXY_COUNT", "many")
    with pytest.raises(RuntimeError, match="TRUSTED_PROXY_COUNT"):
        Config()


def test_requests_redirects_login_failures_and_audit_entries_are_counted(app_factory, users):
    app = app_factory(METRICS_TOKEN=TOKEN)
    client = app.test_client()
    before = scrape(client)
    assert client.get("/healthz").status_code == 200
    code = make_link(app, users["advisor"].id)
    for _ in range(3):
        assert client.get(f"/r/{code}", headers={"User-Agent": BROWSER}).status_code == 302
    assert client.get("/r/nosuchcode1").status_code == 404
    assert login(client, users["advisor"].email, "not-the-password").status_code == 401
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("advisor_studio_http_requests_total", endpoint="core.healthz", method="GET", status="200") == 1
    assert delta("advisor_studio_http_request_duration_seconds_count", endpoint="core.healthz") == 1
    assert delta("advisor_studio_referral_redirects_total", status="302") == 3
    assert delta("advisor_studio_referral_redirects_total", status="404") == 1
    # The redirect is counted, not timed: its hot path gets one increment.
    assert value(after, "advisor_studio_http_request_duration_seconds_count", endpoint="redirect.follow") == 0
    assert delta("advisor_studio_login_failures_total", reason="bad_credentials") == 1
    assert delta("advisor_studio_audit_entries_written_total", action="user.login_failed") == 1
    assert value(after, "advisor_studio_audit_chain_length") >= 2
    assert value(after, "advisor_studio_render_queue_depth") == 0
    assert value(after, "advisor_studio_conversions") == 0


def test_unknown_paths_do_not_create_label_values(app_factory):
    client = app_factory(METRICS_TOKEN=TOKEN).test_client()
    for n in range(5):
        client.get(f"/random-{n}-path")
    text = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(as_text=True)
    assert "random-" not in text and 'endpoint="unmatched"' in text


def test_rolled_back_audit_entries_are_not_counted(app_factory, users):
    from advisor_studio import audit
    from advisor_studio.extensions import db

    app = app_factory(METRICS_TOKEN=TOKEN)
    client = app.test_client()
    before = scrape(client)
    with app.app_context():
        audit.record("ops.metrics_probe", "probe", 1, actor=None)
        db.session.rollback()
        audit.record("ops.metrics_probe", "probe", 2, actor=None)
        db.session.commit()
    after = scrape(client)
    name = "advisor_studio_audit_entries_written_total"
    assert value(after, name, action="ops.metrics_probe") - value(before, name, action="ops.metrics_probe") == 1


def test_metrics_still_answer_when_the_database_is_down(app_factory, tmp_path):
    app = app_factory(METRICS_TOKEN=TOKEN, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/missing-dir/none.db")
    samples = scrape(app.test_client())
    assert value(samples, "advisor_studio_database_up") == 0
    assert ("advisor_studio_render_queue_depth", ()) not in samples


def test_database_is_reported_up_with_the_state_gauges(app_factory):
    samples = scrape(app_factory(METRICS_TOKEN=TOKEN).test_client())
    assert value(samples, "advisor_studio_database_up") == 1
    assert ("advisor_studio_render_queue_depth", ()) in samples


def test_redirects_are_counted_but_not_logged_line_by_line(app_factory, users, json_logs):
    app = app_factory()
    code = make_link(app, users["advisor"].id)
    client = app.test_client()
    resp = client.get(f"/r/{code}", headers={"User-Agent": BROWSER})
    assert resp.status_code == 302 and resp.headers["X-Request-ID"]
    assert client.get("/healthz").status_code == 200
    assert [r["endpoint"] for r in json_logs.requests()] == ["core.healthz"]
