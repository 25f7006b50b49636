"""Phone and desktop screens in headless Chromium (zh_CN): at 390 px the findings tables (review page,
studio pages), the lexicon and its history and the audit log fit the screen - no sideways page scroll,
no table cell narrower than 40 px - and long titles end in an ellipsis in the breadcrumbs; the admin
user form shows each role's fields only while that role is ticked. Screenshots at 1280 and 390 px."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from advisor_studio.compliance.models import Review
from advisor_studio.extensions import db
from tests.conftest import screenshot
from tests.factories import ensure_lexicon
from tests.studio.test_pages import create_script, legal_body

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
LONG_TITLE = "关于长期资产配置、分散投资与控制回撤的三个基本原则以及投资者最常见的七个误区的详细讲解与案例分析"

# Width of the page's content and every visible table cell narrower than 40 px (with its text).
MEASURE = """() => {
  const narrow = [];
  for (const cell of document.querySelectorAll('main td, main th')) {
    const box = cell.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;  // not displayed (a stacked table's header)
    if (box.width < 40) narrow.push(`${cell.tagName} ${Math.round(box.width)}px “${cell.innerText.slice(0, 12)}”`);
  }
  return {scrollWidth: document.documentElement.scrollWidth, narrow: narrow};
}"""


def sign_in(context, live_server, user):
    page = context.new_page()
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", user.password)
    page.click('[data-testid="login-submit"]')
    page.wait_for_url(f"{live_server}/")
    return page


@pytest.fixture
def content(app, users):
    """A submitted script with a long title and a warning (its review has findings), and a draft whose
    pre-check finds blocking phrases."""
    with app.app_context():
        ensure_lexicon()
        db.session.commit()
    body = legal_body(app, users["advisor"].id) + "\n这类配置思路不追求短期收益翻倍。"
    submitted = create_script(app, users["advisor"].id, title=LONG_TITLE, body=body, submit=True)
    draft = create_script(app, users["advisor"].id, title="草稿",
                          body="保证收益翻倍，稳赚不赔！跟我买600519，下周必涨。加我微信进群领取内幕消息。")
    with app.app_context():
        review = db.session.scalar(sa.select(Review.id).where(Review.script_id == submitted))
    return {"submitted": submitted, "draft": draft, "review": review}


def pages_of(content) -> dict[str, list[tuple[str, str]]]:
    """(screenshot name, path) per role: every page with a findings table, the lexicon and the audit log."""
    return {
        "advisor": [("script-findings", f"/studio/scripts/{content['draft']}?precheck=1"),
                    ("script-long-title", f"/studio/scripts/{content['submitted']}"),
                    ("script-revisions", f"/studio/scripts/{content['submitted']}/revisions")],
        "compliance": [("review-findings", f"/compliance/reviews/{content['review']}"),
                       ("lexicon", "/compliance/lexicon"),
                       ("lexicon-history", "/compliance/lexicon/versions"),
                       ("audit-log", "/audit")],
    }


@pytest.mark.parametrize("role", ["advisor", "compliance"])
def test_tables_fit_a_390_px_phone_and_read_as_cards(browser, live_server, users, content, role):
    phone = browser.new_context(viewport=PHONE, locale="zh-CN", device_scale_factor=1)
    desktop = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    try:
        on_phone, on_desktop = sign_in(phone, live_server, users[role]), sign_in(desktop, live_server, users[role])
        for name, path in pages_of(content)[role]:
            on_phone.goto(f"{live_server}{path}")
            measured = on_phone.evaluate(MEASURE)
            assert measured["scrollWidth"] <= 390, (path, measured)
            assert measured["narrow"] == [], (path, measured["narrow"])
            screenshot(on_phone, f"phone-{name}")
            on_desktop.goto(f"{live_server}{path}")
            screenshot(on_desktop, f"desktop-{name}")
        if role == "compliance":
            # Stacked on the phone, an ordinary table with its header row on the desktop.
            on_phone.goto(f"{live_server}/compliance/lexicon")
            on_desktop.goto(f"{live_server}/compliance/lexicon")
            assert not on_phone.locator('[data-testid="rules-table"] thead').is_visible()
            assert on_desktop.locator('[data-testid="rules-table"] thead').is_visible()
            label = on_phone.evaluate("""() => getComputedStyle(
                document.querySelector('[data-testid="rule-row"] td'), '::before').content""")
            assert label == '"词语"'
    finally:
        phone.close()
        desktop.close()


def test_a_long_title_ends_in_an_ellipsis_in_the_breadcrumb(browser, live_server, users, content):
    phone = browser.new_context(viewport=PHONE, locale="zh-CN")
    try:
        page = sign_in(phone, live_server, users["advisor"])
        for path in (f"/studio/scripts/{content['submitted']}", f"/studio/scripts/{content['submitted']}/revisions"):
            page.goto(f"{live_server}{path}")
            crumbs = page.evaluate("""() => [...document.querySelectorAll('.breadcrumb-item')].map(li => ({
                top: li.getBoundingClientRect().top, right: li.getBoundingClientRect().right,
                title: li.getAttribute('title'), cut: li.scrollWidth > li.clientWidth, text: li.innerText}))""")
            assert len({round(c["top"]) for c in crumbs}) == 1, crumbs  # one line
            assert all(c["right"] <= 390 for c in crumbs), crumbs
            [titled] = [c for c in crumbs if c["title"]]
            assert titled["title"] == LONG_TITLE and titled["cut"], titled
            assert next(c for c in crumbs if not c["title"])["cut"] is False  # "脚本" keeps its width
    finally:
        phone.close()


def test_user_form_shows_role_fields_only_while_the_role_is_ticked(page, live_server, users):
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", users["admin"].email)
    page.fill("input[name=password]", users["admin"].password)
    page.click('[data-testid="login-submit"]')
    page.wait_for_url(f"{live_server}/")
    page.goto(f"{live_server}/admin/users/new")
    advisor, partner = page.locator('[data-role-section="advisor"]'), page.locator('[data-role-section="mcn"]')
    assert not advisor.is_visible() and not partner.is_visible()
    page.check('input[name=roles][value=advisor]')
    assert advisor.is_visible() and page.locator("input[name=sac_number]").is_enabled()
    assert not partner.is_visible() and page.locator("select[name=partner_id]").is_disabled()
    page.check('input[name=roles][value=mcn]')
    assert partner.is_visible()
    screenshot(page, "desktop-user-form-roles")
    page.uncheck('input[name=roles][value=advisor]')
    assert not advisor.is_visible() and page.locator("input[name=sac_number]").is_disabled()
    # Submitted without a partner: the page answers with the problems, the sections still follow the roles.
    page.fill("input[name=email]", "new.mcn@example.com")
    page.fill("input[name=name]", "新同事")
    page.fill("input[name=password]", "short")
    page.click("main form button[type=submit]")
    page.wait_for_load_state()
    assert page.locator(".invalid-feedback:visible").count() >= 2  # password and partner, at once
    assert partner.is_visible() and not advisor.is_visible()
    screenshot(page, "desktop-user-form-errors")
