"""An officer finds a flag from the compliance menu and confirms it in the browser, under the app's CSP."""

from __future__ import annotations

import pytest

from tests.analytics.test_fraud_pages import _make_flags
from tests.conftest import screenshot

pytestmark = pytest.mark.browser


def test_officer_confirms_a_flag_from_the_menu(app, live_server, page, users):
    _make_flags(app, users)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", users["compliance"].email)
    page.fill("input[name=password]", users["compliance"].password)
    page.click('[data-testid="login-submit"]')
    page.wait_for_url(f"{live_server}/")
    page.click("#mainnav a[href='/compliance/fraud']")
    assert page.locator('[data-testid="fraud-row"]').count() == 2
    screenshot(page, "fraud-flags")
    page.click('[data-testid="fraud-row"][data-kind="visitor_burst"] a')
    page.wait_for_selector('[data-testid="decision-form"]')
    assert page.locator('[data-testid="flag-clicks"] tbody tr').count() == 20
    page.click('[data-testid="decision-form"] button[type=submit]')  # nothing chosen: refused, explained
    page.wait_for_selector('[data-testid="decision-form"] .text-danger')
    page.check("#decision-confirmed")
    page.fill("textarea[name=note]", "同一访客十分钟内点击二十次")
    page.check("input[name=confirm]")
    screenshot(page, "fraud-flag")
    page.click('[data-testid="decision-form"] button[type=submit]')
    page.wait_for_selector('[data-testid="flag-decision"]')
    assert "同一访客十分钟内点击二十次" in page.locator('[data-testid="flag-decision"]').inner_text()
    assert page.locator('[data-testid="decision-form"]').count() == 0
    assert not [e for e in errors if "Content Security Policy" in e]
