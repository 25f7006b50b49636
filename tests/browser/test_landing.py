"""Each role signs in through the real login form and sees its landing page."""

from __future__ import annotations

import pytest

from tests.conftest import screenshot

pytestmark = pytest.mark.browser

MENU = {
    "advisor": [],
    "compliance": ["审计日志"],
    "mcn": [],
    "admin": ["用户", "审计日志"],
}


@pytest.mark.parametrize("role", ["advisor", "compliance", "mcn", "admin"])
def test_role_signs_in_and_sees_landing_page(live_server, page, users, role):
    user = users[role]
    page.goto(f"{live_server}/")
    assert "/login" in page.url
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", user.password)
    page.click('[data-testid="login-submit"]')
    page.wait_for_url(f"{live_server}/")
    assert page.locator(f'[data-testid="landing-{role}"]').is_visible()
    nav = page.locator("#mainnav").inner_text()
    for label in MENU[role]:
        assert label in nav
    if role != "admin":
        assert "用户" not in nav.split()
    path = screenshot(page, f"landing-{role}")
    assert path.stat().st_size > 10_000


def test_language_switch_to_english_and_back(live_server, page, users):
    user = users["admin"]
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", user.password)
    page.click('[data-testid="login-submit"]')
    page.wait_for_url(f"{live_server}/")
    page.click('[data-testid="lang-switch"]')
    page.wait_for_load_state()
    assert "Users" in page.locator("#mainnav").inner_text()
    screenshot(page, "landing-admin-en")
    page.click('[data-testid="lang-switch"]')
    page.wait_for_load_state()
    assert "用户" in page.locator("#mainnav").inner_text()
