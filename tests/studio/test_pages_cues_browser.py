"""The cue table in headless Chromium, in zh_CN, at 1280 and 390 px: a refused cue keeps what was typed
and says why at its row, "Add cue" (the one script) appends a row, the saved cues come back with their
script lines, under the real CSP; screenshots saved."""

from __future__ import annotations

import pytest

from tests.conftest import screenshot
from tests.studio.test_pages_browser import sign_in
from tests.studio.test_pages_cues import cue_package, package_state
from tests.studio.test_pages_packages import lexicon  # noqa: F401 (autouse)

pytestmark = pytest.mark.browser


def row(page, number: int):
    return page.locator(f'[data-testid="cue-row"][data-key="{number}"]')


def test_cues_are_edited_in_place_and_added_in_chromium(app, users, live_server, page):
    package_id = cue_package(app, users, rendition=True)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    sign_in(page, live_server, users["advisor"])
    page.goto(f"{live_server}/studio/packages/{package_id}")
    assert page.locator('[data-testid="cue-row"]').count() == 4  # three cues and the empty row
    assert row(page, 2).get_attribute("data-status") == "missing"
    assert row(page, 2).locator('[data-testid="cue-flag"]').inner_text() == "不在脚本中"
    assert row(page, 1).locator('[data-testid="cue-match"] .cue-line').inner_text() == "脚本第 2 行"
    screenshot(page, "studio-cues")

    # A cue said differently from the script, and a time typed wrong: refused, the row says why.
    row(page, 2).locator('textarea[name="cues-text"]').fill("债券基金、波动较小，适合稳健配置")
    row(page, 3).locator('input[name="cues-start"]').fill("00：00：06，000")  # as a Chinese input method types it
    row(page, 3).locator('input[name="cues-end"]').fill("5秒")
    page.click('[data-testid="save-package"]')
    page.wait_for_selector('[data-testid="cue-error"]')
    message = row(page, 3).locator('[data-testid="cue-error"]').inner_text()
    assert message.startswith("第 3 条字幕的结束时间“5秒”无法识别"), message
    assert row(page, 3).locator('input[name="cues-end"]').input_value() == "5秒"
    assert row(page, 2).locator('textarea[name="cues-text"]').input_value() == "债券基金、波动较小，适合稳健配置"
    assert package_state(app, package_id)["subtitles"].count(" --> ") == 3
    screenshot(page, "studio-cues-error")

    # Fixed, and one more cue through "Add cue": it starts where the last cue ends.
    row(page, 3).locator('input[name="cues-end"]').fill("00:00:07,000")
    page.click('[data-testid="cue-add"]')
    new = row(page, 5)
    assert new.locator('input[name="cues-start"]').input_value() == "00:00:07,000"
    new.locator('input[name="cues-end"]').fill("00:00:09,000")
    new.locator('textarea[name="cues-text"]').fill("定期再平衡，量力而行")
    page.click('[data-testid="save-package"]')
    page.wait_for_selector('.alert-success')
    stored = package_state(app, package_id)["subtitles"]
    assert stored.endswith("4\n00:00:07,000 --> 00:00:09,000\n定期再平衡，量力而行\n")
    assert "3\n00:00:06,000 --> 00:00:07,000\n" in stored
    assert [row(page, n).get_attribute("data-status") for n in range(1, 6)] == [
        "match", "match", "match", "match", "blank"]

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server}/studio/packages/{package_id}")
    page.locator('[data-testid="subtitles"]').scroll_into_view_if_needed()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), \
        page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    screenshot(page, "studio-cues-mobile")

    # Compliance reads the same table, without inputs.
    page.context.clear_cookies()
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, live_server, users["compliance"])
    page.goto(f"{live_server}/studio/packages/{package_id}")
    assert page.locator('[data-testid="cue-row"]').count() == 4
    assert page.locator('[data-testid="subtitles"] input, [data-testid="subtitles"] textarea').count() == 0
    screenshot(page, "studio-cues-readonly")
    assert [e for e in errors if "Content Security Policy" in e or "Refused" in e] == []
