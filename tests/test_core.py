"""Health check, error pages, languages, CLI commands of the contract."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT, post_form, signed_in, subprocess_env


def run_flask(app, *args, input_text: str | None = None) -> subprocess.CompletedProcess:
    env = subprocess_env(app)
    return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, input=input_text)


def test_healthz_reports_db_broker_and_storage(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json == {"status": "ok", "db": "ok", "broker": "ok", "storage": "ok", "integrity": "ok"}


def test_healthz_reports_broker_down(app_factory, monkeypatch):
    # Celery lets the CELERY_BROKER_URL environment variable win over config, so set both.
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    app = app_factory(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
    resp = app.test_client().get("/healthz")
    assert resp.status_code == 200
    assert resp.json["broker"] == "down" and resp.json["db"] == "ok"


def test_unknown_page_renders_friendly_404(client, users):
    resp = client.get("/no/such/page")
    assert resp.status_code == 404
    body = resp.get_data(as_text=True)
    assert 'data-testid="error-page"' in body and "Traceback" not in body


def test_api_errors_are_json(client):
    resp = client.get("/api/v1/nothing-here")
    assert resp.status_code == 404
    assert resp.json["error"]["code"] == "404"


def test_oversized_upload_gets_413_page(app_factory, users):
    app = app_factory(MAX_CONTENT_LENGTH=1024)
    client = signed_in(app, users["admin"])
    resp = client.post("/admin/users/new", data={"bio": "x" * 4096})
    assert resp.status_code == 413
    assert 'data-testid="error-page"' in resp.get_data(as_text=True)


def test_server_error_is_friendly_and_rolls_back(app_factory):
    app = app_factory()
    from advisor_studio.access import public

    @app.route("/boom")
    @public
    def boom():
        raise RuntimeError("kaboom")

    resp = app.test_client().get("/boom")
    assert resp.status_code == 500
    body = resp.get_data(as_text=True)
    assert "kaboom" not in body and 'data-testid="error-page"' in body


def test_default_language_is_chinese_and_english_is_selectable(client):
    body = client.get("/login").get_data(as_text=True)
    assert '<html lang="zh-CN">' in body and "登录" in body
    resp = post_form(client, "/language/en", {"next": "/login"}, form_page="/login")
    assert resp.status_code == 302 and resp.headers["Location"] == "/login"
    body = client.get("/login").get_data(as_text=True)
    assert '<html lang="en">' in body and "Sign in" in body


def test_language_switch_ignores_foreign_next(client):
    resp = post_form(client, "/language/en", {"next": "https://evil.example.com"}, form_page="/login")
    assert resp.headers["Location"] == "/"


# --- CLI ----------------------------------------------------------------------------------------


def test_cli_creates_advisor_and_refuses_bad_input(app):
    ok = run_flask(app, "users", "create", "--email", "cli@example.com", "--password", "long-enough-pw",
                   "--role", "advisor", "--role", "compliance", "--name", "命令行", "--sac-number", "S0000000000042")
    assert ok.returncode == 0, ok.stderr
    assert "cli@example.com" in ok.stdout and "advisor,compliance" in ok.stdout
    cases = [
        (["--role", "boss"], "boss"),
        (["--role", "advisor"], "sac_number:"),
        (["--role", "advisor", "--sac-number", "S42"], "sac_number:"),
        (["--role", "mcn", "--email", "cli@example.com"], "email:"),
    ]
    for extra, message in cases:
        args = ["users", "create", "--email", "other@example.com", "--password", "long-enough-pw", *extra]
        if "--email" in extra:
            args = ["users", "create", "--password", "long-enough-pw", *extra]
        bad = run_flask(app, *args)
        assert bad.returncode != 0
        assert message in bad.stderr, bad.stderr
    listed = run_flask(app, "audit", "verify")
    assert listed.returncode == 0 and "1 entries" in listed.stdout  # only the one successful creation


def test_seed_demo_is_idempotent_and_prints_logins(app):
    import sqlalchemy as sa

    from advisor_studio.audit import AuditEntry
    from advisor_studio.distribution import services as distribution
    from advisor_studio.extensions import db
    from advisor_studio.studio.models import Package
    from advisor_studio.video.models import Rendition
    from tests.conftest import login

    first = run_flask(app, "seed-demo")
    assert first.returncode == 0, first.stderr
    lines = [line.split() for line in first.stdout.splitlines() if line.startswith("login ")]
    assert sorted(parts[1] for parts in lines) == ["admin", "advisor", "compliance", "mcn"]
    keys = [line.split()[1] for line in first.stdout.splitlines() if line.startswith("partner-api-key ")]
    assert len(keys) == 1
    with app.app_context():
        package = db.session.scalars(sa.select(Package)).one()
        assert package.status == "approved" and package.channels
        rendition = db.session.get(Rendition, package.rendition_id)
        assert rendition.status == "ready" and (rendition.width, rendition.height) == (1080, 1920)
        partner = distribution.partner_for_api_key(keys[0])
        assert partner is not None
        # The demo partner's assets are there for its mcn user to see in the portal and the API.
        from advisor_studio.accounts.models import User
        from advisor_studio.distribution.models import Assignment

        mcn = db.session.scalar(sa.select(User).where(User.email == next(p[2] for p in lines if p[1] == "mcn")))
        assert mcn.partner_id == partner.id
        assert db.session.scalars(sa.select(Assignment.status).where(Assignment.partner_id == partner.id)).all()
        entries = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))
    second = run_flask(app, "seed-demo")
    assert second.returncode == 0, second.stderr
    assert [line for line in second.stdout.splitlines() if line.startswith("login ")] == [
        " ".join(parts) for parts in lines
    ]
    new_key = [line.split()[1] for line in second.stdout.splitlines() if line.startswith("partner-api-key ")][0]
    assert new_key != keys[0]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Package)) == 1  # nothing duplicated
        assert distribution.partner_for_api_key(new_key) is not None
    verify = run_flask(app, "audit", "verify")
    assert verify.returncode == 0
    assert f"{entries + 1} entries" in verify.stdout  # the second run only issued a new key
    for _, role, email, password in lines:
        assert login(app.test_client(), email, password).status_code == 302, role


@pytest.mark.parametrize("code", ["404", "400"])
def test_error_pages_never_show_stack_traces(client, code):
    resp = client.get(f"/definitely-missing-{code}")
    assert "Traceback" not in resp.get_data(as_text=True)


def test_huge_form_body_gets_413_but_video_upload_route_allows_large_bodies(app_factory, users):
    app = app_factory(FORM_MAX_MB=1)
    client = signed_in(app, users["admin"])
    resp = client.post("/admin/users/new", data={"bio": "x" * (2 * 1024 * 1024)})
    assert resp.status_code == 413
    assert app.view_functions["video.upload"].large_upload is True
