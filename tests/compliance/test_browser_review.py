"""The compliance pages in headless Chromium: selecting text anchors a comment at the right
character offsets (emoji included), the CSP holds (no inline script or style), and screenshots
of the queue, the review pages and the lexicon are saved for a human to look at.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from advisor_studio.compliance.models import Review, ReviewComment
from advisor_studio.extensions import db
from tests.compliance.test_review_pages import (  # noqa: F401
    decide,
    people,
    resubmit_script,
    submit_package,
    submit_script,
    user,
)
from tests.conftest import screenshot
from tests.factories import legal_script_body

pytestmark = pytest.mark.browser

SRT = ("1\n00:00:01,000 --> 00:00:03,000\n分散投资、长期持有\n\n"
       "2\n00:00:03,000 --> 00:00:05,000\n这只股票下周必有行情\n")


def _sign_in(page, live_server, record):  # noqa: F811
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", record.email)
    page.fill("input[name=password]", record.password)
    page.click('[data-testid="login-submit"]')
    page.wait_for_url(f"{live_server}/")


def test_officer_anchors_a_comment_by_selecting_text(app, people, live_server, page):  # noqa: F811
    first = submit_script(app, people["advisor"])
    decide(app, first, people["officer2"], "request_changes", "请说明长期目标")
    with app.app_context():
        body = legal_script_body(user(people["advisor"])) + "😀我们的目标是财务自由。"
    review_id = resubmit_script(app, first, people["advisor"], body)
    _package_id, package_review = submit_package(app, people["advisor2"], people["officer2"], srt=SRT)
    submit_script(app, people["advisor2"], title="指数基金入门", platforms=("bilibili", "douyin"))
    start = body.index("财务自由")
    violations: list[str] = []

    def drive(page) -> None:
        page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
        _sign_in(page, live_server, people["compliance"])
        assert page.locator('[data-testid="compliance-landing"]').is_visible()
        screenshot(page, "compliance-landing")
        page.goto(f"{live_server}/compliance/queue")
        assert page.locator('[data-testid="queue-row"]').count() == 3
        screenshot(page, "compliance-queue")

        page.goto(f"{live_server}/compliance/reviews/{review_id}")
        page.click('[data-testid="claim"]')
        page.wait_for_selector('[data-testid="release"]')
        assert page.locator('[data-testid="diff-table"] ins').count() >= 1
        # Select "财务自由" in the rendered script, as a reviewer would with the mouse.
        page.evaluate("""(phrase) => {
            const box = document.querySelector('[data-anchor-field="body"]');
            const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
            let node;
            while ((node = walker.nextNode())) {
                const at = node.textContent.indexOf(phrase);
                if (at >= 0) {
                    const range = document.createRange();
                    range.setStart(node, at);
                    range.setEnd(node, at + phrase.length);
                    const sel = window.getSelection();
                    sel.removeAllRanges();
                    sel.addRange(range);
                    box.dispatchEvent(new MouseEvent('mouseup', {bubbles: true}));
                    return;
                }
            }
            throw new Error('phrase not found');
        }""", "财务自由")
        assert page.input_value('input[name="anchor_field"]') == "body"
        assert int(page.input_value('input[name="anchor_start"]')) == start  # code points, not UTF-16 units
        assert int(page.input_value('input[name="anchor_end"]')) == start + 4
        assert page.locator('[data-testid="anchor-preview"]').is_visible()
        page.fill('textarea[name="body"]', "请删除“财务自由”的表述")
        page.click('[data-testid="comment-submit"]')
        page.wait_for_selector('[data-testid="comment-anchor"]')
        with app.app_context():
            comment = db.session.scalars(sa.select(ReviewComment).where(ReviewComment.review_id == review_id)).one()
            assert (comment.anchor_start, comment.anchor_end, comment.anchor_text) == (start, start + 4, "财务自由")
        page.click('[data-testid="comment-anchor"]')
        assert page.evaluate("window.getSelection().toString()") == "财务自由"
        page.check('input[name="decision"][value="request_changes"]')
        assert not page.locator('[data-reject-only]').is_visible()
        page.check('input[name="decision"][value="reject"]')
        assert page.locator('[data-reject-only]').is_visible()
        screenshot(page, "compliance-review")

        page.goto(f"{live_server}/compliance/reviews/{package_review}")
        assert page.locator('[data-testid="review-video"]').count() == 1
        assert page.locator('[data-testid="cue"][data-flagged="1"]').count() == 1
        screenshot(page, "compliance-review-package")

        page.goto(f"{live_server}/compliance/lexicon")
        assert page.locator('[data-testid="rule-row"]').count() == 25
        screenshot(page, "compliance-lexicon")
        page.fill('[data-testid="try-form"] textarea[name="text"]', "跟我买，稳 赚 不 赔！")
        page.click('[data-testid="try-form"] button[type="submit"]')
        page.wait_for_selector('[data-testid="try-result"]')
        screenshot(page, "compliance-lexicon-try")
        assert violations == []
        with app.app_context():
            assert db.session.get(Review, review_id).claimed_by_id == people["compliance"].id

    drive(page)
