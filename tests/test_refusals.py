"""Refused actions leave a trace in the audit trail: a rate-limited sign-in, a 403, a failed claim
takeover, and sign-out; each refusal is one small entry written after the refused work rolled back,
and a flood of them is throttled so it cannot monopolize the chain."""

from __future__ import annotations

import sqlalchemy as sa

from advisor_studio import audit
from advisor_studio.access import login_required
from advisor_studio.audit import AuditEntry
from advisor_studio.errors import PermissionDenied
from advisor_studio.extensions import db
from tests.compliance.test_review_pages import _page, _post, people, submit_script  # noqa: F401 - fixture
from tests.conftest import login, post_form, signed_in


def _entries(app, action: str) -> list[AuditEntry]:
    with app.app_context():
        entries = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action)
                                     .order_by(AuditEntry.seq)).all()
        db.session.expunge_all()
        return entries


def test_rate_limited_login_is_audited_with_the_email_and_never_the_password(app, client, users):
    statuses = [login(client, users["admin"].email, f"wrong-{i}-password").status_code for i in range(6)]
    assert statuses[-1] == 429
    [entry] = _entries(app, "access.rate_limited")
    assert entry.actor_id is None and entry.actor_label == "anonymous"
    assert entry.details["email"] == users["admin"].email
    assert entry.details["path"] == "/login" and entry.details["method"] == "POST"
    assert entry.details["endpoint"] == "accounts.login" and entry.details["status"] == 429
    assert "wrong-5-password" not in str(entry.details)
    with app.app_context():
        assert audit.verify().ok


def test_forbidden_page_is_audited_with_the_user_and_the_path_without_its_query(app, users):
    client = signed_in(app, users["advisor"])
    assert client.get("/admin/users", query_string={"token": "s3cret-token"}).status_code == 403
    [entry] = _entries(app, "access.denied")
    assert entry.actor_id == users["advisor"].id and entry.actor_label == users["advisor"].email
    assert entry.details == {"endpoint": "accounts.users", "method": "GET", "path": "/admin/users", "status": 403}
    assert "s3cret" not in str(entry.details)


def test_refused_action_is_rolled_back_before_its_refusal_is_written(app_factory, users):
    app = app_factory()

    @app.route("/probe-denied", methods=["POST"])
    @login_required
    def probe_denied():
        # Work done before a service refuses must not ride along with the refusal's commit.
        audit.record("probe.half_done", "thing", 1, actor="probe")
        raise PermissionDenied("not yours")

    app.config["WTF_CSRF_ENABLED"] = False
    client = signed_in(app, users["mcn"])
    assert client.post("/probe-denied").status_code == 403
    assert _entries(app, "probe.half_done") == []
    [entry] = _entries(app, "access.denied")
    assert entry.actor_id == users["mcn"].id and entry.details["path"] == "/probe-denied"
    with app.app_context():
        assert audit.verify().ok


def test_failed_claim_takeover_is_audited(app, people):  # noqa: F811 - the fixture imported above
    review_id = submit_script(app, people["advisor"])
    first, second = signed_in(app, people["compliance"]), signed_in(app, people["officer2"])
    _post(first, f"/compliance/reviews/{review_id}/claim", {}, page=_page(first, f"/compliance/reviews/{review_id}"))
    page = _page(second, f"/compliance/reviews/{review_id}")
    refused = _post(second, f"/compliance/reviews/{review_id}/claim", {}, page=page)
    assert refused.status_code == 409  # the review page again, naming who holds the claim
    [entry] = _entries(app, "review.claim_refused")
    assert entry.actor_id == people["officer2"].id
    assert (entry.object_type, entry.object_id) == ("review", str(review_id))
    assert entry.details["reason"] == "claimed" and entry.details["endpoint"] == "compliance.claim"
    assert [e.actor_id for e in _entries(app, "review.claimed")] == [people["compliance"].id]


def test_logout_is_audited(app, users):
    client = signed_in(app, users["compliance"])
    resp = post_form(client, "/logout", {}, form_page="/")
    assert resp.status_code == 302
    [entry] = _entries(app, "user.logout")
    assert entry.actor_id == users["compliance"].id and entry.object_id == str(users["compliance"].id)
    assert client.get("/").status_code == 302  # really signed out


def test_a_flood_of_refusals_is_throttled_and_the_chain_stays_valid(app_factory, users):
    app = app_factory(AUDIT_REFUSAL_LIMIT="3 per minute")
    client = signed_in(app, users["advisor"])
    assert [client.get("/admin/users").status_code for _ in range(10)] == [403] * 10
    assert len(_entries(app, "access.denied")) == 3
    other = signed_in(app, users["mcn"])  # one requester's flood does not silence another's refusals
    assert other.get("/admin/users").status_code == 403
    assert len(_entries(app, "access.denied")) == 4
    with app.app_context():
        assert audit.verify().ok
