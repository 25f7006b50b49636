"""Step-up re-authentication before signing actions; an approval records the factor that signed it."""

from __future__ import annotations

import time

import pyotp
import pytest
import sqlalchemy as sa

from advisor_studio.audit import AuditEntry
from advisor_studio.compliance.models import Approval, LexiconRule, Review
from advisor_studio.extensions import db
from advisor_studio.studio.models import Package
from tests.accounts.test_two_factor import enrol
from tests.compliance.test_review_pages import (
    _approved_package,
    _page,
    _post,
    manifest_from,
    submit_package,
)
from tests.conftest import csrf_from, signed_in
from tests.factories import make_channel


def make_stale(client) -> None:
    """The last confirmation is older than STEP_UP_MINUTES (as if the officer had signed in an hour ago)."""
    with client.session_transaction() as sess:
        sess["reauth_at"] = time.time() - 3600


def confirm(client, location: str, **data):
    page = client.get(location)
    assert page.status_code == 200
    return client.post(location, data={**data, "csrf_token": csrf_from(page.get_data(as_text=True))})


def claimed_review_page(app, people, officer_client) -> tuple[int, int, str]:
    package_id, review_id = submit_package(app, people["advisor"], people["officer2"])
    page = _page(officer_client, f"/compliance/reviews/{review_id}")
    assert _post(officer_client, f"/compliance/reviews/{review_id}/claim", {}, page=page).status_code == 302
    return package_id, review_id, _page(officer_client, f"/compliance/reviews/{review_id}")


def approve(client, review_id: int, page: str):
    return client.post(f"/compliance/reviews/{review_id}/decision",
                       data={"decision": "approve", "manifest_sha256": manifest_from(page),
                             "csrf_token": csrf_from(page)},
                       headers={"Referer": f"http://localhost/compliance/reviews/{review_id}"})


def test_stale_approval_is_not_performed_and_the_officer_is_sent_to_confirm(app, people):
    officer = signed_in(app, people["compliance"])
    _package_id, review_id, page = claimed_review_page(app, people, officer)
    make_stale(officer)
    resp = approve(officer, review_id, page)
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/account/confirm?next=/compliance/reviews/")
    with app.app_context():
        assert db.session.get(Review, review_id).decision is None
        assert db.session.scalar(sa.select(sa.func.count(Approval.id)).where(Approval.review_id == review_id)) == 0


def test_wrong_password_at_confirmation_is_refused_and_audited(app, people):
    officer = signed_in(app, people["compliance"])
    _package_id, review_id, page = claimed_review_page(app, people, officer)
    make_stale(officer)
    location = approve(officer, review_id, page).headers["Location"]
    assert confirm(officer, location, password="not-my-password").status_code == 401
    assert approve(officer, review_id, page).headers["Location"].startswith("/account/confirm")
    with app.app_context():
        assert db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "user.reauth_failed")) is not None


def test_password_confirmation_returns_to_the_page_and_the_approval_records_the_factor(app, people):
    officer = signed_in(app, people["compliance"])
    _package_id, review_id, page = claimed_review_page(app, people, officer)
    make_stale(officer)
    location = approve(officer, review_id, page).headers["Location"]
    resp = confirm(officer, location, password=people["compliance"].password)
    assert resp.status_code == 302 and resp.headers["Location"] == f"/compliance/reviews/{review_id}"
    assert approve(officer, review_id, page).headers["Location"].endswith("/compliance/queue")
    with app.app_context():
        approval = db.session.scalars(sa.select(Approval).where(Approval.review_id == review_id)).one()
        assert approval.signed_factor == "password" and approval.signed_at is not None
        entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "approval.granted",
                                                               AuditEntry.object_id == str(approval.id))).one()
        assert entry.details["signed_factor"] == "password"
    assert 'data-testid="signed-factor" data-factor="password"' in _page(officer, f"/compliance/reviews/{review_id}")


def test_sign_in_with_totp_signs_the_approval_with_totp(app, people, clock):
    officer = signed_in(app, people["compliance"])
    secret, _codes = enrol(officer, clock)
    make_stale(officer)
    _package_id, review_id, page = claimed_review_page(app, people, officer)
    location = approve(officer, review_id, page).headers["Location"]
    clock.advance()
    resp = confirm(officer, location, code=pyotp.TOTP(secret).at(clock.now))
    assert resp.status_code == 302
    assert approve(officer, review_id, page).status_code == 302
    with app.app_context():
        approval = db.session.scalars(sa.select(Approval).where(Approval.review_id == review_id)).one()
        assert approval.signed_factor == "totp"


def test_request_changes_also_needs_a_fresh_confirmation(app, people):
    officer = signed_in(app, people["compliance"])
    _package_id, review_id, page = claimed_review_page(app, people, officer)
    make_stale(officer)
    resp = officer.post(f"/compliance/reviews/{review_id}/decision",
                        data={"decision": "request_changes", "reason": "请补充风险提示", "confirm": "y",
                              "manifest_sha256": manifest_from(page), "csrf_token": csrf_from(page)})
    assert resp.headers["Location"].startswith("/account/confirm")
    with app.app_context():
        assert db.session.get(Review, review_id).decision is None


def test_stale_withdraw_is_refused_until_confirmed(app, people):
    package_id, _review_id = _approved_package(app, people)
    officer = signed_in(app, people["compliance"])
    page = _page(officer, "/compliance/approved")
    make_stale(officer)
    url = f"/compliance/packages/{package_id}/withdraw"
    resp = _post(officer, url, {"reason": "客户投诉", "confirm": "y"}, page=page)
    assert resp.headers["Location"].startswith("/account/confirm")
    with app.app_context():
        assert db.session.get(Package, package_id).status == "approved"
    confirm(officer, resp.headers["Location"], password=people["compliance"].password)
    assert _post(officer, url, {"reason": "客户投诉", "confirm": "y"}, page=page).status_code == 302
    with app.app_context():
        assert db.session.get(Package, package_id).status == "withdrawn"


@pytest.mark.parametrize("action", ["add", "import"])
def test_stale_lexicon_change_is_refused_until_confirmed(app, people, action):
    officer = signed_in(app, people["compliance"])
    if action == "add":
        url, data = "/compliance/lexicon/rules/new", {"phrase": "包赚不赔", "kind": "forbidden", "severity": "block",
                                                      "category": "收益承诺"}
    else:
        import io

        url = "/compliance/lexicon/import"
        data = {"file": (io.BytesIO("phrase,kind,severity,note\n包赚不赔,forbidden,block,\n".encode()), "l.csv")}
    page = _page(officer, url)
    make_stale(officer)
    resp = officer.post(url, data={**data, "csrf_token": csrf_from(page)}, content_type="multipart/form-data")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/account/confirm")
    with app.app_context():
        assert db.session.scalar(sa.select(LexiconRule).where(LexiconRule.phrase == "包赚不赔")) is None


def test_stale_lexicon_edit_and_remove_are_refused(app, people):
    officer = signed_in(app, people["compliance"])
    with app.app_context():
        rule = db.session.scalars(sa.select(LexiconRule).where(LexiconRule.removed_in.is_(None))).first()
        rule_id, phrase = rule.id, rule.phrase
    page = _page(officer, f"/compliance/lexicon/rules/{rule_id}")
    make_stale(officer)
    resp = officer.post(f"/compliance/lexicon/rules/{rule_id}/remove",
                        data={"reason": "过时", "confirm": "y", "csrf_token": csrf_from(page)})
    assert resp.headers["Location"].startswith("/account/confirm")
    resp = officer.post(f"/compliance/lexicon/rules/{rule_id}",
                        data={"phrase": phrase + "X", "kind": "forbidden", "severity": "warn",
                              "csrf_token": csrf_from(page)})
    assert resp.headers["Location"].startswith("/account/confirm")
    with app.app_context():
        assert db.session.get(LexiconRule, rule_id).removed_in is None


def test_stale_role_change_is_refused_until_confirmed(app, users):
    admin = signed_in(app, users["admin"])
    target = users["advisor2"]
    with app.app_context():
        partner_id = str(make_channel("蓝海MCN").partner_id)  # the mcn role needs a partner
        db.session.commit()
    change = {"name": "x", "roles": ["advisor", "mcn"], "partner_id": partner_id}
    page = _page(admin, f"/admin/users/{target.id}")
    make_stale(admin)
    resp = _post(admin, f"/admin/users/{target.id}", change, page=page)
    assert resp.headers["Location"].startswith("/account/confirm")
    from advisor_studio.accounts.models import User

    with app.app_context():
        assert db.session.get(User, target.id).roles == {"advisor"}
    confirm(admin, resp.headers["Location"], password=users["admin"].password)
    assert _post(admin, f"/admin/users/{target.id}", change, page=page).status_code == 302
    with app.app_context():
        assert db.session.get(User, target.id).roles == {"advisor", "mcn"}


def test_confirm_page_does_not_follow_offsite_next(app, users):
    client = signed_in(app, users["mcn"])
    resp = confirm(client, "/account/confirm?next=//evil.example.com/", password=users["mcn"].password)
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
