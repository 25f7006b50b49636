"""Every endpoint declares an access rule, and the role x endpoint matrix holds."""

from __future__ import annotations

import pytest

from advisor_studio.access import access_rule
from tests.conftest import signed_in


def test_every_endpoint_declares_an_access_rule(app):
    missing = sorted(
        rule.endpoint for rule in app.url_map.iter_rules() if access_rule(app, rule.endpoint) is None
    )
    assert missing == []


def test_endpoint_without_declared_rule_is_refused(app_factory):
    app = app_factory()

    @app.route("/undeclared-probe")
    def undeclared_probe():
        return "should never be served"

    resp = app.test_client().get("/undeclared-probe")
    assert resp.status_code == 403
    assert "should never be served" not in resp.get_data(as_text=True)


# (path, roles allowed). Anonymous visitors are redirected to sign in on all of these.
PAGES = [
    ("/", {"advisor", "compliance", "mcn", "admin"}),
    ("/account/password", {"advisor", "compliance", "mcn", "admin"}),
    ("/account/2fa", {"advisor", "compliance", "mcn", "admin"}),
    ("/account/confirm", {"advisor", "compliance", "mcn", "admin"}),
    ("/admin/users", {"admin"}),
    ("/admin/users/new", {"admin"}),
    ("/admin/users/{advisor_id}", {"admin"}),
    ("/audit", {"compliance", "admin"}),
    ("/audit/export.csv", {"compliance", "admin"}),
    ("/account/profile", {"advisor"}),
    ("/advisors/{advisor_id}/avatar.jpg", {"advisor", "compliance", "mcn", "admin"}, 404),  # no photo yet
    ("/compliance/disclaimer", {"compliance"}),
    # Renditions: permission is per object (tests/video/test_pipeline.py); here only sign-in is checked.
    ("/studio/renditions/{missing}/status", {"advisor", "compliance", "mcn", "admin"}, 404),
    ("/studio/renditions/{missing}/video.mp4", {"advisor", "compliance", "mcn", "admin"}, 404),
    ("/studio/renditions/{missing}/cover.jpg", {"advisor", "compliance", "mcn", "admin"}, 404),
    # Studio: lists are the advisor's own; item pages also open to compliance and admin (per object in
    # tests/studio/test_pages.py), so here a missing item answers 404 once the role rule passed.
    ("/studio/", {"advisor"}),
    ("/studio/scripts", {"advisor"}),
    ("/studio/scripts/new", {"advisor"}),
    ("/studio/packages", {"advisor"}),
    ("/studio/scripts/{missing}", {"advisor", "compliance", "admin"}, 404),
    ("/studio/scripts/{missing}/revisions", {"advisor", "compliance", "admin"}, 404),
    ("/studio/scripts/{missing}/diff", {"advisor", "compliance", "admin"}, 404),
    ("/studio/packages/{missing}", {"advisor", "compliance", "admin"}, 404),
    # The approved master: per object (tests/integrity/test_master_download.py), 404 for anyone else.
    ("/studio/packages/{missing}/approved-master.mp4", {"advisor", "compliance", "mcn", "admin"}, 404),
    # Compliance: officers only, except the review page and its rendition, which the author may also
    # open (per object in tests/compliance/test_review_pages.py); a missing item answers 404.
    ("/compliance/queue", {"compliance"}),
    ("/compliance/approved", {"compliance"}),
    ("/compliance/lexicon", {"compliance"}),
    ("/compliance/lexicon/versions", {"compliance"}),
    ("/compliance/lexicon/rules/new", {"compliance"}),
    ("/compliance/lexicon/rules/{missing}", {"compliance"}, 404),
    ("/compliance/lexicon/import", {"compliance"}),
    ("/compliance/lexicon/export.csv", {"compliance"}),
    ("/compliance/lexicon/try", {"compliance"}),
    ("/compliance/reviews/{missing}", {"advisor", "compliance"}, 404),
    ("/compliance/reviews/{missing}/rendition.mp4", {"advisor", "compliance"}, 404),
    ("/compliance/integrity", {"compliance"}),
    # Fraud flags: compliance officers only (tests/analytics/test_fraud_pages.py); a missing flag answers 404.
    ("/compliance/fraud", {"compliance"}),
    ("/compliance/fraud/{missing}", {"compliance"}, 404),
    # Referrals: advisors their own groups and links (others' answer 404, tests/referrals), admins all,
    # compliance reads links; a missing item answers 404 once the role rule passed.
    ("/referrals/groups", {"advisor"}),
    ("/referrals/admin/groups", {"admin"}),
    ("/referrals/groups/new", {"advisor", "admin"}),
    ("/referrals/groups/import", {"advisor", "admin"}),
    ("/referrals/groups/export.csv", {"advisor", "admin"}),
    ("/referrals/groups/{missing}", {"advisor", "admin"}, 404),
    ("/referrals/links", {"advisor"}),
    ("/referrals/admin/links", {"admin", "compliance"}),
    ("/referrals/links/export.csv", {"advisor", "admin", "compliance"}),
    ("/referrals/links/new", {"advisor"}),
    ("/referrals/links/bulk", {"advisor"}),
    ("/referrals/customer-links", {"advisor", "admin"}),
    ("/referrals/links/{missing}", {"advisor", "admin", "compliance"}, 404),
    ("/referrals/links/{missing}/edit", {"advisor", "admin"}, 404),
    ("/referrals/links/{missing}/card", {"advisor", "admin"}, 404),
    # Sharing tasks: the advisor's own (per object in tests/referrals/test_sharing_tasks.py).
    ("/referrals/tasks", {"advisor"}),
    ("/referrals/tasks/{missing}", {"advisor"}, 404),
    # Webhook deliveries: admin only; a missing event answers 404.
    ("/admin/webhooks", {"admin"}),
    ("/admin/webhooks/{missing}", {"admin"}, 404),
    # MCN portal: mcn users only (an mcn user without a partner gets an explanation page); assets are
    # per partner (tests/distribution/test_portal_isolation.py), so a missing one answers 404.
    ("/portal/assets", {"mcn"}),
    ("/portal/publications", {"mcn"}),
    ("/portal/assets/{missing}", {"mcn"}, 404),
    ("/portal/assets/{missing}/cover.jpg", {"mcn"}, 404),
    ("/compliance/packages/{missing}/evidence.zip", {"compliance", "admin"}, 404),
    # Distribution administration: admins only; a missing partner or channel answers 404.
    ("/admin/partners", {"admin"}),
    ("/admin/partners/new", {"admin"}),
    ("/admin/partners/{missing}", {"admin"}, 404),
    ("/admin/channels", {"admin"}),
    ("/admin/channels/new", {"admin"}),
    ("/admin/channels/{missing}", {"admin"}, 404),
    # Content performance: advisors (their own packages), compliance and admins; reconciliation: admins.
    ("/analytics/content", {"advisor", "compliance", "admin"}),
    ("/analytics/content/export.csv", {"advisor", "compliance", "admin"}),
    ("/analytics/reconciliation", {"admin"}),
    ("/analytics/reconciliation/{missing}", {"admin"}, 404),
    ("/analytics/reconciliation/{missing}/file", {"admin"}, 404),
    # Analytics: advisors (their own figures only, tests/analytics/test_pages.py), compliance and admins.
    ("/analytics/", {"advisor", "compliance", "admin"}),
    ("/analytics/my", {"advisor", "compliance", "admin"}),
    ("/analytics/export.csv", {"advisor", "compliance", "admin"}),
    ("/analytics/leaderboard", {"advisor", "compliance", "admin"}),
    ("/analytics/aarrr", {"advisor", "compliance", "admin"}),
    # Notifications: every signed-in user reads their own (others' answer 404, tests/notifications).
    ("/notifications", {"advisor", "compliance", "mcn", "admin"}),
]


def test_matrix_covers_every_signed_in_page(app):
    covered = {entry[0].split("{")[0].rstrip("/") for entry in PAGES}
    for rule in app.url_map.iter_rules():
        declared = access_rule(app, rule.endpoint)
        if declared == "login" or declared.startswith("roles:"):
            if "GET" in rule.methods:
                assert rule.rule.split("<")[0].rstrip("/") in covered, f"{rule.rule} missing from PAGES"


@pytest.mark.parametrize("role", ["anonymous", "advisor", "compliance", "mcn", "admin"])
def test_role_matrix(app, users, role):
    """One client of ``role`` walks every page of PAGES; every answer that differs is reported at once.

    (One test per role rather than per page and role: 90 pages x 5 roles each building its own app,
    users and sign-in cost several minutes of every CI run for the same GET requests.)
    """
    client = app.test_client() if role == "anonymous" else signed_in(app, users[role])
    wrong = []
    for entry in PAGES:
        path, allowed = entry[0], entry[1]
        resp = client.get(path.format(advisor_id=users["advisor"].id, missing=999999))
        if role == "anonymous":
            ok = resp.status_code == 302 and "/login" in resp.headers.get("Location", "")
            expected = "302 to /login"
        else:
            expected = (entry[2] if len(entry) > 2 else 200) if role in allowed else 403
            ok = resp.status_code == expected
        if not ok:
            wrong.append(f"{path}: {resp.status_code}, expected {expected}")
    assert wrong == [], f"{role}: " + "; ".join(wrong)


@pytest.mark.parametrize("role", ["advisor", "compliance", "mcn"])
def test_non_admin_cannot_post_admin_actions(app, users, role):
    client = signed_in(app, users[role])
    from tests.conftest import csrf_from

    token = csrf_from(client.get("/account/password").get_data(as_text=True))
    target = users["advisor2"].id
    for path, data in [
        ("/admin/users/new", {"email": "x@example.com", "name": "X", "password": "long-enough-pw", "roles": "admin"}),
        (f"/admin/users/{target}", {"name": "Hacked", "roles": "admin"}),
        (f"/admin/users/{target}/deactivate", {"reason": "x", "confirm": "y"}),
        (f"/admin/users/{target}/reactivate", {}),
        (f"/admin/users/{target}/reset-password", {"confirm": "y"}),
        ("/admin/role-requests/1/confirm", {}),
        ("/admin/role-requests/1/cancel", {}),
    ]:
        resp = client.post(path, data={**data, "csrf_token": token})
        assert resp.status_code == 403, path


@pytest.mark.parametrize("role", ["advisor", "mcn", "admin"])
def test_only_compliance_may_post_fraud_decisions(app, users, role):
    from tests.conftest import csrf_from

    client = signed_in(app, users[role])
    token = csrf_from(client.get("/account/password").get_data(as_text=True))
    resp = client.post("/compliance/fraud/1/decision", data={"decision": "cleared", "note": "x", "confirm": "y",
                                                             "csrf_token": token})
    assert resp.status_code == 403


def test_account_posts_need_sign_in(client):
    for path in ["/account/2fa/start", "/account/2fa/confirm", "/account/2fa/disable", "/account/confirm",
                 "/admin/users/1/reset-password", "/admin/role-requests/1/confirm", "/admin/role-requests/1/cancel"]:
        resp = client.post(path)
        assert resp.status_code in (302, 400), path
        assert resp.status_code == 400 or "/login" in resp.headers["Location"], path


def test_second_sign_in_step_is_public_but_grants_nothing_without_a_password_step(client):
    resp = client.get("/login/verify")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login")
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("role", ["anonymous", "advisor", "compliance", "mcn", "admin"])
def test_partner_api_takes_keys_not_sessions_and_its_docs_are_public(app, users, role):
    client = app.test_client() if role == "anonymous" else signed_in(app, users[role])
    for path in ("/api/v1/partner/assets", "/api/v1/partner/assets/1"):
        resp = client.get(path)
        assert resp.status_code == 401 and resp.json["error"]["code"] == "unauthorized", path
    assert client.post("/api/v1/partner/assets/1/publications", json={}).status_code == 401
    assert client.post("/api/v1/partner/publications/1/metrics", json={}).status_code == 401
    assert client.get("/api/v1/openapi.json").status_code == 200
    assert client.get("/api/docs").status_code == 200
