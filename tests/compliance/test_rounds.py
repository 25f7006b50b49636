"""A resubmission's review page shows the earlier rounds (decisions, reasons, comments, the author's
replies; collapsed, newest first, who and when in Beijing time) and the diff against what the
previous decided round saw, for scripts and packages, in a fixed number of SQL statements."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from advisor_studio.compliance import services as compliance
from advisor_studio.compliance.models import Review, ReviewComment
from advisor_studio.extensions import db
from advisor_studio.studio import services as studio
from advisor_studio.studio.models import Package
from tests.compliance.test_queue import _statements
from tests.compliance.test_review_pages import (  # noqa: F401 - people is a fixture
    _page,
    people,
    resubmit_script,
    submit_package,
    submit_script,
    user,
)
from tests.conftest import signed_in
from tests.factories import legal_script_body, make_ready_rendition

SRT_1 = "1\n00:00:01,000 --> 00:00:03,000\n分散投资、长期持有\n"
SRT_2 = "1\n00:00:01,000 --> 00:00:03,000\n分散配置、长期持有\n"


def _decide(app, review_id: int, officer, decision: str, reason: str, *, comment: str | None = None,
            reply: str | None = None, decided_at: datetime | None = None) -> None:
    """Claim, comment, let the author reply, decide; optionally pin the decision time."""
    with app.app_context():
        review = db.session.get(Review, review_id)
        compliance.claim(review, user(officer))
        if comment:
            top = compliance.add_comment(review, user(officer), comment)
            if reply:
                compliance.add_comment(review, review.author, reply, parent=top)
        compliance.decide(review, user(officer), decision, reason)
        if decided_at is not None:
            review.decided_at = decided_at
        db.session.commit()


def _rounds(page: str) -> list[tuple[str, str, str]]:
    """(review id, decision, whether open) of each earlier round, in page order."""
    return re.findall(r'<details class="review-round[^"]*"( open)? data-testid="round" data-review-id="(\d+)" '
                      r'data-decision="([a-z_]+)"', page)


def _round_html(page: str, review_id: int) -> str:
    start = page.index(f'data-testid="round" data-review-id="{review_id}"')
    return page[start:page.index("</details>", start)]


def test_second_round_shows_the_first_rounds_decision_thread_and_diff(app, people):  # noqa: F811 - the fixture imported above
    first = submit_script(app, people["advisor"])
    decided_at = datetime(2026, 11, 20, 2, 5, tzinfo=UTC)  # 10:05 in Beijing
    _decide(app, first, people["compliance"], "request_changes", "请删去“稳健增长”的表述",
            comment="第二句有收益暗示", reply="已改为“长期配置”", decided_at=decided_at)
    with app.app_context():
        body = legal_script_body(user(people["advisor"]))
    second = resubmit_script(app, first, people["advisor"], body.replace("分散投资", "分散配置"))

    page = _page(signed_in(app, people["officer2"]), f"/compliance/reviews/{second}")
    assert 'data-testid="round-number" data-round="2"' in page
    assert _rounds(page) == [("", str(first), "request_changes")]  # collapsed by default
    earlier = _round_html(page, first)
    assert "第 1 轮" in earlier and "请删去“稳健增长”的表述" in earlier
    assert people["compliance"].name in earlier and "2026-11-20 10:05" in earlier  # Beijing time
    with app.app_context():
        top, reply = db.session.scalars(sa.select(ReviewComment).where(ReviewComment.review_id == first)
                                        .order_by(ReviewComment.id)).all()
        top_id, reply_id = top.id, reply.id
    assert f'data-comment-id="{reply_id}" data-parent-id="{top_id}" data-by-author="true"' in earlier
    assert earlier.index("第二句有收益暗示") < earlier.index("已改为“长期配置”")
    assert 'data-testid="reply-form"' not in earlier  # earlier rounds are read, not answered, here
    assert "北京时间" in page

    diff = page[page.index('data-testid="diff-card"'):]
    assert "与第 1 轮相比的改动" in diff
    assert re.findall(r'data-testid="diff-field" data-field="(\w+)"', diff) == ["body"]
    assert "<del>投资</del>" in diff and "<ins>配置</ins>" in diff

    first_page = _page(signed_in(app, people["officer2"]), f"/compliance/reviews/{first}")
    assert 'data-testid="earlier-rounds"' not in first_page and 'data-testid="round-number"' not in first_page
    assert 'data-testid="diff-table"' not in first_page


def test_rounds_are_newest_first_and_the_diff_is_against_the_newest_decided_one(app, people):  # noqa: F811 - the fixture imported above
    with app.app_context():
        body = legal_script_body(user(people["advisor"]))
    first = submit_script(app, people["advisor"])
    _decide(app, first, people["compliance"], "request_changes", "第一轮：请补充")
    second = resubmit_script(app, first, people["advisor"], body + "第二版新增一句。")
    _decide(app, second, people["officer2"], "request_changes", "第二轮：还需修改")
    third = resubmit_script(app, second, people["advisor"], body + "第三版新增一句。")

    page = _page(signed_in(app, people["compliance"]), f"/compliance/reviews/{third}")
    assert [(rid, decision) for _open, rid, decision in _rounds(page)] == [
        (str(second), "request_changes"), (str(first), "request_changes")]
    assert "第 2 轮" in _round_html(page, second) and "第 1 轮" in _round_html(page, first)
    assert 'data-round="3"' in page
    diff = page[page.index('data-testid="diff-card"'):]
    assert "与第 2 轮相比的改动" in diff
    assert "<del>二</del>" in diff and "<ins>三</ins>" in diff


def test_package_second_round_diffs_the_manifest_texts_and_names_what_else_changed(app, people):  # noqa: F811 - the fixture imported above
    package_id, first = submit_package(app, people["advisor"], people["compliance"], srt=SRT_1)
    _decide(app, first, people["officer2"], "request_changes", "文案与字幕需要调整", comment="第2秒字幕请改",
            reply="已改字幕")
    with app.app_context():
        advisor = user(people["advisor"])
        package = db.session.get(Package, package_id)
        studio.update_package(package, advisor, caption="长期配置，理性投资", subtitles=SRT_2.encode())
        rerendered = make_ready_rendition(package, b"\x00\x00\x00\x18ftypmp42 rendered with the new subtitles")
        studio.set_rendition(package, rerendered, advisor)
        studio.submit_package(package, advisor)
        db.session.commit()
        second = db.session.scalars(sa.select(Review.id).where(Review.package_id == package_id,
                                                               Review.decision.is_(None))).one()
    page = _page(signed_in(app, people["compliance"]), f"/compliance/reviews/{second}")
    assert [(rid, decision) for _open, rid, decision in _rounds(page)] == [(str(first), "request_changes")]
    assert "已改字幕" in _round_html(page, first)
    diff = page[page.index('data-testid="diff-card"'):page.index('data-testid="rendition-card"')]
    assert re.findall(r'data-testid="diff-field" data-field="(\w+)"', diff) == ["caption", "subtitles"]
    assert "<del>投资</del>" in diff and "<ins>配置</ins>" in diff
    assert re.findall(r'data-item="(\w+)"', diff) == ["rendition_sha256"]  # the channels and links stayed


def test_the_review_page_costs_the_same_statements_with_more_rounds_and_comments(app, people):  # noqa: F811 - the fixture imported above
    with app.app_context():
        body = legal_script_body(user(people["advisor"]))
    first = submit_script(app, people["advisor"])
    _decide(app, first, people["compliance"], "request_changes", "请修改", comment="一", reply="好")
    second = resubmit_script(app, first, people["advisor"], body + "第二版。")
    client = signed_in(app, people["officer2"])
    client.get(f"/compliance/reviews/{second}")  # warm-up (scanner cache, babel)
    few = len(_statements(app, client, f"/compliance/reviews/{second}"))

    _decide(app, second, people["compliance"], "request_changes", "再改", comment="二", reply="好的")
    with app.app_context():
        review = db.session.get(Review, second)
        for n in range(6):
            compliance.add_comment(review, user(people["compliance"]), f"补充意见{n}")
        db.session.commit()
    third = resubmit_script(app, second, people["advisor"], body + "第三版。")
    client.get(f"/compliance/reviews/{third}")
    many = len(_statements(app, client, f"/compliance/reviews/{third}"))
    assert many == few, (few, many)


def test_times_on_the_rounds_are_beijing_time_not_utc(app, people):  # noqa: F811 - the fixture imported above
    first = submit_script(app, people["advisor"])
    late = datetime(2026, 11, 20, 17, 30, tzinfo=UTC)  # the next morning in Beijing
    _decide(app, first, people["compliance"], "request_changes", "请修改", decided_at=late)
    with app.app_context():
        body = legal_script_body(user(people["advisor"]))
    second = resubmit_script(app, first, people["advisor"], body + "修改版。")
    earlier = _round_html(_page(signed_in(app, people["officer2"]), f"/compliance/reviews/{second}"), first)
    beijing = late + timedelta(hours=8)
    assert beijing.strftime("%Y-%m-%d %H:%M") in earlier and "2026-11-20 17:30" not in earlier
