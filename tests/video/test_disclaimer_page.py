"""The disclaimer page: reachable from the compliance menu, publishing needs an explicit confirmation."""

from __future__ import annotations

from advisor_studio.extensions import db
from advisor_studio.video import services
from tests.conftest import post_form, signed_in


def test_disclaimer_is_in_the_compliance_menu(app, users):
    page = signed_in(app, users["compliance"]).get("/").get_data(as_text=True)
    assert 'href="/compliance/disclaimer"' in page


def test_publishing_needs_the_confirmation_and_without_it_changes_nothing(app, users):
    with app.app_context():
        before = services.current_disclaimer()
    client = signed_in(app, users["compliance"])
    resp = post_form(client, "/compliance/disclaimer", {"text": "投资有风险，入市需谨慎。新版本"})
    assert resp.status_code == 400 and "is-invalid" in resp.get_data(as_text=True)
    with app.app_context():
        assert services.current_disclaimer() == before
    resp = post_form(client, "/compliance/disclaimer", {"text": "投资有风险，入市需谨慎。新版本", "confirm": "y"})
    assert resp.status_code == 302
    with app.app_context():
        version, text = services.current_disclaimer()
        db.session.rollback()
    assert text == "投资有风险，入市需谨慎。新版本" and version == before[0] + 1
