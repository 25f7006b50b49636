"""Sign-in limits that nobody can use to lock a named user out, and the user is told about attempts."""

from __future__ import annotations

import sqlalchemy as sa

from advisor_studio.accounts import services
from advisor_studio.audit import AuditEntry
from advisor_studio.extensions import db
from tests.conftest import csrf_from

USUAL = "192.0.2.10"


def login_from(client, email: str, password: str, address: str):
    page = client.get("/login", environ_base={"REMOTE_ADDR": address})
    return client.post("/login", environ_base={"REMOTE_ADDR": address},
                       data={"email": email, "password": password,
                             "csrf_token": csrf_from(page.get_data(as_text=True))})


def sign_out(client, address: str = USUAL) -> None:
    page = client.get("/", environ_base={"REMOTE_ADDR": address}).get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_from(page)}, environ_base={"REMOTE_ADDR": address})


def test_attacker_hammering_one_email_from_many_addresses_cannot_stop_the_real_user(app, users):
    victim = users["compliance"]
    real = app.test_client()
    assert login_from(real, victim.email, victim.password, USUAL).status_code == 302
    sign_out(real)

    # 20 guesses from 20 addresses: each address stays under its own (email, address) limit.
    for i in range(20):
        resp = login_from(app.test_client(), victim.email, f"guess-{i}-Plover", f"198.51.100.{i + 1}")
        assert resp.status_code == 401
    # ... and more from a botnet, recorded the same way.
    with app.app_context():
        for i in range(10):
            services.record_failed_login(victim.email, "bad_credentials", f"198.51.{i}.77")
        db.session.commit()

    # A fresh address is now slowed down, even with the right password...
    slowed = login_from(app.test_client(), victim.email, victim.password, "203.0.113.9")
    assert slowed.status_code == 429
    # ... but the user from their usual address gets in and is told what happened.
    resp = login_from(real, victim.email, victim.password, USUAL)
    assert resp.status_code == 302
    page = real.get("/", environ_base={"REMOTE_ADDR": USUAL}).get_data(as_text=True)
    assert "30" in page and "198.51.x.x" in page
    with app.app_context():
        entry = db.session.scalars(sa.select(AuditEntry)
                                   .where(AuditEntry.action == "user.failed_logins_reported")).one()
        assert entry.actor_id == victim.id and entry.details["count"] == 30
        assert entry.details["last_address"] == "198.51.x.x"
        refused = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "user.login_failed")
                                     .order_by(AuditEntry.seq.desc())).first()
        assert refused.details["reason"] == "backoff"
    # The report is given once: the next sign-in has nothing new to tell.
    sign_out(real)
    login_from(real, victim.email, victim.password, USUAL)
    assert "198.51.x.x" not in real.get("/", environ_base={"REMOTE_ADDR": USUAL}).get_data(as_text=True)


def test_limit_is_per_email_and_address_so_one_guesser_does_not_block_the_user_elsewhere(app, users):
    victim = users["admin"]
    attacker = app.test_client()
    statuses = [login_from(attacker, victim.email, f"guess-{i}-Plover", "203.0.113.50").status_code for i in range(6)]
    assert statuses[-1] == 429
    assert login_from(app.test_client(), victim.email, victim.password, USUAL).status_code == 302


def test_back_off_is_bounded_and_the_same_for_unknown_emails(app_ctx, users):
    cfg = app_ctx.config
    for email in (users["mcn"].email, "nobody@example.com"):
        for i in range(cfg["LOGIN_BACKOFF_THRESHOLD"] + 40):
            services.record_failed_login(email, "bad_credentials", f"10.9.{i % 250}.1")
        wait = services.login_backoff_seconds(email, "203.0.113.77")
        assert 0 < wait <= cfg["LOGIN_BACKOFF_MAX_SECONDS"]


def test_a_few_failures_cause_no_back_off(app_ctx, users):
    for i in range(5):
        services.record_failed_login(users["mcn"].email, "bad_credentials", f"10.8.{i}.1")
    assert services.login_backoff_seconds(users["mcn"].email, "203.0.113.77") == 0


def test_stored_addresses_are_truncated_or_hashed(app_ctx, users):
    from advisor_studio.accounts.models import LoginFailure

    services.record_failed_login(users["mcn"].email, "bad_credentials", "198.51.100.23")
    services.record_failed_login(users["mcn"].email, "bad_credentials", "2001:db8:1234:5678::1")
    rows = db.session.scalars(sa.select(LoginFailure).order_by(LoginFailure.id)).all()
    assert [r.address_shown for r in rows] == ["198.51.x.x", "2001:db8:1234::/48"]
    assert all("198.51.100.23" not in r.address_hash and users["mcn"].email not in r.email_hash for r in rows)
