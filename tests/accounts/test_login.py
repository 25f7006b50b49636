"""Sign-in behaviour: credentials, disabled accounts, CSRF, rate limits, redirects, cookies."""

from __future__ import annotations

import pytest

from advisor_studio.accounts import services
from advisor_studio.accounts.models import User
from advisor_studio.audit import AuditEntry
from advisor_studio.extensions import db
from tests.conftest import csrf_from, login, post_form, signed_in


def test_login_with_correct_password_lands_on_dashboard(client, users):
    resp = login(client, users["advisor"].email, users["advisor"].password)
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    assert users["advisor"].name in page.get_data(as_text=True)


@pytest.mark.parametrize("case", ["unknown_email", "wrong_password", "disabled"])
def test_failed_logins_share_one_message(app, client, users, case):
    user = users["mcn"]
    email, password = user.email, user.password
    if case == "unknown_email":
        email = "nobody@example.com"
    elif case == "wrong_password":
        password = "not-the-password"
    else:
        with app.app_context():
            services.set_active(db.session.get(User, user.id), False, actor="test", reason="left the firm")
            db.session.commit()
    resp = login(client, email, password)
    assert resp.status_code == 401
    body = resp.get_data(as_text=True)
    assert "Incorrect email or password, or the account is disabled." in body or "邮箱或密码不正确" in body
    assert client.get("/").status_code == 302  # still signed out


def test_failed_login_is_audited_without_the_password(app, client, users):
    login(client, users["admin"].email, "guess-number-one")
    with app.app_context():
        entry = db.session.scalars(db.select(AuditEntry).where(AuditEntry.action == "user.login_failed")).one()
        assert entry.details["email"] == users["admin"].email
        assert "guess-number-one" not in str(entry.details)


def test_login_without_csrf_token_is_refused(client, users):
    resp = client.post("/login", data={"email": users["advisor"].email, "password": users["advisor"].password})
    assert resp.status_code == 400
    assert client.get("/").status_code == 302


def test_login_is_rate_limited_per_client(client, users):
    statuses = [login(client, users["admin"].email, f"wrong-{i}-password").status_code for i in range(6)]
    assert statuses[:5] == [401] * 5
    assert statuses[5] == 429
    # Even the right password is refused while the limit holds.
    assert login(client, users["admin"].email, users["admin"].password).status_code == 429


@pytest.mark.parametrize("target,expected", [
    ("/admin/users", "/admin/users"),
    ("https://evil.example.com/", "/"),
    ("//evil.example.com/", "/"),
    ("/\\evil.example.com", "/"),
])
def test_next_parameter_only_follows_local_paths(client, users, target, expected):
    page = client.get("/login", query_string={"next": target})
    token = csrf_from(page.get_data(as_text=True))
    resp = client.post("/login", query_string={"next": target},
                       data={"email": users["admin"].email, "password": users["admin"].password,
                             "csrf_token": token})
    assert resp.status_code == 302
    assert resp.headers["Location"] == expected


def test_anonymous_visitor_is_sent_to_login_with_next(client):
    resp = client.get("/admin/users")
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/login?next=/admin/users")


def test_session_cookie_is_httponly_and_samesite(client, users):
    resp = login(client, users["advisor"].email, users["advisor"].password)
    cookies = [c for c in resp.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert cookies and "HttpOnly" in cookies[0] and "SameSite=Lax" in cookies[0]


def test_production_config_sets_secure_cookies_and_requires_secrets(monkeypatch):
    from config import ProductionConfig

    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        ProductionConfig()
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://db/advisor")
    monkeypatch.setenv("CONVERSION_WEBHOOK_SECRET", "y" * 40)
    monkeypatch.setenv("AUDIT_SIGNING_KEY", "MC4CAQAwBQYDK2VwBCIEIA" + "A" * 22)
    cfg = ProductionConfig()
    assert cfg.SESSION_COOKIE_SECURE is True and cfg.REMEMBER_COOKIE_SECURE is True


def test_security_headers_on_every_page(client):
    resp = client.get("/login")
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    csp = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp


def test_deactivation_ends_existing_sessions(app, users):
    advisor_client = signed_in(app, users["advisor"])
    assert advisor_client.get("/").status_code == 200
    with app.app_context():
        services.set_active(db.session.get(User, users["advisor"].id), False, actor="test", reason="suspended")
        db.session.commit()
    resp = advisor_client.get("/")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login")


def test_password_change_ends_other_sessions_but_keeps_this_one(app, users):
    first, second = app.test_client(), app.test_client()
    user = users["compliance"]
    login(first, user.email, user.password)
    login(second, user.email, user.password)
    resp = post_form(first, "/account/password",
                     {"current_password": user.password, "new_password": "a-brand-new-password"})
    assert resp.status_code == 302
    assert first.get("/").status_code == 200
    assert second.get("/").status_code == 302


def test_logout_requires_post_with_csrf(client, users):
    login(client, users["mcn"].email, users["mcn"].password)
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    resp = post_form(client, "/logout", {}, form_page="/")
    assert resp.status_code == 302
    assert client.get("/").status_code == 302
