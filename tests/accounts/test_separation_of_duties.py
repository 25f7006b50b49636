"""Separation of duties: no self-grant, two admins for compliance/admin, no reviews by recent admins."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from advisor_studio.accounts import services
from advisor_studio.accounts.models import RoleEvent, RoleGrantRequest, User
from advisor_studio.audit import AuditEntry
from advisor_studio.compliance import services as compliance
from advisor_studio.compliance.models import Review
from advisor_studio.dbtypes import utcnow
from advisor_studio.errors import Conflict, PermissionDenied
from advisor_studio.extensions import db
from tests.compliance.test_review_pages import _page, _post, submit_script
from tests.conftest import csrf_from, record_of, signed_in
from tests.factories import make_user


@pytest.fixture
def admins(app, users):
    """A second and a third admin besides users['admin']."""
    with app.app_context():
        made = {"admin2": make_user("admin"), "admin3": make_user("admin")}
        db.session.commit()
        return {**users, **{k: record_of(u) for k, u in made.items()}}


def _roles(app, user_id: int) -> set[str]:
    with app.app_context():
        return db.session.get(User, user_id).roles


def _actions(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.seq)))


def test_admin_cannot_grant_a_role_to_themselves_and_the_attempt_is_audited(app, users):
    admin = signed_in(app, users["admin"])
    me = users["admin"].id
    page = _page(admin, f"/admin/users/{me}")
    resp = _post(admin, f"/admin/users/{me}", {"name": "Me", "roles": ["admin", "compliance"]}, page=page)
    assert resp.status_code == 403
    assert "yourself" in resp.get_data(as_text=True) or "自己" in resp.get_data(as_text=True)
    assert _roles(app, me) == {"admin"}
    with app.app_context():
        entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "role.change_refused")).one()
        assert entry.actor_id == me and entry.details["reason"] == "self_grant"
        assert db.session.scalar(sa.select(sa.func.count(RoleGrantRequest.id))) == 0


def test_granting_compliance_needs_a_second_admin_who_is_not_the_target(app, admins):
    first = signed_in(app, admins["admin"])
    target = admins["advisor"]
    page = _page(first, f"/admin/users/{target.id}")
    resp = _post(first, f"/admin/users/{target.id}", {"name": target.name, "roles": ["advisor", "compliance"]},
                 page=page)
    assert resp.status_code == 302
    assert _roles(app, target.id) == {"advisor"}  # not held until confirmed
    with app.app_context():
        grant = db.session.scalars(sa.select(RoleGrantRequest)).one()
        grant_id = grant.id
        assert grant.status == "pending" and grant.requested_by_id == admins["admin"].id

    # Shown on the user page and on the admin landing page of the other admins.
    second = signed_in(app, admins["admin2"])
    assert f"/admin/role-requests/{grant_id}/confirm" in _page(second, "/")
    user_page = _page(second, f"/admin/users/{target.id}")
    assert f"/admin/role-requests/{grant_id}/confirm" in user_page

    # The requesting admin cannot confirm their own request.
    resp = _post(first, f"/admin/role-requests/{grant_id}/confirm", {}, page=_page(first, "/"))
    assert resp.status_code == 302
    assert _roles(app, target.id) == {"advisor"}

    resp = _post(second, f"/admin/role-requests/{grant_id}/confirm", {}, page=user_page)
    assert resp.status_code == 302
    assert _roles(app, target.id) == {"advisor", "compliance"}
    with app.app_context():
        grant = db.session.get(RoleGrantRequest, grant_id)
        assert grant.status == "confirmed" and grant.decided_by_id == admins["admin2"].id
        event = db.session.scalars(sa.select(RoleEvent).where(RoleEvent.user_id == target.id,
                                                              RoleEvent.role == "compliance")).one()
        assert event.action == "granted" and event.grant_request_id == grant_id
    actions = _actions(app)
    assert "role.grant_requested" in actions and "role.grant_confirmed" in actions
    # A confirmed request cannot be confirmed twice.
    with app.app_context():
        with pytest.raises(Conflict) as closed:
            services.confirm_role_grant(db.session.get(RoleGrantRequest, grant_id),
                                        actor=db.session.get(User, admins["admin3"].id))
        assert closed.value.code == "grant_closed"


def test_target_admin_cannot_confirm_their_own_promotion(app, admins):
    with app.app_context():
        target = db.session.get(User, admins["admin2"].id)
        grant = services.request_role_grant(target, "compliance", actor=db.session.get(User, admins["admin"].id))
        db.session.commit()
        with pytest.raises(PermissionDenied):
            services.confirm_role_grant(grant, actor=target)
        assert not db.session.get(User, admins["admin2"].id).has_role("compliance")


def test_new_admin_created_on_the_web_waits_for_a_second_admin(app, admins):
    first = signed_in(app, admins["admin"])
    page = _page(first, "/admin/users/new")
    resp = _post(first, "/admin/users/new", {"email": "new.admin@example.com", "name": "新管理员",
                                             "password": "Granite-Orbit-Tulip-88", "roles": ["admin"]}, page=page)
    assert resp.status_code == 302
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == "new.admin@example.com"))
        assert user.roles == set()
        requested = db.session.scalars(sa.select(RoleGrantRequest.role).where(RoleGrantRequest.user_id == user.id))
        assert requested.all() == ["admin"]


def test_cancelled_request_is_never_granted(app, admins):
    first = signed_in(app, admins["admin"])
    with app.app_context():
        grant = services.request_role_grant(db.session.get(User, admins["mcn"].id), "admin",
                                            actor=db.session.get(User, admins["admin"].id))
        db.session.commit()
        grant_id = grant.id
    page = _page(first, "/")
    assert _post(first, f"/admin/role-requests/{grant_id}/cancel", {}, page=page).status_code == 302
    second = signed_in(app, admins["admin2"])
    _post(second, f"/admin/role-requests/{grant_id}/confirm", {}, page=_page(second, "/"))
    assert _roles(app, admins["mcn"].id) == {"mcn"}


def test_cli_bootstrap_still_grants_admin_directly(app):
    with app.app_context():
        user = services.create_user(email="ops@example.com", password="Granite-Orbit-Tulip-88", roles=["admin"],
                                    actor="cli")
        db.session.commit()
        assert user.roles == {"admin"}
        event = db.session.scalars(sa.select(RoleEvent).where(RoleEvent.user_id == user.id)).one()
        assert event.actor_label == "cli" and event.action == "granted"


def _officer_who_was_admin(app, days_ago: int):
    with app.app_context():
        person = make_user("compliance", "admin")
        services.update_user(person, name=person.name, roles=["compliance"], actor="test")
        event = db.session.scalars(sa.select(RoleEvent).where(RoleEvent.user_id == person.id,
                                                              RoleEvent.action == "revoked")).one()
        event.at = utcnow() - timedelta(days=days_ago)
        db.session.commit()
        assert person.roles == {"compliance"}
        return record_of(person)


def test_officer_who_was_admin_recently_cannot_decide_reviews(app, people):
    officer = _officer_who_was_admin(app, days_ago=3)
    review_id = submit_script(app, people["advisor"])
    client = signed_in(app, officer)
    page = _page(client, f"/compliance/reviews/{review_id}")
    assert 'data-testid="decision-form"' not in page and 'data-testid="recent-admin"' in page
    assert _post(client, f"/compliance/reviews/{review_id}/claim", {}, page=page).status_code == 403
    with app.app_context():
        review = db.session.get(Review, review_id)
        with pytest.raises(PermissionDenied):
            compliance.claim(review, db.session.get(User, officer.id))
        review.claimed_by_id = officer.id
        review.claimed_until = utcnow() + timedelta(minutes=5)
        review.claimed_manifest_sha256 = review.manifest_sha256
        db.session.commit()
        with pytest.raises(PermissionDenied):
            compliance.decide(db.session.get(Review, review_id), db.session.get(User, officer.id), "approve")


def test_current_admin_who_is_also_officer_cannot_decide(app, people):
    with app.app_context():
        both = record_of(make_user("compliance", "admin"))
        db.session.commit()
    review_id = submit_script(app, people["advisor"])
    client = signed_in(app, both)
    page = _page(client, f"/compliance/reviews/{review_id}")
    assert _post(client, f"/compliance/reviews/{review_id}/claim", {}, page=page).status_code == 403


def test_officer_whose_admin_role_ended_before_the_cooldown_decides(app, people):
    officer = _officer_who_was_admin(app, days_ago=31)
    review_id = submit_script(app, people["advisor"])
    client = signed_in(app, officer)
    page = _page(client, f"/compliance/reviews/{review_id}")
    assert _post(client, f"/compliance/reviews/{review_id}/claim", {}, page=page).status_code == 302


def test_removing_a_role_keeps_its_history(app, users):
    with app.app_context():
        person = make_user("advisor", "mcn")
        services.update_user(person, name=person.name, roles=["advisor"], actor="test")
        db.session.commit()
        events = db.session.scalars(sa.select(RoleEvent).where(RoleEvent.user_id == person.id,
                                                               RoleEvent.role == "mcn").order_by(RoleEvent.id)).all()
        assert [e.action for e in events] == ["granted", "revoked"]
        person_id = person.id
    admin = signed_in(app, users["admin"])
    assert 'data-testid="role-history"' in _page(admin, f"/admin/users/{person_id}")


def test_seed_demo_compliance_user_is_not_an_admin():
    from advisor_studio.cli import DEMO_USERS

    officer = next(spec for spec in DEMO_USERS if spec["role"] == "compliance")
    assert officer["email"] not in {spec["email"] for spec in DEMO_USERS if spec["role"] == "admin"}


def test_csrf_is_required_to_confirm_a_grant(app, admins):
    with app.app_context():
        grant = services.request_role_grant(db.session.get(User, admins["mcn"].id), "compliance",
                                            actor=db.session.get(User, admins["admin"].id))
        db.session.commit()
        grant_id = grant.id
    second = signed_in(app, admins["admin2"])
    assert second.post(f"/admin/role-requests/{grant_id}/confirm").status_code == 400
    assert _roles(app, admins["mcn"].id) == {"mcn"}
    assert csrf_from(_page(second, "/"))
