"""The advisor answers a reviewer's comment on their own script or package page: CSRF, validation,
only the author, only while the content is in discussion; the reply is audited, threads under the
comment on the advisor's page and on the officer's review page, and stays through later rounds."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from advisor_studio import audit
from advisor_studio.accounts.models import User
from advisor_studio.compliance.models import Review, ReviewComment
from advisor_studio.compliance.services import COMMENT_MAX
from advisor_studio.extensions import db
from advisor_studio.studio import services as studio
from advisor_studio.studio.models import Package, Script
from tests.conftest import csrf_from, signed_in
from tests.studio.test_pages import (
    attr,
    by_testid,
    create_script,
    decide_open_review,
    html,
    lexicon,  # noqa: F401 - fixture
    package_for,
)

REASON = "请在第二段补充风险提示的位置"
QUESTION = "“长期持有”请说明持有期限"


def _changes_requested_script(app, users) -> tuple[int, int]:
    """A script sent back with a reviewer's comment; (script id, comment id)."""
    script_id = create_script(app, users["advisor"].id, submit=True)
    decide_open_review(app, users["compliance"].id, "request_changes", REASON, script_id=script_id, comment=QUESTION)
    return script_id, _comment_id(app, Review.script_id == script_id, Review.stage == "script")


def _changes_requested_package(app, users) -> tuple[int, int]:
    """A package sent back with a reviewer's comment; (package id, comment id)."""
    package_id = package_for(app, users["advisor"].id, users["compliance"].id, rendition=True)
    with app.app_context():
        studio.submit_package(db.session.get(Package, package_id), db.session.get(User, users["advisor"].id))
        db.session.commit()
    decide_open_review(app, users["compliance"].id, "request_changes", REASON, package_id=package_id,
                       comment=QUESTION)
    return package_id, _comment_id(app, Review.package_id == package_id)


def _comment_id(app, *where) -> int:
    with app.app_context():
        return db.session.scalars(sa.select(ReviewComment.id).join(Review).where(*where)).one()


def _replies(app, parent_id: int) -> list[tuple[int, int, str]]:
    with app.app_context():
        rows = db.session.execute(sa.select(ReviewComment.author_id, ReviewComment.review_id, ReviewComment.body)
                                  .where(ReviewComment.parent_id == parent_id).order_by(ReviewComment.id))
        return [tuple(r) for r in rows]


def _comment_count(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(ReviewComment))


def _token(client, url: str) -> str:
    resp = client.get(url)
    assert resp.status_code == 200, (url, resp.status_code)
    return csrf_from(html(resp))


@pytest.fixture(params=["script", "package"])
def sent_back(request, app, users, lexicon):  # noqa: F811 - the fixture imported above
    """(page url, replies url, comment id) of a script or package sent back with a comment."""
    if request.param == "script":
        script_id, comment_id = _changes_requested_script(app, users)
        return f"/studio/scripts/{script_id}", f"/studio/scripts/{script_id}/replies", comment_id
    package_id, comment_id = _changes_requested_package(app, users)
    return f"/studio/packages/{package_id}", f"/studio/packages/{package_id}/replies", comment_id


def test_author_replies_under_the_comment_and_both_pages_show_it_threaded(app, users, sent_back):
    page_url, replies_url, comment_id = sent_back
    client = signed_in(app, users["advisor"])
    page = client.get(page_url)
    [form] = by_testid(page, "reply-form")
    assert attr(form, "action") == replies_url

    resp = client.post(replies_url, data={"parent_id": comment_id, "body": "  已补充：持有期限为三年以上  ",
                                          "csrf_token": csrf_from(html(page))})
    assert resp.status_code == 302
    [(author_id, review_id, body)] = _replies(app, comment_id)
    assert (author_id, body) == (users["advisor"].id, "已补充：持有期限为三年以上")
    with app.app_context():
        reply_id = db.session.scalars(sa.select(ReviewComment.id).where(ReviewComment.parent_id == comment_id)).one()
        assert review_id == db.session.get(ReviewComment, comment_id).review_id
        entry = db.session.scalars(sa.select(audit.AuditEntry).where(audit.AuditEntry.action == "review.replied")).one()
        assert (entry.object_type, entry.object_id, entry.actor_id) == ("review", str(review_id), users["advisor"].id)
        assert entry.details == {"comment_id": reply_id, "parent_id": comment_id}
    assert resp.headers["Location"].endswith(f"{page_url}#comment-{reply_id}")

    for reader, url in ((users["advisor"], page_url), (users["compliance"], f"/compliance/reviews/{review_id}")):
        shown = signed_in(app, reader).get(url)
        assert shown.status_code == 200
        threads = {attr(t, "data-comment-id"): (attr(t, "data-parent-id"), attr(t, "data-by-author"))
                   for t in by_testid(shown, "comment")}
        assert threads[str(comment_id)] == ("", "false") and threads[str(reply_id)] == (str(comment_id), "true")
        text = html(shown)
        # The reply is inside the comment's thread element, after the question.
        assert text.index(QUESTION) < text.index("已补充：持有期限为三年以上")


@pytest.mark.parametrize("role", ["anonymous", "advisor2", "compliance", "mcn", "admin"])
def test_only_the_author_may_reply(app, users, sent_back, role):
    page_url, replies_url, comment_id = sent_back
    client = app.test_client() if role == "anonymous" else signed_in(app, users[role])
    token = _token(client, "/login" if role == "anonymous" else "/account/password")  # a valid token of their own
    resp = client.post(replies_url, data={"parent_id": comment_id, "body": "我来替他回复", "csrf_token": token})
    if role == "anonymous":
        assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    else:
        assert resp.status_code == 403
    assert _replies(app, comment_id) == []
    if role in ("compliance", "admin"):  # readers of the page see the thread but no reply form
        assert not by_testid(client.get(page_url), "reply-form")


def test_a_reply_without_the_csrf_token_is_refused(app, users, sent_back):
    page_url, replies_url, comment_id = sent_back
    client = signed_in(app, users["advisor"])
    client.get(page_url)
    resp = client.post(replies_url, data={"parent_id": comment_id, "body": "没有令牌的回复"})
    assert resp.status_code == 400
    resp = client.post(replies_url, data={"parent_id": comment_id, "body": "伪造令牌", "csrf_token": "forged"})
    assert resp.status_code == 400
    assert _replies(app, comment_id) == []


@pytest.mark.parametrize("body,stored", [("", False), (" \n\t ", False), ("长" * (COMMENT_MAX + 1), False),
                                         ("长" * COMMENT_MAX, True)])
def test_empty_and_oversized_replies_are_refused_with_the_text_kept(app, users, sent_back, body, stored):
    page_url, replies_url, comment_id = sent_back
    client = signed_in(app, users["advisor"])
    resp = client.post(replies_url, data={"parent_id": comment_id, "body": body,
                                          "csrf_token": _token(client, page_url)})
    if stored:
        assert resp.status_code == 302
        assert [len(b) for _a, _r, b in _replies(app, comment_id)] == [COMMENT_MAX]
        return
    assert resp.status_code == 400
    assert _replies(app, comment_id) == []
    [error] = by_testid(resp, "reply-error")
    assert error
    text = html(resp)
    expected = "请先写下回复内容。" if not body.strip() else f"回复最多 {COMMENT_MAX} 个字"
    assert expected in text
    if body.strip():  # what was typed is handed back, under the comment it answered
        assert "长" * 100 in text.split(f'name="parent_id" value="{comment_id}"', 1)[1]


def test_a_comment_on_someone_elses_content_is_not_found(app, users, lexicon):  # noqa: F811
    mine, my_comment = _changes_requested_script(app, users)
    other_id = create_script(app, users["advisor2"].id, submit=True, title="别人的脚本")
    decide_open_review(app, users["compliance"].id, "request_changes", REASON, script_id=other_id,
                       comment="别人的评论")
    other_comment = _comment_id(app, Review.script_id == other_id)
    before = _comment_count(app)

    client = signed_in(app, users["advisor"])
    token = _token(client, f"/studio/scripts/{mine}")
    for parent_id in (other_comment, 999_999):
        resp = client.post(f"/studio/scripts/{mine}/replies",
                           data={"parent_id": parent_id, "body": "回复", "csrf_token": token})
        assert resp.status_code == 404, parent_id
    # one's own comment, posted through another item of one's own, is not found either
    package_id = package_for(app, users["advisor"].id, users["compliance"].id)
    resp = client.post(f"/studio/packages/{package_id}/replies",
                       data={"parent_id": my_comment, "body": "回复", "csrf_token": token})
    assert resp.status_code == 404
    # and the other advisor's own page does not take a comment of mine
    other = signed_in(app, users["advisor2"])
    resp = other.post(f"/studio/scripts/{other_id}/replies",
                      data={"parent_id": my_comment, "body": "回复", "csrf_token": _token(other, "/account/password")})
    assert resp.status_code == 404
    assert _comment_count(app) == before


def test_settled_content_takes_no_more_replies(app, users, lexicon):  # noqa: F811
    """Replies are part of the review dialogue: once the script is approved (or archived, rejected,
    withdrawn) the comments stay as they are, on the studio page and on the review page alike."""
    script_id = create_script(app, users["advisor"].id, submit=True)
    review_id = decide_open_review(app, users["compliance"].id, "approve", script_id=script_id, comment="可以")
    comment_id = _comment_id(app, Review.id == review_id)
    client = signed_in(app, users["advisor"])
    page = client.get(f"/studio/scripts/{script_id}")
    assert by_testid(page, "comment") and not by_testid(page, "reply-form")
    resp = client.post(f"/studio/scripts/{script_id}/replies",
                       data={"parent_id": comment_id, "body": "谢谢", "csrf_token": csrf_from(html(page))})
    assert resp.status_code == 409
    assert "不再接受回复" in html(resp)
    review_page = client.get(f"/compliance/reviews/{review_id}")
    assert not by_testid(review_page, "reply-form") and not by_testid(review_page, "comment-form")
    resp = client.post(f"/compliance/reviews/{review_id}/comments",
                       data={"parent_id": comment_id, "body": "谢谢", "csrf_token": csrf_from(html(review_page))})
    assert resp.status_code == 409
    assert _replies(app, comment_id) == []


def test_replies_stay_with_their_round_after_a_resubmission(app, users, lexicon):  # noqa: F811
    script_id, comment_id = _changes_requested_script(app, users)
    client = signed_in(app, users["advisor"])
    token = _token(client, f"/studio/scripts/{script_id}")
    resp = client.post(f"/studio/scripts/{script_id}/replies",
                       data={"parent_id": comment_id, "body": "持有期限改为三年", "csrf_token": token})
    assert resp.status_code == 302
    with app.app_context():
        author = db.session.get(User, users["advisor"].id)
        script = db.session.get(Script, script_id)
        studio.update_script(script, author, title=script.title, body=script.body + "建议持有三年以上。",
                             caption=script.caption, hashtags=script.hashtags, platforms=script.platforms)
        studio.submit_script(script, author)
        db.session.commit()
    # During the second round the first round's thread is still answerable and shown.
    page = client.get(f"/studio/scripts/{script_id}")
    rounds = by_testid(page, "review")
    assert [attr(r, "data-decision") for r in rounds] == ["open", "request_changes"]
    resp = client.post(f"/studio/scripts/{script_id}/replies", data={
        "parent_id": comment_id, "body": "第二轮已提交", "csrf_token": csrf_from(html(page))})
    assert resp.status_code == 302
    assert [b for _a, _r, b in _replies(app, comment_id)] == ["持有期限改为三年", "第二轮已提交"]
    assert {r for _a, r, _b in _replies(app, comment_id)} == {_review_of(app, comment_id)}


def _review_of(app, comment_id: int) -> int:
    with app.app_context():
        return db.session.get(ReviewComment, comment_id).review_id


def test_the_database_keeps_comments_and_replies_as_written(app, users, lexicon):  # noqa: F811
    from sqlalchemy.exc import DBAPIError

    _script_id, comment_id = _changes_requested_script(app, users)
    with app.app_context():
        for stmt in (sa.delete(ReviewComment).where(ReviewComment.id == comment_id),
                     sa.update(ReviewComment).where(ReviewComment.id == comment_id).values(body="改写过的评论")):
            with pytest.raises(DBAPIError, match="immutable"):
                db.session.execute(stmt)
                db.session.flush()
            db.session.rollback()
        assert db.session.get(ReviewComment, comment_id).body == QUESTION
