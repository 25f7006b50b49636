"""An admin sets up a partner in the browser: create, see the key once, add a channel, revoke the key."""

from __future__ import annotations

import pytest

from tests.conftest import screenshot

pytestmark = pytest.mark.browser


def test_admin_creates_partner_adds_channel_and_revokes_a_key(live_server, page, users):
    admin = users["admin"]
    page.on("dialog", lambda dialog: dialog.accept())  # the data-confirm prompts of destructive forms
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", admin.email)
    page.fill("input[name=password]", admin.password)
    page.click('[data-testid="login-submit"]')
    page.wait_for_url(f"{live_server}/")

    page.goto(f"{live_server}/admin/partners")
    assert page.locator('[data-testid="empty-state"]').is_visible()
    page.click('[data-testid="partner-new"]')
    page.fill("input[name=name]", "蓝海MCN")
    page.fill("input[name=contact_email]", "ops@lanhai.example.com")
    page.click('[data-testid="partner-save"]')
    key = page.locator('[data-testid="raw-key"]').input_value()
    assert key.startswith("as_live_")
    screenshot(page, "admin-partner-key-once")

    page.locator("main a.btn-primary").click()
    page.wait_for_load_state()
    assert key not in page.content() and key[:12] in page.content()
    screenshot(page, "admin-partner-page")

    page.goto(f"{live_server}/admin/channels/new")
    page.select_option("select[name=platform]", "other")
    page.fill("input[name=handle]", "@lanhai_other")
    page.fill("input[name=follower_count]", "1200")
    page.click('[data-testid="channel-save"]')
    assert page.locator('[data-testid="channel-row"]').count() == 1
    screenshot(page, "admin-channels")

    page.goto(f"{live_server}/admin/partners")
    page.click("text=蓝海MCN")
    page.click('[data-testid="key-row"] summary')
    form = page.locator('[data-testid="key-revoke-form"]')
    form.locator("input[name=reason]").fill("轮换")
    form.locator("input[name=confirm]").check()
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert page.locator('[data-testid="key-revoke-form"]').count() == 0
    screenshot(page, "admin-partner-key-revoked")
