"""The advisor's script pages over HTTP: access per role and object, the editor, pre-check, submit,
recall, archive, revisions and the diff. Data is made through the real services in short app
contexts (never held open around a request); the helpers here are shared by test_pages_*.py."""

from __future__ import annotations

import re
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from advisor_studio.accounts.models import User
from advisor_studio.compliance import services as compliance
from advisor_studio.compliance.models import Review
from advisor_studio.extensions import db
from advisor_studio.studio import services as studio
from advisor_studio.studio.models import Package, Script
from tests.conftest import csrf_from, post_form, signed_in
from tests.factories import ensure_lexicon, legal_script_body, make_channel, make_ready_rendition


@pytest.fixture
def lexicon(app):
    with app.app_context():
        ensure_lexicon()
        db.session.commit()


def legal_body(app, user_id: int) -> str:
    with app.app_context():
        return legal_script_body(db.session.get(User, user_id))


def create_script(app, author_id: int, *, title="资产配置三原则", body=None, submit=False) -> int:
    with app.app_context():
        author = db.session.get(User, author_id)
        script = studio.create_script(author, title=title, body=body or legal_script_body(author),
                                      caption="长期投资", hashtags="理财", platforms=["douyin"])
        if submit:
            studio.submit_script(script, author)
        db.session.commit()
        return script.id


def decide_open_review(app, officer_id: int, decision: str = "approve", reason: str = "", *,
                       script_id: int | None = None, package_id: int | None = None,
                       comment: str | None = None) -> int:
    """Claim and decide the open review of a script or package as ``officer_id``; return the review id."""
    with app.app_context():
        officer = db.session.get(User, officer_id)
        cond = Review.package_id == package_id if package_id else sa.and_(Review.script_id == script_id,
                                                                          Review.stage == "script")
        review = db.session.scalars(sa.select(Review).where(cond, Review.decision.is_(None),
                                                            Review.superseded_at.is_(None))).one()
        compliance.claim(review, officer)
        if comment:
            compliance.add_comment(review, officer, comment)
        compliance.decide(review, officer, decision, reason)
        db.session.commit()
        return review.id


def approved_script(app, author_id: int, officer_id: int, **kwargs) -> int:
    script_id = create_script(app, author_id, submit=True, **kwargs)
    decide_open_review(app, officer_id, script_id=script_id)
    return script_id


def package_for(app, author_id: int, officer_id: int, *, rendition=False, channel=True) -> int:
    script_id = approved_script(app, author_id, officer_id)
    with app.app_context():
        author = db.session.get(User, author_id)
        channel_ids = [make_channel().id] if channel else []
        package = studio.create_package(db.session.get(Script, script_id), author, channel_ids=channel_ids)
        if rendition:
            studio.set_rendition(package, make_ready_rendition(package), author)
        db.session.commit()
        return package.id


def approved_package(app, author_id: int, officer_id: int, valid_days: int | None = None) -> int:
    """An approved package; ``valid_days`` approves it for that long (approvals are frozen once made)."""
    package_id = package_for(app, author_id, officer_id, rendition=True)
    with app.app_context():
        package = db.session.get(Package, package_id)
        studio.submit_package(package, db.session.get(User, author_id))
        db.session.commit()
    default_days = app.config["APPROVAL_VALID_DAYS"]
    app.config["APPROVAL_VALID_DAYS"] = default_days if valid_days is None else valid_days
    try:
        decide_open_review(app, officer_id, package_id=package_id)
    finally:
        app.config["APPROVAL_VALID_DAYS"] = default_days
    return package_id


@contextmanager
def count_queries(app):
    """Collect every SQL statement sent on the app's engine while the block runs."""
    with app.app_context():
        engine = db.engine
    statements: list[str] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", listener)


# --- small HTTP helpers --------------------------------------------------------------------------


def html(resp) -> str:
    return resp.get_data(as_text=True)


def by_testid(resp, name: str) -> list[str]:
    """The opening tags carrying data-testid="name"."""
    return re.findall(rf'<[^>]*data-testid="{re.escape(name)}"[^>]*>', html(resp))


def attr(tag: str, name: str) -> str | None:
    match = re.search(rf'{re.escape(name)}="([^"]*)"', tag)
    return match.group(1) if match else None


def script_state(app, script_id: int) -> dict:
    from advisor_studio.studio.models import ScriptRevision

    with app.app_context():
        script = db.session.get(Script, script_id)
        revisions = db.session.scalar(sa.select(sa.func.count()).select_from(ScriptRevision)
                                      .where(ScriptRevision.script_id == script_id))
        return {"status": script.status, "body": script.body, "title": script.title, "revisions": revisions}


def count_scripts(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Script))


def editor_data(title="资产配置三原则", body="", caption="长期投资", hashtags="#理财", platforms=("douyin",)) -> dict:
    return {"title": title, "body": body, "caption": caption, "hashtags": hashtags, "platforms": list(platforms)}


# --- access -------------------------------------------------------------------------------------

OBJECT_PAGES = ["/studio/scripts/{script}", "/studio/scripts/{script}/revisions", "/studio/scripts/{script}/diff",
                "/studio/packages/{package}"]
VIEWERS = {"advisor": 200, "advisor2": 403, "compliance": 200, "admin": 200, "mcn": 403}


@pytest.mark.parametrize("role", sorted(VIEWERS))
@pytest.mark.parametrize("path", OBJECT_PAGES)
def test_object_pages_open_to_author_compliance_and_admin_only(app, users, lexicon, role, path):
    package_id = package_for(app, users["advisor"].id, users["compliance"].id)
    with app.app_context():
        script_id = db.session.get(Package, package_id).script_id
    client = signed_in(app, users[role])
    resp = client.get(path.format(script=script_id, package=package_id))
    assert resp.status_code == VIEWERS[role]


@pytest.mark.parametrize("role", ["advisor", "advisor2", "compliance", "mcn", "admin"])
@pytest.mark.parametrize("path", ["/studio/", "/studio/scripts", "/studio/scripts/new", "/studio/packages"])
def test_lists_are_for_advisors_only(app, users, role, path):
    resp = signed_in(app, users[role]).get(path)
    assert resp.status_code == (200 if role.startswith("advisor") else 403)


def test_lists_show_only_my_own_items(app, users, lexicon):
    mine = create_script(app, users["advisor"].id, title="我的脚本")
    theirs = create_script(app, users["advisor2"].id, title="别人的脚本")
    resp = signed_in(app, users["advisor"]).get("/studio/scripts")
    ids = {attr(tag, "data-script-id") for tag in by_testid(resp, "script-row")}
    assert ids == {str(mine)}
    assert str(theirs) not in ids


def test_compliance_sees_script_read_only(app, users, lexicon):
    script_id = create_script(app, users["advisor"].id)
    resp = signed_in(app, users["compliance"]).get(f"/studio/scripts/{script_id}")
    assert resp.status_code == 200
    assert by_testid(resp, "script-readonly") and not by_testid(resp, "script-form")
    assert not by_testid(resp, "archive")


def test_another_advisors_script_and_package_refuse_every_action(app, users, lexicon):
    owner, intruder = users["advisor"], users["advisor2"]
    script_id = create_script(app, owner.id, submit=True)
    package_id = package_for(app, owner.id, users["compliance"].id)
    client = signed_in(app, intruder)
    token = csrf_from(html(client.get("/studio/scripts/new")))
    posts = [
        (f"/studio/scripts/{script_id}", editor_data(body="x")),
        (f"/studio/scripts/{script_id}/precheck", editor_data(body="x")),
        (f"/studio/scripts/{script_id}/submit", editor_data(body="x")),
        (f"/studio/scripts/{script_id}/recall", {}),
        (f"/studio/scripts/{script_id}/archive", {"confirm": "y"}),
        (f"/studio/scripts/{script_id}/packages", {}),
        (f"/studio/packages/{package_id}", {"title": "hijack", "caption": "x"}),
        (f"/studio/packages/{package_id}/submit", {}),
        (f"/studio/packages/{package_id}/recall", {}),
        (f"/studio/packages/{package_id}/archive", {"confirm": "y"}),
    ]
    for path, data in posts:
        assert client.post(path, data={**data, "csrf_token": token}).status_code == 403, path
    assert script_state(app, script_id)["status"] == "submitted"
    with app.app_context():
        package = db.session.get(Package, package_id)
        assert (package.title, package.status) == ("资产配置三原则", "draft")


@pytest.mark.parametrize("role", ["compliance", "admin"])
def test_readers_cannot_change_an_advisors_script(app, users, lexicon, role):
    script_id = create_script(app, users["advisor"].id)
    client = signed_in(app, users[role])
    token = csrf_from(html(client.get(f"/studio/scripts/{script_id}")))
    resp = client.post(f"/studio/scripts/{script_id}", data={**editor_data(body="改过"), "csrf_token": token})
    assert resp.status_code == 403
    assert script_state(app, script_id)["body"] != "改过"


def test_post_without_csrf_token_is_refused_and_stores_nothing(app, users, lexicon):
    client = signed_in(app, users["advisor"])
    resp = client.post("/studio/scripts/new", data=editor_data(body="正文"))
    assert resp.status_code == 400
    assert count_scripts(app) == 0


# --- the editor, pre-check and submission ------------------------------------------------------


def test_advisor_writes_prechecks_fixes_submits_and_recalls_a_script(app, users, lexicon):
    advisor = users["advisor"]
    client = signed_in(app, advisor)
    assert by_testid(client.get("/studio/scripts"), "empty-state")
    legal = legal_body(app, advisor.id)
    risky = legal + "跟我买，稳赚不赔！"

    # Create and pre-check: the draft is saved, the findings are highlighted in the text.
    resp = post_form(client, "/studio/scripts/new", {**editor_data(body=risky), "action": "precheck"})
    assert resp.status_code == 302 and "precheck=1" in resp.headers["Location"]
    script_id = int(re.search(r"/studio/scripts/(\d+)", resp.headers["Location"]).group(1))
    page = client.get(resp.headers["Location"])
    assert page.status_code == 200
    [findings] = by_testid(page, "findings")
    assert attr(findings, "data-blocking") == "true"
    body_marks = re.search(r'data-testid="highlight-body"[^>]*>(.*?)</div>', html(page), re.S).group(1)
    assert '<mark class="finding finding-block"' in body_marks and "稳赚不赔" in body_marks
    assert any(attr(t, "data-rule") == "forbidden_phrase" and attr(t, "data-field") == "body"
               for t in by_testid(page, "finding"))

    # Submitting with blocking findings shows the report, answers 400 and stores nothing, not even the edit.
    edited = risky + "再说一遍：稳赚！"
    resp = post_form(client, f"/studio/scripts/{script_id}/submit", editor_data(body=edited),
                     form_page=f"/studio/scripts/{script_id}")
    assert resp.status_code == 400
    assert attr(by_testid(resp, "action-error")[0], "data-error-code") == "blocking_findings"
    assert attr(by_testid(resp, "findings")[0], "data-blocking") == "true"
    assert edited in html(resp)  # the advisor's text is kept in the editor
    state = script_state(app, script_id)
    assert state == {"status": "draft", "body": risky, "title": "资产配置三原则", "revisions": 0}

    # Fixed text: the pre-check passes and the submission freezes revision 1.
    resp = post_form(client, f"/studio/scripts/{script_id}/precheck", editor_data(body=legal),
                     form_page=f"/studio/scripts/{script_id}")
    page = client.get(resp.headers["Location"])
    assert attr(by_testid(page, "findings")[0], "data-blocking") == "false"
    resp = post_form(client, f"/studio/scripts/{script_id}/submit", editor_data(body=legal),
                     form_page=f"/studio/scripts/{script_id}")
    assert resp.status_code == 302
    assert script_state(app, script_id)["status"] == "submitted"
    revisions = client.get(f"/studio/scripts/{script_id}/revisions")
    [row] = by_testid(revisions, "revision-row")
    assert (attr(row, "data-number"), attr(row, "data-outcome")) == ("1", "open")
    page = client.get(f"/studio/scripts/{script_id}")
    assert by_testid(page, "in-review") and not by_testid(page, "script-form")
    assert attr(by_testid(page, "latest-revision")[0], "data-number") == "1"

    # A submitted script cannot be edited; recall brings it back to draft and closes the review.
    resp = post_form(client, f"/studio/scripts/{script_id}", editor_data(body=legal + "补充"),
                     form_page=f"/studio/scripts/{script_id}/revisions")
    assert resp.status_code == 409
    resp = post_form(client, f"/studio/scripts/{script_id}/recall", {}, form_page=f"/studio/scripts/{script_id}")
    assert resp.status_code == 302
    assert script_state(app, script_id)["status"] == "draft"
    [row] = by_testid(client.get(f"/studio/scripts/{script_id}/revisions"), "revision-row")
    assert attr(row, "data-outcome") == "superseded"

    # Submitted again and pre-approved: the page offers a package; creating it opens the package page.
    post_form(client, f"/studio/scripts/{script_id}/submit", editor_data(body=legal),
              form_page=f"/studio/scripts/{script_id}")
    assert script_state(app, script_id)["revisions"] == 2
    decide_open_review(app, users["compliance"].id, script_id=script_id)
    page = client.get(f"/studio/scripts/{script_id}")
    assert by_testid(page, "preapproved") and by_testid(page, "create-package")
    resp = post_form(client, f"/studio/scripts/{script_id}/packages", {}, form_page=f"/studio/scripts/{script_id}")
    assert resp.status_code == 302 and "/studio/packages/" in resp.headers["Location"]
    assert client.get(resp.headers["Location"]).status_code == 200


def test_saving_a_draft_redirects_and_keeps_the_text(app, users, lexicon):
    script_id = create_script(app, users["advisor"].id)
    client = signed_in(app, users["advisor"])
    resp = post_form(client, f"/studio/scripts/{script_id}", editor_data(title="新标题", body="新的正文\n第二行"))
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/studio/scripts/{script_id}")
    state = script_state(app, script_id)
    assert (state["title"], state["body"], state["status"]) == ("新标题", "新的正文\n第二行", "draft")


def test_document_level_findings_are_listed_separately(app, users, lexicon):
    script_id = create_script(app, users["advisor"].id, body="今天聊聊资产配置：分散投资、长期持有。")
    page = signed_in(app, users["advisor"]).get(f"/studio/scripts/{script_id}?precheck=1")
    rules = {attr(t, "data-rule") for t in by_testid(page, "document-finding")}
    assert "disclosure_missing" in rules
    assert attr(by_testid(page, "findings")[0], "data-blocking") == "true"


def test_findings_highlight_escapes_the_advisors_text(app, users, lexicon):
    body = legal_body(app, users["advisor"].id) + '<script>alert("x")</script>稳赚<b>'
    script_id = create_script(app, users["advisor"].id, body=body)
    page = signed_in(app, users["advisor"]).get(f"/studio/scripts/{script_id}?precheck=1")
    text = html(page)
    assert '<script>alert("x")' not in text and "<b>" not in text
    assert "&lt;script&gt;alert(" in text
    marks = re.search(r'data-testid="highlight-body"[^>]*>(.*?)</div>', text, re.S).group(1)
    assert re.search(r'<mark class="finding finding-block"[^>]*>稳赚</mark>', marks)


def test_one_megabyte_body_is_refused_with_400_and_nothing_is_stored(app, users, lexicon):
    client = signed_in(app, users["advisor"])
    huge = editor_data(body="字" * 1_000_000)
    resp = post_form(client, "/studio/scripts/new", huge)
    assert resp.status_code == 400
    assert attr(by_testid(resp, "action-error")[0], "data-error-code") == "invalid"
    assert count_scripts(app) == 0
    # Sent as multipart, the field passes the form memory limit: still a 400 with a message, not a 413.
    resp = post_form(client, "/studio/scripts/new", huge, content_type="multipart/form-data")
    assert resp.status_code == 400
    assert by_testid(resp, "error-page")
    assert count_scripts(app) == 0
    script_id = create_script(app, users["advisor"].id)
    before = script_state(app, script_id)
    resp = post_form(client, f"/studio/scripts/{script_id}/submit", huge, form_page=f"/studio/scripts/{script_id}")
    assert resp.status_code == 400
    assert script_state(app, script_id) == before


def test_body_over_the_limit_is_refused_by_the_service_with_the_field_marked(app, users, lexicon):
    client = signed_in(app, users["advisor"])
    resp = post_form(client, "/studio/scripts/new", editor_data(body="字" * 20_001))
    assert resp.status_code == 400
    assert attr(by_testid(resp, "action-error")[0], "data-error-code") == "invalid"
    assert 'data-testid="body-input"' in html(resp) and "is-invalid" in by_testid(resp, "body-input")[0]
    assert count_scripts(app) == 0


# NUL never reaches the editor: it is refused for every form (tests/test_input_bounds.py).
@pytest.mark.parametrize("bad", ["a\x1bb", "响铃\x07"])
def test_control_characters_are_refused_with_400(app, users, lexicon, bad):
    client = signed_in(app, users["advisor"])
    resp = post_form(client, "/studio/scripts/new", editor_data(body=bad))
    assert resp.status_code == 400
    assert by_testid(resp, "action-error")
    assert count_scripts(app) == 0
    script_id = create_script(app, users["advisor"].id, body="原文")
    resp = post_form(client, f"/studio/scripts/{script_id}", editor_data(body=bad))
    assert resp.status_code == 400
    assert script_state(app, script_id)["body"] == "原文"


def test_unknown_platform_is_refused(app, users, lexicon):
    resp = post_form(signed_in(app, users["advisor"]), "/studio/scripts/new",
                     editor_data(body="x", platforms=["myspace"]))
    assert resp.status_code == 400
    assert count_scripts(app) == 0


def test_archive_needs_confirmation(app, users, lexicon):
    script_id = create_script(app, users["advisor"].id)
    client = signed_in(app, users["advisor"])
    resp = post_form(client, f"/studio/scripts/{script_id}/archive", {"reason": "不再使用"})
    assert resp.status_code == 400
    assert script_state(app, script_id)["status"] == "draft"
    resp = post_form(client, f"/studio/scripts/{script_id}/archive", {"reason": "不再使用", "confirm": "y"})
    assert resp.status_code == 302
    assert script_state(app, script_id)["status"] == "archived"
    page = client.get(f"/studio/scripts/{script_id}")
    assert by_testid(page, "script-readonly") and not by_testid(page, "archive")


# --- reviews, revisions and the diff ------------------------------------------------------------


def test_reviewer_comments_are_threaded_and_quote_their_anchor(app, users, lexicon):
    from advisor_studio.compliance.models import ReviewComment

    advisor, officer = users["advisor"], users["compliance"]
    script_id = create_script(app, advisor.id, submit=True)
    with app.app_context():
        review = db.session.scalars(sa.select(Review).where(Review.script_id == script_id)).one()
        officer_user, author = db.session.get(User, officer.id), db.session.get(User, advisor.id)
        body = review.script_revision.body
        start = body.index("分散投资")
        top = compliance.add_comment(review, officer_user, "这里请说明分散的含义", anchor_field="body",
                                     anchor_start=start, anchor_end=start + 4)
        compliance.add_comment(review, author, "好的，我补充一句", parent=top)
        compliance.claim(review, officer_user)
        compliance.decide(review, officer_user, "request_changes", "请补充风险提示的位置")
        db.session.commit()
        top_id = top.id
        reply_id = db.session.scalar(sa.select(ReviewComment.id).where(ReviewComment.parent_id == top_id))
    client = signed_in(app, advisor)
    page = client.get(f"/studio/scripts/{script_id}")
    [review_tag] = by_testid(page, "review")
    assert attr(review_tag, "data-decision") == "request_changes"
    assert "请补充风险提示的位置" in html(page)
    comments = {attr(t, "data-comment-id"): attr(t, "data-parent-id") for t in by_testid(page, "comment")}
    assert comments == {str(top_id): "", str(reply_id): str(top_id)}
    [quote] = by_testid(page, "comment-anchor")
    assert attr(quote, "data-field") == "body"
    assert re.search(r'data-testid="comment-anchor"[^>]*>.*?分散投资', html(page), re.S)
    assert by_testid(page, "changes-requested")
    row = by_testid(client.get(f"/studio/scripts/{script_id}/revisions"), "revision-row")[0]
    assert attr(row, "data-outcome") == "request_changes"


def _two_revisions(app, users, old_body: str, new_body: str) -> int:
    advisor = users["advisor"]
    script_id = create_script(app, advisor.id, body=old_body, submit=True)
    with app.app_context():
        author = db.session.get(User, advisor.id)
        script = db.session.get(Script, script_id)
        studio.recall_script(script, author)
        studio.update_script(script, author, title=script.title, body=new_body, caption="长期投资 稳健",
                             hashtags=script.hashtags, platforms=script.platforms)
        studio.submit_script(script, author)
        db.session.commit()
    return script_id


def test_diff_page_marks_chinese_insertions_and_deletions(app, users, lexicon):
    old = legal_body(app, users["advisor"].id)
    new = old.replace("长期持有", "长期坚定持有").replace("控制回撤", "控制波动")
    script_id = _two_revisions(app, users, old, new)
    page = signed_in(app, users["advisor"]).get(f"/studio/scripts/{script_id}/diff")
    assert page.status_code == 200
    assert attr(by_testid(page, "diff-old")[0], "data-number") == "1"
    assert attr(by_testid(page, "diff-new")[0], "data-number") == "2"
    fields = {attr(t, "data-field"): t for t in by_testid(page, "diff-field")}
    assert attr(fields["body"], "data-changed") == "true"
    assert attr(fields["title"], "data-changed") == "false"
    assert attr(fields["caption"], "data-changed") == "true"
    assert (attr(fields["body"], "data-deleted"), attr(fields["body"], "data-inserted")) == ("2", "4")
    text = html(page)
    assert "<ins>坚定</ins>" in text
    assert "<del>回撤</del>" in text and "<ins>波动</ins>" in text


def test_diff_page_picks_any_two_revisions_and_404s_on_unknown_ones(app, users, lexicon):
    old = legal_body(app, users["advisor"].id)
    script_id = _two_revisions(app, users, old, old + "补充一句。")
    client = signed_in(app, users["advisor"])
    page = client.get(f"/studio/scripts/{script_id}/diff?a=2&b=1")
    assert attr(by_testid(page, "diff-old")[0], "data-number") == "2"
    assert "<del>补充一句。</del>" in html(page)
    assert client.get(f"/studio/scripts/{script_id}/diff?a=1&b=7").status_code == 404


def test_diff_page_of_a_script_with_one_revision_says_there_is_nothing_to_compare(app, users, lexicon):
    script_id = create_script(app, users["advisor"].id, submit=True)
    page = signed_in(app, users["advisor"]).get(f"/studio/scripts/{script_id}/diff")
    assert page.status_code == 200 and by_testid(page, "empty-state")


# --- the scripts list ----------------------------------------------------------------------------


def test_scripts_list_searches_filters_and_paginates(app, users, lexicon):
    advisor = users["advisor"]
    with app.app_context():
        author = db.session.get(User, advisor.id)
        for n in range(30):
            studio.create_script(author, title=f"脚本{n:02d}", body="x")
        db.session.commit()
    create_script(app, advisor.id, title="可转债入门", submit=True)
    client = signed_in(app, advisor)
    first, second = client.get("/studio/scripts"), client.get("/studio/scripts?page=2")
    assert len(by_testid(first, "script-row")) == 25 and len(by_testid(second, "script-row")) == 6
    found = client.get("/studio/scripts?q=可转债")
    [row] = by_testid(found, "script-row")
    submitted = client.get("/studio/scripts?status=submitted")
    assert [attr(t, "data-script-id") for t in by_testid(submitted, "script-row")] == [attr(row, "data-script-id")]
    assert re.search(r'data-testid="revision-number">1<', html(found))
    none = client.get("/studio/scripts?q=nothing-like-this")
    assert by_testid(none, "empty-state") and not by_testid(none, "script-row")
