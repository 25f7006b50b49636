"""Admins acting at the same moment on one key, one partner or one mcn user: one wins, nothing doubles.

Real parallel requests (one signed-in client per thread, released by a barrier), on SQLite and on the
PostgreSQL of DATABASE_URL, as in tests/compliance/test_races.py.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from advisor_studio import audit
from advisor_studio.accounts.models import User
from advisor_studio.audit import AuditEntry
from advisor_studio.distribution import services
from advisor_studio.distribution.models import Partner, PartnerApiKey
from advisor_studio.extensions import db
from tests.compliance.test_races import race
from tests.conftest import csrf_from, record_of, signed_in
from tests.factories import make_user

ROUNDS = 3
ADMINS = 3


@pytest.fixture
def app(app_factory):
    return app_factory(LOGIN_RATE_LIMIT="1000 per minute")


@pytest.fixture
def admins(app):
    with app.app_context():
        made = [record_of(make_user("admin")) for _ in range(ADMINS)]
        db.session.commit()
    return [signed_in(app, record) for record in made]  # outside the app context: each client its own g


def _count(action: str) -> int:
    return db.session.scalar(sa.select(sa.func.count(AuditEntry.id)).where(AuditEntry.action == action))


def _poster(client, url: str, data: dict, page: str):
    token = csrf_from(client.get(page).get_data(as_text=True))
    return lambda: client.post(url, data={**data, "csrf_token": token}).status_code


def test_admins_revoking_one_key_at_once_revoke_it_once(app, admins):
    for round_ in range(ROUNDS):
        with app.app_context():
            partner, key = services.create_partner(f"机构{round_}", [], actor="test")
            db.session.commit()
            partner_id = partner.id
            key_id = db.session.scalar(sa.select(PartnerApiKey.id).where(PartnerApiKey.partner_id == partner_id))
        page = f"/admin/partners/{partner_id}"
        statuses = race(*[_poster(c, f"{page}/keys/{key_id}/revoke", {"reason": f"r{i}", "confirm": "y"}, page)
                          for i, c in enumerate(admins)])
        assert statuses == [302] * ADMINS
        with app.app_context():
            assert _count("partner.api_key_revoked") == round_ + 1
            assert services.partner_for_api_key(key) is None
    with app.app_context():
        assert audit.verify().ok


def test_admins_deactivating_one_partner_at_once_deactivate_it_once(app, admins):
    for round_ in range(ROUNDS):
        with app.app_context():
            partner, _key = services.create_partner(f"机构{round_}", [], actor="test")
            db.session.commit()
            partner_id = partner.id
        page = f"/admin/partners/{partner_id}"
        statuses = race(*[_poster(c, f"{page}/deactivate", {"reason": "合同终止", "confirm": "y"}, page)
                          for c in admins])
        assert statuses == [302] * ADMINS
        with app.app_context():
            assert _count("partner.deactivated") == round_ + 1
            assert not db.session.get(Partner, partner_id).active


def test_admins_linking_one_mcn_user_to_two_partners_at_once_link_it_to_one(app, admins):
    for round_ in range(ROUNDS):
        with app.app_context():
            first, _k1 = services.create_partner(f"甲{round_}", [], actor="test")
            second, _k2 = services.create_partner(f"乙{round_}", [], actor="test")
            member = make_user("mcn")
            db.session.commit()
            ids, member_id = (first.id, second.id), member.id
        posters = [_poster(admins[i], f"/admin/partners/{pid}/members", {"user_id": member_id},
                           f"/admin/partners/{pid}") for i, pid in enumerate(ids)]
        statuses = race(*posters)
        assert sorted(statuses) == [302, 409]
        with app.app_context():
            assert db.session.get(User, member_id).partner_id == ids[statuses.index(302)]
            assert _count("user.partner_changed") == round_ + 1


def test_admins_adding_one_channel_at_once_add_it_once(app, admins):
    with app.app_context():
        partner, _key = services.create_partner("蓝海MCN", [], actor="test")
        db.session.commit()
        partner_id = partner.id
    for round_ in range(ROUNDS):
        data = {"partner_id": partner_id, "platform": "douyin", "handle": f"@same{round_}"}
        statuses = race(*[_poster(c, "/admin/channels/new", data, "/admin/channels/new") for c in admins])
        assert sorted(statuses) == [302] + [409] * (ADMINS - 1)
        with app.app_context():
            assert _count("channel.created") == round_ + 1
