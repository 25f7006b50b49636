"""Password policy, admin password reset with a forced change, remember-me length."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from advisor_studio.accounts import services
from advisor_studio.accounts.models import User
from advisor_studio.audit import AuditEntry
from advisor_studio.errors import ValidationError
from advisor_studio.extensions import db
from tests.conftest import csrf_from, login, post_form, signed_in
from tests.factories import PASSWORD

TEMP_RE = re.compile(r'data-testid="temporary-password">([^<]+)<')


@pytest.mark.parametrize("password", ["password1234", "qwertyuiop123", "1234567890", "iloveyou2024"])
def test_common_passwords_are_refused_with_a_clear_message(app_ctx, password):
    with pytest.raises(ValidationError) as refused:
        services.create_user(email="weak@example.com", password=password, roles=["mcn"], name="Weak")
    assert refused.value.code == "password_guessable"
    assert "太常见" in refused.value.message  # zh_CN is the default locale outside a request


def test_password_containing_email_name_or_person_name_is_refused(app_ctx):
    with pytest.raises(ValidationError) as by_email:
        services.create_user(email="zhangwei@example.com", password="Zhangwei-Quartz-Lamp-9", roles=["mcn"],
                             name="Someone")
    assert by_email.value.code == "password_personal"
    with pytest.raises(ValidationError) as by_name:
        services.create_user(email="ops7@example.com", password="Quartz-Harbour-Liwei-9", roles=["mcn"],
                             name="Li Wei")
    assert by_name.value.code == "password_personal"


def test_test_factories_password_passes_the_policy(app_ctx):
    user = services.create_user(email="fine@example.com", password=PASSWORD, roles=["mcn"], name="Fine")
    assert user.check_password(PASSWORD)


def test_new_password_must_differ_from_the_current_one(app, users):
    client = signed_in(app, users["advisor"])
    resp = post_form(client, "/account/password", {"current_password": users["advisor"].password,
                                                   "new_password": users["advisor"].password})
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    assert "must differ" in body or "不能与当前密码相同" in body


def test_weak_new_password_is_refused_on_the_password_page(app, users):
    client = signed_in(app, users["advisor"])
    resp = post_form(client, "/account/password", {"current_password": users["advisor"].password,
                                                   "new_password": "password1234"})
    body = resp.get_data(as_text=True)
    assert "too common" in body or "太常见" in body
    with app.app_context():
        assert db.session.get(User, users["advisor"].id).check_password(users["advisor"].password)


def test_admin_reset_with_generated_password_forces_a_change_at_next_sign_in(app, users):
    target = users["mcn"]
    old_session = signed_in(app, target)
    admin = signed_in(app, users["admin"])
    resp = post_form(admin, f"/admin/users/{target.id}/reset-password", {"confirm": "y"},
                     form_page=f"/admin/users/{target.id}")
    assert resp.status_code == 200
    temporary = TEMP_RE.search(resp.get_data(as_text=True)).group(1).strip()
    assert old_session.get("/").status_code == 302  # every session of the user ended
    with app.app_context():
        user = db.session.get(User, target.id)
        assert user.must_change_password and user.check_password(temporary)
        entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "user.password_reset")).one()
        assert entry.actor_id == users["admin"].id and temporary not in str(entry.details)

    client = app.test_client()
    assert login(client, target.email, target.password).status_code == 401  # the old password is gone
    assert login(client, target.email, temporary).status_code == 302
    for path in ["/", "/admin/users", "/account/2fa"]:
        resp = client.get(path)
        assert resp.status_code == 302 and resp.headers["Location"] == "/account/password", path
    resp = post_form(client, "/account/password", {"current_password": temporary,
                                                   "new_password": "Violet-Canyon-Drum-42"})
    assert resp.status_code == 302
    assert client.get("/").status_code == 200
    with app.app_context():
        assert not db.session.get(User, target.id).must_change_password


def test_admin_reset_with_a_chosen_temporary_password(app, users):
    target = users["advisor2"]
    admin = signed_in(app, users["admin"])
    resp = post_form(admin, f"/admin/users/{target.id}/reset-password",
                     {"confirm": "y", "password": "Maple-Tundra-Oboe-17"}, form_page=f"/admin/users/{target.id}")
    assert resp.status_code == 302
    client = app.test_client()
    assert login(client, target.email, "Maple-Tundra-Oboe-17").status_code == 302
    assert client.get("/studio/scripts").headers["Location"] == "/account/password"


def test_admin_reset_refuses_a_weak_temporary_password(app, users):
    target = users["advisor2"]
    admin = signed_in(app, users["admin"])
    resp = post_form(admin, f"/admin/users/{target.id}/reset-password",
                     {"confirm": "y", "password": "password1234"}, form_page=f"/admin/users/{target.id}")
    assert resp.status_code == 400
    with app.app_context():
        assert not db.session.get(User, target.id).must_change_password


def test_remember_me_cookie_is_capped_at_thirty_days(monkeypatch):
    from config import Config

    monkeypatch.setenv("REMEMBER_DAYS", "365")
    assert Config().REMEMBER_COOKIE_DURATION.days == 30
    monkeypatch.delenv("REMEMBER_DAYS")
    assert Config().REMEMBER_COOKIE_DURATION.days == 14


def test_remember_me_cookie_lasts_remember_days(app, users):
    client = app.test_client()
    page = client.get("/login")
    resp = client.post("/login", data={"email": users["advisor"].email, "password": users["advisor"].password,
                                       "remember": "y", "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert any(c.startswith("remember_token=") for c in resp.headers.getlist("Set-Cookie"))
    with client.session_transaction() as sess:
        assert sess["_remember_seconds"] == 14 * 24 * 3600  # what Flask-Login uses for the cookie's expiry
