"""The mcn portal and compliance's overdue panel in headless Chromium, at desktop and phone widths:
the pages render under the real CSP, the copy button copies, the take-down asks for confirmation,
and screenshots are saved for a human to look at."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from advisor_studio.distribution.models import Assignment
from advisor_studio.extensions import db
from tests.conftest import screenshot, signed_in
from tests.distribution.portal_helpers import approved_asset, channel, partner_user, withdraw
from tests.distribution.test_portal import publication_ids, publish

pytestmark = pytest.mark.browser
PARTNER = "星河MCN"


def _sign_in(page, live_server, user) -> None:
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", user.password)
    page.click('[data-testid="login-submit"]')
    page.wait_for_url(f"{live_server}/")


def _portal_world(app, users):
    douyin, kuaishou = channel(app, PARTNER, "douyin", "@xinghe_licai"), channel(app, PARTNER, "kuaishou", "xinghe")
    _live_pkg, (live,) = approved_asset(app, users, [douyin], title="资产配置三原则")
    ended_pkg, (ended,) = approved_asset(app, users, [kuaishou], title="长期持有的理由")
    user = partner_user(app, PARTNER)
    client = signed_in(app, user)
    publish(client, ended, "https://www.kuaishou.com/short-video/3x9")
    publish(client, ended, "https://www.kuaishou.com/short-video/3x10")
    withdraw(app, users, ended_pkg)
    with app.app_context():  # one deadline already passed, so compliance has something overdue
        db.session.get(Assignment, ended).takedown_due_at = datetime.now(UTC) - timedelta(hours=2)
        db.session.commit()
    return user, live, ended


@pytest.mark.parametrize("width", [1280, 390])
def test_portal_pages_and_overdue_panel_in_chromium(app, users, live_server, browser, width):
    user, live, ended = _portal_world(app, users)
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="zh-CN")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        _sign_in(page, live_server, user)
        page.goto(f"{live_server}/portal/assets")
        assert page.locator('[data-testid="asset-card"]').count() == 2
        screenshot(page, f"portal-assets-{width}")

        page.goto(f"{live_server}/portal/assets/{live}")
        copy = page.locator('[data-testid="copy-caption"]')
        assert copy.is_visible()  # shown once JavaScript runs
        copy.click()
        assert page.evaluate("navigator.clipboard.readText()") == "长期投资"
        assert page.locator('[data-testid="asset-video"]').is_visible()
        screenshot(page, f"portal-asset-{width}")

        page.goto(f"{live_server}/portal/assets/{ended}")
        first = publication_ids(app, ended)[0]
        form = page.locator(f'#post-{first} [data-testid="takedown-form"]')
        form.locator("input[type=checkbox]").check()
        dialogs: list[str] = []
        page.once("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        form.locator('[data-testid="confirm-takedown"]').click()
        assert dialogs and page.locator('[data-testid="takedown-form"]').count() == 2  # dismissed: nothing sent
        screenshot(page, f"portal-asset-ended-{width}")

        page.goto(f"{live_server}/portal/publications")
        screenshot(page, f"portal-publications-{width}")
        page.context.clear_cookies()
        _sign_in(page, live_server, users["compliance"])
        assert page.locator('[data-testid="overdue-takedown"]').count() == 1
        page.locator('[data-testid="overdue-takedowns"]').scroll_into_view_if_needed()
        screenshot(page, f"compliance-overdue-takedowns-{width}")
        assert errors == []
    finally:
        context.close()
