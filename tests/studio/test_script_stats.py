"""The character count and speaking time beside the script text."""

from __future__ import annotations

from advisor_studio.studio.services import speaking_stats
from tests.conftest import signed_in
from tests.studio.test_pages import by_testid, create_script


def test_speaking_stats_count_characters_without_whitespace():
    assert speaking_stats("") == {"chars": 0, "seconds": 0}
    assert speaking_stats("分散 投资\n长期持有") == {"chars": 8, "seconds": 2}
    assert speaking_stats("字" * 270) == {"chars": 270, "seconds": 60}


def test_script_page_shows_the_count_and_the_time_and_loads_the_live_updater(app, users):
    body = "投" * 300
    script_id = create_script(app, users["advisor"].id, body=body)
    page = signed_in(app, users["advisor"]).get(f"/studio/scripts/{script_id}")
    [stats] = by_testid(page, "body-stats")
    text = page.get_data(as_text=True)
    assert "300" in text.split('data-testid="body-stats"', 1)[1].split("</div>", 1)[0]
    assert "1 分 7 秒" in text.split('data-testid="body-stats"', 1)[1].split("</div>", 1)[0]
    assert "js/script_stats.js" in text
