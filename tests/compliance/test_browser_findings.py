"""Clicking a finding selects its text, in headless Chromium: in the advisor's editor (textarea
offsets in UTF-16 units although findings count code points, so an emoji comes first), in the
officer's highlighted copy, and in the try-the-scanner box; no CSP violation on the way.
Screenshots of the findings in zh_CN are saved for a human to look at.
"""

from __future__ import annotations

import pytest

from advisor_studio.extensions import db
from advisor_studio.studio import services as studio
from tests.compliance.test_review_pages import people, submit_script, user  # noqa: F401
from tests.conftest import screenshot
from tests.factories import legal_script_body

pytestmark = pytest.mark.browser

TEXTAREA_SELECTION = "(name) => { const el = document.querySelector('[data-finding-editor] [name=\"' + name + '\"]');" \
                     " return el.value.substring(el.selectionStart, el.selectionEnd); }"


def _sign_in(page, live_server, record):
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", record.email)
    page.fill("input[name=password]", record.password)
    page.click('[data-testid="login-submit"]')
    page.wait_for_url(f"{live_server}/")


def _watch_csp(page) -> list[str]:
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    return violations


def test_advisor_clicks_a_finding_and_the_editor_selects_it(app, people, live_server, page):  # noqa: F811
    with app.app_context():
        advisor = user(people["advisor"])
        body = "😀" + legal_script_body(advisor) + "这个方法绝对靠谱，赶紧上车。"
        script = studio.create_script(advisor, title="资产配置", body=body, caption="长期投资",
                                      hashtags="理财", platforms=["douyin"])
        db.session.commit()
        script_id = script.id
    violations = _watch_csp(page)
    _sign_in(page, live_server, people["advisor"])
    page.goto(f"{live_server}/studio/scripts/{script_id}")
    page.click('[data-testid="precheck"]')
    page.wait_for_selector('[data-testid="findings"]')
    screenshot(page, "studio-findings-zh")
    page.click('[data-testid="finding"][data-field="body"] [data-finding-select][data-text="赶紧上车"]')
    assert page.evaluate(TEXTAREA_SELECTION, "body") == "赶紧上车"
    assert page.evaluate("document.activeElement.name") == "body"
    page.click('[data-testid="finding"][data-field="body"] [data-finding-select][data-text="绝对"]')
    assert page.evaluate(TEXTAREA_SELECTION, "body") == "绝对"
    assert page.locator("tr.finding-selected").count() == 1
    # Once the text is edited the span no longer holds the finding: the highlighted copy is selected.
    page.fill('[data-finding-editor] [name="body"]', "改过的正文")
    page.click('[data-testid="finding"][data-field="body"] [data-finding-select][data-text="绝对"]')
    assert page.evaluate("window.getSelection().toString()") == "绝对"
    assert violations == []


def test_officer_clicks_a_finding_and_the_highlighted_text_is_selected(app, people, live_server, page):  # noqa: F811
    review_id = submit_script(app, people["advisor"], extra_body="😀这个方法绝对靠谱。")
    violations = _watch_csp(page)
    _sign_in(page, live_server, people["compliance"])
    page.goto(f"{live_server}/compliance/reviews/{review_id}")
    page.click('[data-testid="finding-row"][data-rule="forbidden_phrase"] [data-finding-select]')
    assert page.evaluate("window.getSelection().toString()") == "绝对"
    screenshot(page, "compliance-review-findings-zh")

    page.goto(f"{live_server}/compliance/lexicon/try")
    page.fill('[data-testid="try-form"] textarea[name="text"]', "😀行情来了赶紧上车！")
    page.click('[data-testid="try-form"] button[type="submit"]')
    page.wait_for_selector('[data-testid="try-result"]')
    page.click('[data-finding-select][data-text="赶紧上车"]')
    assert page.evaluate(TEXTAREA_SELECTION, "text") == "赶紧上车"
    screenshot(page, "compliance-lexicon-try-findings-zh")
    assert violations == []
