"""An advisor adds a group, makes its link in the browser and sees the chart, the QR and the card
under the app's Content-Security-Policy."""

from __future__ import annotations

import pytest

from tests.conftest import screenshot
from tests.referrals.conftest import make_group

pytestmark = pytest.mark.browser


def sign_in(page, live_server, user) -> None:
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", user.password)
    page.click('[data-testid="login-submit"]')
    page.wait_for_url(f"{live_server}/")


def test_advisor_makes_a_group_link_and_prints_its_card(app, live_server, page, users):
    make_group(app, users["advisor"].id, name="价值投资交流群")
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    sign_in(page, live_server, users["advisor"])
    nav = page.locator("#mainnav").inner_text()
    assert "社群" in nav and "推广链接" in nav
    page.goto(f"{live_server}/referrals/groups")
    assert page.locator('[data-testid="group-row"]').count() == 1
    screenshot(page, "referrals-groups")
    page.goto(f"{live_server}/referrals/links")
    assert page.locator('[data-testid="empty-state"]').is_visible()
    page.click('[data-testid="link-new"]')
    page.select_option("select[name=group_id]", label="价值投资交流群")
    page.fill("input[name=campaign]", "双十一")
    page.fill("input[name=path]", "/open")
    page.click('[data-testid="link-form"] button[type=submit]')
    page.wait_for_selector('[data-testid="link-code"]')
    qr = page.locator('[data-testid="qr"]')
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0")  # served and allowed by the CSP
    assert page.locator('[data-testid="clicks-chart"] rect').count() == 30
    screenshot(page, "referrals-link")
    page.click("a[href$='/card']")
    page.wait_for_selector('[data-testid="card"]')
    assert page.locator('[data-testid="card"] img').evaluate("img => img.naturalWidth > 0")
    assert users["advisor"].sac_number in page.locator('[data-testid="card"]').inner_text()
    screenshot(page, "referrals-card")
    assert not [e for e in errors if "Content Security Policy" in e]
