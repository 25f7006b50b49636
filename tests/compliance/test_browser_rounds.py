"""Review threads in headless Chromium, in zh_CN at 1280 and 390 px: the advisor answers a reviewer's
comment on the package page, and the officer's second-round page shows the first round collapsed
(then opened) with the reply threaded under the comment and the diff against what round 1 saw.
Screenshots are saved for a human to look at; the page must not scroll sideways on a phone."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from advisor_studio.compliance import services as compliance
from advisor_studio.compliance.models import Review, ReviewComment
from advisor_studio.extensions import db
from advisor_studio.studio import services as studio
from advisor_studio.studio.models import Package
from tests.compliance.test_review_pages import people, submit_package, user  # noqa: F401 - people is a fixture
from tests.conftest import screenshot
from tests.studio.test_pages_browser import sign_in

pytestmark = pytest.mark.browser

SRT = ("1\n00:00:01,000 --> 00:00:03,000\n分散投资、长期持有\n\n"
       "2\n00:00:03,000 --> 00:00:05,000\n这只股票下周必有行情\n")
QUESTION = "第3秒的字幕“这只股票下周必有行情”属于荐股表述，请删除或改写。"
REPLY = "已删除该句字幕，改为“市场有风险，投资需谨慎”，并重新渲染了成片。"
WIDTHS = {1280: 800, 390: 844}


def _pages(browser, live_server, record, errors: list[str]):
    """A signed-in page at each width (zh-CN), console errors collected; its context closed after."""
    for width, height in WIDTHS.items():
        context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
        page = context.new_page()
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        sign_in(page, live_server, record)
        yield width, page
        context.close()


def _no_sideways_scroll(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), \
        page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")


def _first_round(app, people) -> tuple[int, int]:  # noqa: F811
    """A package sent back with a reason and a comment at a timecode; (package id, round 1 review id)."""
    package_id, review_id = submit_package(app, people["advisor"], people["compliance"], srt=SRT)
    with app.app_context():
        review = db.session.get(Review, review_id)
        officer = user(people["compliance"])
        compliance.claim(review, officer)
        caption = review.package.caption
        compliance.add_comment(review, officer, "文案请补充风险提示。", anchor_field="caption", anchor_start=0,
                               anchor_end=len(caption))
        compliance.add_comment(review, officer, QUESTION, timecode_ms=3200)
        compliance.decide(review, officer, "request_changes", "字幕含荐股表述，文案缺少风险提示，请修改后重新提交。")
        db.session.commit()
    return package_id, review_id


def test_advisor_replies_and_the_officer_reads_round_one_on_round_two(app, people, live_server, browser):  # noqa: F811
    package_id, first = _first_round(app, people)
    errors: list[str] = []

    for width, page in _pages(browser, live_server, people["advisor"], errors):
        page.goto(f"{live_server}/studio/packages/{package_id}#comments")
        question = page.locator('[data-testid="comment"]', has_text=QUESTION).first
        if width == 1280:  # the advisor answers once; the narrow screen shows the same thread
            question.locator("summary").click()
            question.locator('textarea[name="body"]').fill(REPLY)
            question.locator('[data-testid="reply-submit"]').click()
            page.wait_for_selector(f'[data-testid="comment"]:has-text("{REPLY[:8]}")')
        reply = page.locator('[data-testid="comment"][data-by-author="true"]', has_text=REPLY[:8])
        assert reply.count() == 1 and reply.get_attribute("data-parent-id") == question.get_attribute("data-comment-id")
        reply.scroll_into_view_if_needed()
        _no_sideways_scroll(page)
        screenshot(page, f"threads-advisor-reply-{width}")

    with app.app_context():
        advisor = user(people["advisor"])
        package = db.session.get(Package, package_id)
        studio.update_package(package, advisor, caption="长期配置，理性投资。投资有风险，入市需谨慎。")
        studio.submit_package(package, advisor)
        db.session.commit()
        second = db.session.scalars(sa.select(Review.id).where(Review.package_id == package_id,
                                                               Review.decision.is_(None))).one()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ReviewComment)
                                 .where(ReviewComment.review_id == first)) == 3

    for width, page in _pages(browser, live_server, people["officer2"], errors):
        page.goto(f"{live_server}/compliance/reviews/{second}")
        earlier = page.locator('[data-testid="round"]')
        assert earlier.count() == 1 and earlier.get_attribute("open") is None  # collapsed by default
        assert not page.locator('[data-testid="round"] [data-testid="comment"]').first.is_visible()
        assert page.locator('[data-testid="diff-card"] ins').count() >= 1
        _no_sideways_scroll(page)
        screenshot(page, f"threads-officer-round2-collapsed-{width}")
        earlier.locator("summary").click()
        reply = earlier.locator('[data-testid="comment"][data-by-author="true"]')
        assert reply.is_visible() and REPLY[:8] in reply.inner_text()
        _no_sideways_scroll(page)
        earlier.scroll_into_view_if_needed()
        screenshot(page, f"threads-officer-round2-{width}")
    assert errors == []
