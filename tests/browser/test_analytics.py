"""The funnel page draws its ECharts charts under the app's Content-Security-Policy, on a desktop and on
a phone-wide screen (where the table scrolls inside its box instead of widening the page)."""

from __future__ import annotations

import pytest

from advisor_studio.analytics import rollups
from advisor_studio.extensions import db
from tests.analytics.conftest import make_channel_link, make_group_link, traffic_batch
from tests.browser.test_referrals import sign_in
from tests.conftest import screenshot

pytestmark = pytest.mark.browser


@pytest.fixture
def traffic(app, users):
    with app.app_context():
        links = [make_channel_link(users["advisor"].id, campaign="双十一"), make_group_link(users["advisor"].id)]
        for batch in range(3):
            traffic_batch(links, batch)
        db.session.commit()
        rollups.rebuild()


@pytest.mark.parametrize("width", [1280, 390])
def test_funnel_page_draws_its_charts_and_fits_the_screen(app, live_server, browser, users, traffic, width):
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        sign_in(page, live_server, users["admin"])
        page.goto(f"{live_server}/analytics/?by=group")
        for name in ("funnel", "daily", "bars"):
            page.wait_for_selector(f'[data-chart="{name}"] canvas')
        assert page.locator('[data-testid="freshness"]').is_visible()
        assert page.locator('[data-testid="funnel-row"]').count() == 2  # the group, and links without one
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, overflow
        screenshot(page, f"analytics-funnel-{width}")
        page.click('[data-testid="analytics-tabs"] a[href*="/analytics/leaderboard"]')
        page.wait_for_selector('[data-testid="leaderboard-table"]')
        page.click('[data-testid="analytics-tabs"] a[href*="/analytics/aarrr"]')
        page.wait_for_selector('[data-testid="aarrr"]')
        screenshot(page, f"analytics-aarrr-{width}")
    finally:
        context.close()
    assert errors == []
