"""TOTP second factor: enrolment, two-step sign-in, replay, recovery codes, REQUIRE_2FA."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
import sqlalchemy as sa

from advisor_studio.accounts import totp
from advisor_studio.accounts.models import RecoveryCode, User
from advisor_studio.audit import AuditEntry
from advisor_studio.extensions import db
from tests.conftest import csrf_from, login, post_form, signed_in

SECRET_RE = re.compile(r'data-testid="totp-secret">([A-Z2-7]+)<')
CODES_RE = re.compile(r"<li>([a-z2-9]{5}-[a-z2-9]{5})</li>")


def enrol(client, clock) -> tuple[str, list[str]]:
    """Enrol the signed-in user through the pages; return the secret and the recovery codes."""
    page = client.get("/account/2fa").get_data(as_text=True)
    resp = client.post("/account/2fa/start", data={"csrf_token": csrf_from(page)})
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "<svg" in html and 'data-testid="totp-qr"' in html
    secret = SECRET_RE.search(html).group(1)
    code = pyotp.TOTP(secret).at(clock.now)
    resp = client.post("/account/2fa/confirm", data={"code": code, "csrf_token": csrf_from(html)})
    assert resp.status_code == 200
    codes = CODES_RE.findall(resp.get_data(as_text=True))
    assert len(codes) == 10
    return secret, codes


def second_step(client, code: str):
    page = client.get("/login/verify")
    assert page.status_code == 200
    return client.post("/login/verify", data={"code": code, "csrf_token": csrf_from(page.get_data(as_text=True))})


def test_enrolment_with_a_real_code_turns_the_factor_on_and_stores_secret_encrypted(app, users, clock):
    client = signed_in(app, users["advisor"])
    secret, codes = enrol(client, clock)
    with app.app_context():
        user = db.session.get(User, users["advisor"].id)
        assert user.totp_enabled
        assert secret not in user.totp_secret_enc  # an insider reading the table does not see it
        stored = db.session.scalars(sa.select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id)).all()
        assert len(stored) == 10 and not set(codes) & set(stored)
        assert db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "user.totp_enabled")) is not None
    # The codes page was the only place they appeared.
    assert not CODES_RE.findall(client.get("/account/2fa").get_data(as_text=True))


def test_enrolment_with_a_wrong_code_is_refused_and_the_factor_stays_off(app, users, clock):
    client = signed_in(app, users["advisor"])
    page = client.get("/account/2fa").get_data(as_text=True)
    html = client.post("/account/2fa/start", data={"csrf_token": csrf_from(page)}).get_data(as_text=True)
    resp = client.post("/account/2fa/confirm", data={"code": "000000", "csrf_token": csrf_from(html)})
    assert resp.status_code == 400
    with app.app_context():
        assert not db.session.get(User, users["advisor"].id).totp_enabled
    # Sign-in stays one step while enrolment is unconfirmed.
    assert login(app.test_client(), users["advisor"].email, users["advisor"].password).headers["Location"] == "/"


def test_sign_in_takes_two_steps_once_enrolled_and_half_signed_in_grants_nothing(app, users, clock):
    secret, _codes = enrol(signed_in(app, users["advisor"]), clock)
    client = app.test_client()
    resp = login(client, users["advisor"].email, users["advisor"].password)
    assert resp.status_code == 302 and resp.headers["Location"] == "/login/verify"
    assert client.get("/").status_code == 302  # the password alone grants nothing
    assert client.get("/studio/scripts").status_code == 302
    clock.advance()
    resp = second_step(client, pyotp.TOTP(secret).at(clock.now))
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    assert client.get("/").status_code == 200


def test_wrong_code_at_second_step_is_refused(app, users, clock):
    enrol(signed_in(app, users["advisor"]), clock)
    client = app.test_client()
    login(client, users["advisor"].email, users["advisor"].password)
    assert second_step(client, "123456").status_code == 401
    assert client.get("/").status_code == 302


def test_half_signed_in_state_expires(app, users, clock):
    secret, _codes = enrol(signed_in(app, users["advisor"]), clock)
    client = app.test_client()
    login(client, users["advisor"].email, users["advisor"].password)
    with client.session_transaction() as sess:
        sess["login_pending"] = {**sess["login_pending"], "at": time.time() - 6 * 60}
    clock.advance()
    page = client.get("/login/verify")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    assert client.get("/").status_code == 302


def test_replayed_code_is_refused_within_its_time_step(app, users, clock):
    secret, _codes = enrol(signed_in(app, users["advisor"]), clock)
    clock.advance()
    code = pyotp.TOTP(secret).at(clock.now)
    first = app.test_client()
    login(first, users["advisor"].email, users["advisor"].password)
    assert second_step(first, code).status_code == 302
    # An onlooker who saw the code and the password tries it a few seconds later.
    clock.advance(5)
    second = app.test_client()
    login(second, users["advisor"].email, users["advisor"].password)
    assert second_step(second, code).status_code == 401
    assert second.get("/").status_code == 302


def test_recovery_code_signs_in_once_only(app, users, clock):
    _secret, codes = enrol(signed_in(app, users["advisor"]), clock)
    first = app.test_client()
    login(first, users["advisor"].email, users["advisor"].password)
    assert second_step(first, codes[3].upper()).status_code == 302
    assert first.get("/").status_code == 200
    again = app.test_client()
    login(again, users["advisor"].email, users["advisor"].password)
    assert second_step(again, codes[3]).status_code == 401
    with app.app_context():
        used = db.session.scalars(sa.select(RecoveryCode).where(RecoveryCode.used_at.is_not(None))).all()
        assert len(used) == 1


def test_disabling_needs_password_and_code(app, users, clock):
    client = signed_in(app, users["advisor"])
    secret, _codes = enrol(client, clock)
    clock.advance()
    page = client.get("/account/2fa").get_data(as_text=True)
    client.post("/account/2fa/disable", data={"password": "wrong-password-x", "code": pyotp.TOTP(secret).at(clock.now),
                                              "csrf_token": csrf_from(page)})
    with app.app_context():
        assert db.session.get(User, users["advisor"].id).totp_enabled
    clock.advance()
    client.post("/account/2fa/disable", data={"password": users["advisor"].password,
                                              "code": pyotp.TOTP(secret).at(clock.now), "csrf_token": csrf_from(page)})
    with app.app_context():
        assert not db.session.get(User, users["advisor"].id).totp_enabled
    assert login(app.test_client(), users["advisor"].email, users["advisor"].password).headers["Location"] == "/"


@pytest.mark.parametrize("role", ["compliance", "admin"])
def test_require_2fa_sends_compliance_and_admin_to_enrolment_and_blocks_everything_else(app_factory, users, role,
                                                                                      clock):
    app = app_factory(REQUIRE_2FA=True)
    client = app.test_client()
    resp = login(client, users[role].email, users[role].password)
    assert resp.status_code == 302
    for path in ["/", "/audit", "/account/password"]:
        resp = client.get(path)
        assert resp.status_code == 302 and resp.headers["Location"] == "/account/2fa", path
    enrol(client, clock)
    assert client.get("/").status_code == 200


def test_require_2fa_leaves_advisors_with_password_sign_in(app_factory, users):
    app = app_factory(REQUIRE_2FA=True)
    client = signed_in(app, users["advisor"])
    assert client.get("/").status_code == 200
    assert client.get("/studio/scripts").status_code == 200


def test_required_factor_cannot_be_turned_off(app_factory, users, clock):
    app = app_factory(REQUIRE_2FA=True)
    client = app.test_client()
    login(client, users["compliance"].email, users["compliance"].password)
    secret, _codes = enrol(client, clock)
    clock.advance()
    page = client.get("/account/2fa").get_data(as_text=True)
    client.post("/account/2fa/disable", data={"password": users["compliance"].password,
                                              "code": pyotp.TOTP(secret).at(clock.now), "csrf_token": csrf_from(page)})
    with app.app_context():
        assert db.session.get(User, users["compliance"].id).totp_enabled


def test_require_2fa_defaults_follow_the_contract(monkeypatch):
    from config import Config, ProductionConfig

    monkeypatch.delenv("REQUIRE_2FA", raising=False)
    assert Config().REQUIRE_2FA is False
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://db/advisor")
    monkeypatch.setenv("CONVERSION_WEBHOOK_SECRET", "y" * 40)
    monkeypatch.setenv("AUDIT_SIGNING_KEY", "MC4CAQAwBQYDK2VwBCIEIA" + "A" * 22)
    assert ProductionConfig().REQUIRE_2FA is True


def test_secret_cannot_be_read_with_another_key():
    secret = totp.new_secret()
    token = totp.encrypt_secret(secret, "key-one")
    assert totp.decrypt_secret(token, "key-one") == secret
    assert totp.decrypt_secret(token, "key-two") is None


def test_post_form_helper_still_signs_in_advisors_in_one_step(app, users):
    resp = post_form(app.test_client(), "/login", {"email": users["mcn"].email, "password": users["mcn"].password})
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
