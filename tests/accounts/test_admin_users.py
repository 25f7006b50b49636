"""Admin user management: list, create, edit, deactivate, with clear errors for bad input."""

from __future__ import annotations

import sqlalchemy as sa

from advisor_studio.accounts.models import AdvisorProfile, User
from advisor_studio.audit import AuditEntry
from advisor_studio.extensions import db
from tests.conftest import csrf_from, login, signed_in
from tests.factories import make_channel


def _post(client, path, data, form_page=None):
    token = csrf_from(client.get(form_page or path).get_data(as_text=True))
    return client.post(path, data={**data, "csrf_token": token})


def _count_users(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(User))


def test_admin_creates_advisor_with_profile_and_audit_entry(app, users):
    admin = signed_in(app, users["admin"])
    resp = _post(admin, "/admin/users/new", {
        "email": "New.Advisor@Example.com", "name": "张三", "password": "a-good-password",
        "roles": ["advisor"], "sac_number": "S1234567890123",
    })
    assert resp.status_code == 302
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == "new.advisor@example.com"))
        assert user is not None and user.roles == {"advisor"}
        assert user.advisor_profile.sac_number == "S1234567890123"
        assert user.password_hash.startswith("$argon2id$")
        entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "user.created")
                                   .order_by(AuditEntry.seq.desc())).first()
        assert entry.object_id == str(user.id) and entry.actor_id == users["admin"].id
    new_client = app.test_client()
    assert login(new_client, "new.advisor@example.com", "a-good-password").status_code == 302


def test_duplicate_email_is_refused_with_message(app, users):
    admin = signed_in(app, users["admin"])
    before = _count_users(app)
    resp = _post(admin, "/admin/users/new", {
        "email": users["mcn"].email.upper(), "name": "Dup", "password": "a-good-password", "roles": ["mcn"],
    })
    assert resp.status_code == 400
    assert "already exists" in resp.get_data(as_text=True) or "已存在" in resp.get_data(as_text=True)
    assert _count_users(app) == before


def test_invalid_sac_number_is_refused_and_nothing_stored(app, users):
    admin = signed_in(app, users["admin"])
    before = _count_users(app)
    for bad in ["", "S123", "X1234567890123", "S12345678901234", "S12345678901２3"]:
        resp = _post(admin, "/admin/users/new", {
            "email": f"adv{len(bad)}@example.com", "name": "Adv", "password": "a-good-password",
            "roles": ["advisor"], "sac_number": bad,
        }, form_page="/admin/users/new")
        assert resp.status_code == 400, bad
    assert _count_users(app) == before


def test_overlong_field_is_refused(app, users):
    admin = signed_in(app, users["admin"])
    before = _count_users(app)
    resp = _post(admin, "/admin/users/new", {
        "email": "long@example.com", "name": "名" * 101, "password": "a-good-password", "roles": ["mcn"],
    })
    assert resp.status_code == 400
    assert _count_users(app) == before


def test_admin_edits_roles_and_sac_number(app, users):
    admin = signed_in(app, users["admin"])
    target = users["advisor"]
    with app.app_context():
        partner_id = make_channel("蓝海MCN").partner_id  # the mcn role needs a partner
        db.session.commit()
    resp = _post(admin, f"/admin/users/{target.id}", {
        "name": "Renamed", "roles": ["advisor", "mcn"], "real_name": "真名", "sac_number": "S9999999999999",
        "bio": "十年投研经验", "partner_id": str(partner_id),
    })
    assert resp.status_code == 302
    with app.app_context():
        user = db.session.get(User, target.id)
        assert user.roles == {"advisor", "mcn"} and user.name == "Renamed"
        assert user.advisor_profile.sac_number == "S9999999999999" and user.advisor_profile.real_name == "真名"
        entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "user.updated")).one()
        assert entry.details["roles"] == [["advisor"], ["advisor", "mcn"]]


def test_sac_number_already_used_by_another_advisor_is_refused(app, users):
    admin = signed_in(app, users["admin"])
    resp = _post(admin, f"/admin/users/{users['advisor'].id}", {
        "name": "A", "roles": ["advisor"], "real_name": "A", "sac_number": users["advisor2"].sac_number,
    })
    assert resp.status_code == 409 or resp.status_code == 400
    with app.app_context():
        profile = db.session.get(AdvisorProfile, users["advisor"].id)
        assert profile.sac_number == users["advisor"].sac_number


def test_deactivation_needs_reason_and_confirmation(app, users):
    admin = signed_in(app, users["admin"])
    target = users["mcn"]
    page = f"/admin/users/{target.id}"
    resp = _post(admin, f"{page}/deactivate", {"reason": "", "confirm": "y"}, form_page=page)
    assert resp.status_code == 302
    resp = _post(admin, f"{page}/deactivate", {"reason": "contract ended"}, form_page=page)
    with app.app_context():
        assert db.session.get(User, target.id).active is True
    resp = _post(admin, f"{page}/deactivate", {"reason": "contract ended", "confirm": "y"}, form_page=page)
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.get(User, target.id).active is False
    assert login(app.test_client(), target.email, target.password).status_code == 401
    _post(admin, f"{page}/reactivate", {}, form_page=page)
    assert login(app.test_client(), target.email, target.password).status_code == 302


def test_admin_cannot_deactivate_or_demote_self(app, users):
    admin = signed_in(app, users["admin"])
    page = f"/admin/users/{users['admin'].id}"
    _post(admin, f"{page}/deactivate", {"reason": "oops", "confirm": "y"}, form_page=page)
    resp = _post(admin, page, {"name": "Admin", "roles": ["mcn"]})
    assert resp.status_code == 400
    with app.app_context():
        me = db.session.get(User, users["admin"].id)
        assert me.active is True and "admin" in me.roles


def test_user_list_searches_filters_and_paginates(app_factory, users):
    app = app_factory(PAGE_SIZE=2)
    admin = signed_in(app, users["admin"])
    body = admin.get("/admin/users").get_data(as_text=True)
    assert "page 1 of 3" in body or "第 1 页" in body
    body = admin.get("/admin/users", query_string={"q": users["mcn"].email}).get_data(as_text=True)
    assert users["mcn"].email in body and users["compliance"].email not in body
    body = admin.get("/admin/users", query_string={"role": "advisor"}).get_data(as_text=True)
    assert users["advisor"].email in body and users["mcn"].email not in body
    body = admin.get("/admin/users", query_string={"q": "no-such-person"}).get_data(as_text=True)
    assert 'data-testid="empty-state"' in body


def test_unknown_user_id_is_404(app, users):
    admin = signed_in(app, users["admin"])
    assert admin.get("/admin/users/999999").status_code == 404
