"""X-Forwarded-For is believed only from TRUSTED_PROXY_COUNT proxies: 0 (the default) believes nobody."""

from __future__ import annotations

import sqlalchemy as sa

from advisor_studio.extensions import db
from advisor_studio.referrals import clicks
from advisor_studio.referrals.models import Click
from tests.referrals.test_redirect import BROWSER, make_link


def _click_prefixes(app, client, code: str, forwarded: list[str]) -> list[str]:
    for address in forwarded:
        resp = client.get(f"/r/{code}", headers={"User-Agent": BROWSER, "X-Forwarded-For": address},
                          environ_base={"REMOTE_ADDR": "10.9.8.7"})
        assert resp.status_code == 302
    with app.app_context():
        clicks.drain(app)
        return list(db.session.scalars(sa.select(Click.ip_prefix).order_by(Click.id)))


def test_forwarded_for_is_ignored_without_trusted_proxies(app_factory, users):
    app = app_factory()  # TRUSTED_PROXY_COUNT defaults to 0
    code = make_link(app, users["advisor"].id)
    prefixes = _click_prefixes(app, app.test_client(), code, ["203.0.113.77", "198.51.100.5"])
    assert prefixes == ["10.9.8.0/24", "10.9.8.0/24"]  # the TCP peer, whatever the header says


def test_forwarded_for_is_honoured_behind_one_trusted_proxy(app_factory, users):
    app = app_factory(TRUSTED_PROXY_COUNT=1)
    code = make_link(app, users["advisor"].id)
    # The proxy appends the client it saw; whatever the client put before it is not believed.
    prefixes = _click_prefixes(app, app.test_client(), code, ["203.0.113.77", "6.6.6.6, 198.51.100.5"])
    assert prefixes == ["203.0.113.0/24", "198.51.100.0/24"]


def _failed_logins(client, email: str, forwarded_for: list[str]) -> list[int]:
    return [client.post("/login", data={"email": email, "password": "wrong-password-123"},
                        headers={"X-Forwarded-For": addr}, environ_base={"REMOTE_ADDR": "10.9.8.7"}).status_code
            for addr in forwarded_for]


def test_rotating_forwarded_for_does_not_escape_the_address_limit_without_trusted_proxies(app_factory):
    app = app_factory(WTF_CSRF_ENABLED=False, LOGIN_ADDRESS_RATE_LIMIT="3 per minute")
    statuses = _failed_logins(app.test_client(), "nobody@example.com",
                              [f"203.0.113.{n}" for n in range(1, 6)])
    assert 429 not in statuses[:3] and statuses[3:] == [429, 429]


def test_rate_limits_follow_the_forwarded_client_behind_a_trusted_proxy(app_factory):
    app = app_factory(WTF_CSRF_ENABLED=False, LOGIN_ADDRESS_RATE_LIMIT="3 per minute", TRUSTED_PROXY_COUNT=1)
    client = app.test_client()
    same = _failed_logins(client, "nobody@example.com", ["203.0.113.1"] * 4)
    assert same[3] == 429
    # Another client behind the same proxy is not limited by the first one's failures.
    assert _failed_logins(client, "nobody@example.com", ["198.51.100.9"]) != [429]
