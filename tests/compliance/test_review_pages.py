"""Review pages over HTTP: role x endpoint access, the whole flow (claim, anchored comments,
decisions with CSRF), hash-pinned decisions (409 on changed content), four-eyes, the rendition
player, the approved list with withdrawal, and the landing page section.

The builders at the top make real submissions through the real services and return plain ids,
so tests never hold an app context open around test-client requests; test_queue.py reuses them.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from advisor_studio import audit
from advisor_studio.accounts.models import User
from advisor_studio.compliance import services as compliance
from advisor_studio.compliance.models import Approval, Review, ReviewComment
from advisor_studio.extensions import db
from advisor_studio.studio import services as studio
from advisor_studio.studio.models import Package
from tests.conftest import csrf_from, record_of, signed_in
from tests.factories import ensure_lexicon, legal_script_body, make_channel, make_ready_rendition, make_user

MANIFEST_RE = re.compile(r'<input[^>]*name="manifest_sha256"[^>]*value="([0-9a-f]{64})"')


def user(record) -> User:
    return db.session.get(User, record.id)


def submit_script(app, author, *, title="资产配置三原则", extra_body="", platforms=("douyin",)) -> int:
    """Submit a new script; return the id of its open review."""
    with app.app_context():
        advisor = user(author)
        script = studio.create_script(advisor, title=title, body=legal_script_body(advisor) + extra_body,
                                      caption="长期投资", hashtags="理财 资产配置", platforms=list(platforms))
        studio.submit_script(script, advisor)
        db.session.commit()
        return db.session.scalars(sa.select(Review.id).where(Review.script_id == script.id)).one()


def decide(app, review_id: int, officer, decision: str = "approve", reason: str = "") -> None:
    with app.app_context():
        review = db.session.get(Review, review_id)
        compliance.claim(review, user(officer))
        compliance.decide(review, user(officer), decision, reason)
        db.session.commit()


def resubmit_script(app, review_id: int, author, new_body: str) -> int:
    """Edit the script of a decided review and submit it again; return the new review id."""
    with app.app_context():
        advisor = user(author)
        script = db.session.get(Review, review_id).script
        studio.update_script(script, advisor, title=script.title, body=new_body, caption=script.caption,
                             hashtags=script.hashtags, platforms=script.platforms)
        studio.submit_script(script, advisor)
        db.session.commit()
        return db.session.scalars(sa.select(Review.id).where(Review.script_id == script.id, Review.decision.is_(None),
                                                             Review.superseded_at.is_(None))).one()


def submit_package(app, author, officer, *, srt: str | None = None, platform: str = "douyin",
                   title: str = "资产配置三原则") -> tuple[int, int]:
    """Pre-approve a script, build a package with a ready rendition and submit it; return (package, review) ids."""
    script_review = submit_script(app, author, title=title, platforms=(platform,))
    decide(app, script_review, officer)
    with app.app_context():
        advisor = user(author)
        script = db.session.get(Review, script_review).script
        package = studio.create_package(script, advisor, channel_ids=[make_channel(platform=platform).id])
        if srt:  # before the video: the rendition must be made from the subtitles it is submitted with
            studio.update_package(package, advisor, subtitles=srt)
        studio.set_rendition(package, make_ready_rendition(package), advisor)
        studio.submit_package(package, advisor)
        db.session.commit()
        review_id = db.session.scalars(sa.select(Review.id).where(Review.package_id == package.id,
                                                                  Review.decision.is_(None))).one()
        return package.id, review_id


def manifest_from(html: str) -> str:
    match = MANIFEST_RE.search(html)
    assert match, "no manifest hash in the decision form"
    return match.group(1)


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def people(app, users):
    """The users fixture plus a second officer and an advisor who is also a compliance officer."""
    with app.app_context():
        ensure_lexicon()
        extra = {"officer2": make_user("compliance"), "both": make_user("advisor", "compliance")}
        db.session.commit()
        return {**users, **{key: record_of(u) for key, u in extra.items()}}


def _page(client, url: str) -> str:
    resp = client.get(url)
    assert resp.status_code == 200, (url, resp.status_code)
    return resp.get_data(as_text=True)


def _post(client, url: str, data: dict, *, page: str):
    return client.post(url, data={**data, "csrf_token": csrf_from(page)})


def _review(app, review_id: int) -> dict:
    with app.app_context():
        r = db.session.get(Review, review_id)
        return {"decision": r.decision, "claimed_by_id": r.claimed_by_id, "reason": r.reason,
                "script_status": r.script.status, "package_status": r.package.status if r.package else None}


# --- access -------------------------------------------------------------------------------------

OFFICER_ONLY_GETS = ["/compliance/queue", "/compliance/approved", "/compliance/lexicon", "/compliance/lexicon/versions",
                     "/compliance/lexicon/rules/new", "/compliance/lexicon/import", "/compliance/lexicon/export.csv",
                     "/compliance/lexicon/try"]


@pytest.mark.parametrize("role", ["advisor", "mcn", "admin", "compliance"])
def test_compliance_pages_are_for_compliance_officers_only(app, people, role):
    client = signed_in(app, people[role])
    for url in OFFICER_ONLY_GETS:
        assert client.get(url).status_code == (200 if role == "compliance" else 403), url


@pytest.mark.parametrize("role", ["advisor", "mcn", "admin"])
def test_non_officers_cannot_post_compliance_actions(app, people, role):
    review_id = submit_script(app, people["advisor2"])
    package_id, _review_id = submit_package(app, people["advisor2"], people["compliance"])
    client = signed_in(app, people[role])
    token = csrf_from(_page(client, "/account/password"))
    for url, data in [
        (f"/compliance/reviews/{review_id}/claim", {}),
        (f"/compliance/reviews/{review_id}/release", {}),
        (f"/compliance/reviews/{review_id}/decision", {"decision": "approve", "manifest_sha256": "0" * 64}),
        (f"/compliance/packages/{package_id}/withdraw", {"reason": "x", "confirm": "y"}),
        ("/compliance/lexicon/rules/new", {"phrase": "新词", "kind": "forbidden", "severity": "block"}),
        ("/compliance/lexicon/try", {"text": "稳赚"}),
    ]:
        assert client.post(url, data={**data, "csrf_token": token}).status_code == 403, url
    assert _review(app, review_id)["claimed_by_id"] is None


def test_author_views_own_review_read_only_and_others_are_refused(app, people):
    review_id = submit_script(app, people["advisor"])
    url = f"/compliance/reviews/{review_id}"
    html = _page(signed_in(app, people["advisor"]), url)
    assert 'data-testid="author-view"' in html
    assert 'data-testid="decision-form"' not in html and 'data-testid="claim"' not in html
    assert 'data-testid="comment-form"' in html  # the author may reply
    for role in ("advisor2", "mcn", "admin"):
        assert signed_in(app, people[role]).get(url).status_code == 403, role
    assert signed_in(app, people["compliance"]).get("/compliance/reviews/999999").status_code == 404


def test_author_cannot_claim_or_decide_own_review_over_http(app, people):
    """Four-eyes: an advisor who is also an officer sees their submission but cannot decide it."""
    review_id = submit_script(app, people["both"])
    client = signed_in(app, people["both"])
    page = _page(client, f"/compliance/reviews/{review_id}")
    assert 'data-testid="four-eyes"' in page and 'data-testid="decision-form"' not in page
    assert _post(client, f"/compliance/reviews/{review_id}/claim", {}, page=page).status_code == 403
    resp = _post(client, f"/compliance/reviews/{review_id}/decision",
                 {"decision": "approve", "manifest_sha256": "0" * 64}, page=page)
    assert resp.status_code == 403
    assert _review(app, review_id) == {"decision": None, "claimed_by_id": None, "reason": None,
                                       "script_status": "submitted", "package_status": None}


# --- the flow -----------------------------------------------------------------------------------


def test_officer_claims_comments_on_a_span_and_approves_a_script(app, people):
    review_id = submit_script(app, people["advisor"], extra_body="目标是财务自由。")
    officer = signed_in(app, people["compliance"])
    queue = _page(officer, "/compliance/queue")
    assert f'data-review-id="{review_id}"' in queue

    page = _page(officer, f"/compliance/reviews/{review_id}")
    assert '<mark class="finding finding-warn"' in page  # 财务自由 is a warning
    assert 'data-testid="finding-row" data-severity="warn"' in page
    resp = _post(officer, f"/compliance/reviews/{review_id}/claim", {}, page=page)
    assert resp.status_code == 302
    assert _review(app, review_id)["claimed_by_id"] == people["compliance"].id

    page = _page(officer, f"/compliance/reviews/{review_id}")
    assert 'data-testid="release"' in page
    with app.app_context():
        body = db.session.get(Review, review_id).script_revision.body
    start = body.index("财务自由")
    resp = _post(officer, f"/compliance/reviews/{review_id}/comments",
                 {"body": "请删除“财务自由”的表述", "anchor_field": "body", "anchor_start": start,
                  "anchor_end": start + 4}, page=page)
    assert resp.status_code == 302 and "#comment-" in resp.headers["Location"]
    with app.app_context():
        comment = db.session.scalars(sa.select(ReviewComment).where(ReviewComment.review_id == review_id)).one()
        assert (comment.anchor_field, comment.anchor_start, comment.anchor_end, comment.anchor_text) == (
            "body", start, start + 4, "财务自由")
        comment_id = comment.id
    page = _page(officer, f"/compliance/reviews/{review_id}")
    assert f'data-jump-field="body" data-jump-start="{start}" data-jump-end="{start + 4}"' in page

    # the author replies in the thread
    author = signed_in(app, people["advisor"])
    author_page = _page(author, f"/compliance/reviews/{review_id}")
    resp = _post(author, f"/compliance/reviews/{review_id}/comments",
                 {"body": "好的，已修改", "parent_id": comment_id}, page=author_page)
    assert resp.status_code == 302

    resp = _post(officer, f"/compliance/reviews/{review_id}/decision",
                 {"decision": "approve", "manifest_sha256": manifest_from(page)}, page=page)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/compliance/queue")
    state = _review(app, review_id)
    assert state["decision"] == "approve" and state["script_status"] == "approved"
    with app.app_context():
        reply = db.session.scalars(sa.select(ReviewComment).where(ReviewComment.parent_id == comment_id)).one()
        assert reply.author_id == people["advisor"].id
        actions = set(db.session.scalars(sa.select(audit.AuditEntry.action)))
        assert {"review.claimed", "review.commented", "review.approve", "script.approved"} <= actions
    html = _page(officer, f"/compliance/reviews/{review_id}")
    assert 'data-testid="review-status" data-status="approve"' in html
    assert 'data-testid="decision-form"' not in html


def test_comment_anchor_outside_the_text_is_refused(app, people):
    review_id = submit_script(app, people["advisor"])
    officer = signed_in(app, people["compliance"])
    page = _page(officer, f"/compliance/reviews/{review_id}")
    resp = _post(officer, f"/compliance/reviews/{review_id}/comments",
                 {"body": "x", "anchor_field": "body", "anchor_start": 5, "anchor_end": 99_999}, page=page)
    assert resp.status_code == 400
    resp = _post(officer, f"/compliance/reviews/{review_id}/comments", {"body": "  "}, page=page)
    assert resp.status_code == 400
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ReviewComment)) == 0


def test_decision_on_changed_content_is_refused_with_409_and_changes_nothing(app, people):
    package_id, review_id = submit_package(app, people["advisor"], people["compliance"])
    officer = signed_in(app, people["compliance"])
    page = _page(officer, f"/compliance/reviews/{review_id}")
    _post(officer, f"/compliance/reviews/{review_id}/claim", {}, page=page)
    page = _page(officer, f"/compliance/reviews/{review_id}")
    shown = manifest_from(page)

    # a tampered or stale hash is refused
    resp = _post(officer, f"/compliance/reviews/{review_id}/decision",
                 {"decision": "approve", "manifest_sha256": "f" * 64}, page=page)
    assert resp.status_code == 409

    # content changes behind the reviewer's back (as in studio/test_flow.py)
    with app.app_context():
        db.session.get(Package, package_id).caption = "偷偷改过的文案"
        db.session.commit()
    resp = _post(officer, f"/compliance/reviews/{review_id}/decision",
                 {"decision": "approve", "manifest_sha256": shown}, page=page)
    assert resp.status_code == 409
    assert manifest_from(resp.get_data(as_text=True)) != shown  # the page now shows what is really there
    state = _review(app, review_id)
    assert state["decision"] is None and state["package_status"] == "submitted"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Approval).where(
            Approval.package_id == package_id)) == 0


def test_reject_needs_a_reason_and_a_confirmation(app, people):
    review_id = submit_script(app, people["advisor"])
    officer = signed_in(app, people["compliance"])
    page = _page(officer, f"/compliance/reviews/{review_id}")
    _post(officer, f"/compliance/reviews/{review_id}/claim", {}, page=page)
    page = _page(officer, f"/compliance/reviews/{review_id}")
    sha = manifest_from(page)
    url = f"/compliance/reviews/{review_id}/decision"
    assert _post(officer, url, {"decision": "reject", "manifest_sha256": sha, "confirm_reject": "y"},
                 page=page).status_code == 400
    assert _post(officer, url, {"decision": "reject", "manifest_sha256": sha, "reason": "违规"},
                 page=page).status_code == 400
    assert _post(officer, url, {"decision": "request_changes", "manifest_sha256": sha}, page=page).status_code == 400
    assert _review(app, review_id)["decision"] is None
    resp = _post(officer, url, {"decision": "reject", "manifest_sha256": sha, "reason": "承诺收益，违规",
                                "confirm_reject": "y"}, page=page)
    assert resp.status_code == 302
    state = _review(app, review_id)
    assert (state["decision"], state["reason"], state["script_status"]) == ("reject", "承诺收益，违规", "rejected")


def test_request_changes_without_claim_is_refused(app, people):
    review_id = submit_script(app, people["advisor"])
    officer = signed_in(app, people["compliance"])
    page = _page(officer, f"/compliance/reviews/{review_id}")
    resp = _post(officer, f"/compliance/reviews/{review_id}/decision",
                 {"decision": "request_changes", "reason": "补充", "manifest_sha256": manifest_from(page)}, page=page)
    assert resp.status_code == 409
    assert _review(app, review_id)["decision"] is None


def test_a_claimed_review_cannot_be_taken_by_another_officer_until_released(app, people):
    review_id = submit_script(app, people["advisor"])
    first, second = signed_in(app, people["compliance"]), signed_in(app, people["officer2"])
    page = _page(first, f"/compliance/reviews/{review_id}")
    _post(first, f"/compliance/reviews/{review_id}/claim", {}, page=page)
    other = _page(second, f"/compliance/reviews/{review_id}")
    assert 'data-testid="claimed-by"' in other and 'data-testid="claim"' not in other
    refused = _post(second, f"/compliance/reviews/{review_id}/claim", {}, page=other)
    assert refused.status_code == 409 and people["compliance"].name in refused.get_data(as_text=True)
    assert _review(app, review_id)["claimed_by_id"] == people["compliance"].id
    page = _page(first, f"/compliance/reviews/{review_id}")
    _post(first, f"/compliance/reviews/{review_id}/release", {}, page=page)
    assert _review(app, review_id)["claimed_by_id"] is None
    _post(second, f"/compliance/reviews/{review_id}/claim", {}, page=other)
    assert _review(app, review_id)["claimed_by_id"] == people["officer2"].id


def test_resubmission_shows_a_character_diff_against_the_last_reviewed_revision(app, people):
    first = submit_script(app, people["advisor"])
    decide(app, first, people["compliance"], "request_changes", "请删去第一句")
    with app.app_context():
        body = legal_script_body(user(people["advisor"]))
    new_body = body.replace("分散投资", "分散配置")
    second = resubmit_script(app, first, people["advisor"], new_body)
    page = _page(signed_in(app, people["officer2"]), f"/compliance/reviews/{second}")
    assert 'data-testid="diff-table"' in page
    assert "<del>投资</del>" in page and "<ins>配置</ins>" in page
    first_page = _page(signed_in(app, people["compliance"]), f"/compliance/reviews/{first}")
    assert 'data-testid="diff-table"' not in first_page


def test_package_review_plays_the_pinned_rendition_with_range_and_flags_subtitles(app, people):
    srt = ("1\n00:00:01,000 --> 00:00:03,000\n分散投资、长期持有\n\n"
           "2\n00:00:03,000 --> 00:00:05,000\n这只股票下周必有行情\n")
    package_id, review_id = submit_package(app, people["advisor"], people["compliance"], srt=srt)
    with app.app_context():
        rendition = db.session.get(Package, package_id).rendition
        sha, size = rendition.sha256, rendition.size_bytes
    officer = signed_in(app, people["officer2"])
    page = _page(officer, f"/compliance/reviews/{review_id}")
    assert f'src="/compliance/reviews/{review_id}/rendition.mp4"' in page and "<video" in page
    assert sha in page
    assert page.count('data-testid="cue"') == 2 and page.count('data-flagged="1"') == 1
    assert 'data-testid="anchor-timecode"' in page

    video = officer.get(f"/compliance/reviews/{review_id}/rendition.mp4", headers={"Range": "bytes=0-9"})
    assert video.status_code == 206 and video.headers["Content-Range"] == f"bytes 0-9/{size}"
    assert video.headers["Content-Type"] == "video/mp4" and len(video.data) == 10
    assert signed_in(app, people["advisor"]).get(f"/compliance/reviews/{review_id}/rendition.mp4").status_code == 200
    assert signed_in(app, people["advisor2"]).get(f"/compliance/reviews/{review_id}/rendition.mp4").status_code == 403

    _post(officer, f"/compliance/reviews/{review_id}/claim", {}, page=page)
    page = _page(officer, f"/compliance/reviews/{review_id}")
    resp = _post(officer, f"/compliance/reviews/{review_id}/comments", {"body": "第4秒的字幕有荐股嫌疑",
                                                                         "timecode_ms": 4000}, page=page)
    assert resp.status_code == 302
    resp = _post(officer, f"/compliance/reviews/{review_id}/decision",
                 {"decision": "approve", "manifest_sha256": manifest_from(page)}, page=page)
    assert resp.status_code == 302
    assert _review(app, review_id)["package_status"] == "approved"
    with app.app_context():
        assert db.session.scalars(sa.select(ReviewComment.timecode_ms)).one() == 4000


def test_script_review_has_no_rendition(app, people):
    review_id = submit_script(app, people["advisor"])
    client = signed_in(app, people["compliance"])
    assert client.get(f"/compliance/reviews/{review_id}/rendition.mp4").status_code == 403


# --- approved list and withdrawal -----------------------------------------------------------------


def _approved_package(app, people, **kwargs) -> tuple[int, int]:
    package_id, review_id = submit_package(app, people["advisor"], people["compliance"], **kwargs)
    decide(app, review_id, people["officer2"])
    return package_id, review_id


def test_withdraw_requires_a_reason_and_a_confirmation(app, people):
    package_id, _review_id = _approved_package(app, people)
    officer = signed_in(app, people["compliance"])
    page = _page(officer, "/compliance/approved")
    assert f'data-testid="approved-row" data-package-id="{package_id}"' in page
    url = f"/compliance/packages/{package_id}/withdraw"
    assert _post(officer, url, {"reason": "客户投诉"}, page=page).status_code == 302
    assert _post(officer, url, {"reason": " ", "confirm": "y"}, page=page).status_code == 302
    with app.app_context():
        assert db.session.get(Package, package_id).status == "approved"
    assert _post(officer, url, {"reason": "客户投诉：涉嫌夸大收益", "confirm": "y"}, page=page).status_code == 302
    with app.app_context():
        package = db.session.get(Package, package_id)
        assert package.status == "withdrawn" and compliance.live_approval(package) is None
    assert f'data-package-id="{package_id}"' not in _page(officer, "/compliance/approved")


def test_flagged_approvals_come_first_and_are_highlighted(app, people):
    plain_id, _r1 = _approved_package(app, people, title="长期投资的逻辑")
    flagged_id, _r2 = _approved_package(app, people, title="资产配置三原则")
    with app.app_context():
        compliance.add_rule(phrase="资产配置三原则", kind="forbidden", severity="block", category="test",
                            actor=user(people["compliance"]))
        db.session.commit()
        assert compliance.rescan_live_approvals(compliance.current_lexicon_version()) >= 1
        db.session.commit()
    officer = signed_in(app, people["compliance"])
    page = _page(officer, "/compliance/approved")
    rows = re.findall(r'data-testid="approved-row" data-package-id="(\d+)"( data-flagged="1")?', page)
    assert rows[0] == (str(flagged_id), ' data-flagged="1"') and (str(plain_id), "") in rows
    only = _page(officer, "/compliance/approved?flagged=1")
    assert f'data-package-id="{plain_id}"' not in only and f'data-package-id="{flagged_id}"' in only
    assert f'data-package-id="{plain_id}"' in _page(officer, "/compliance/approved?q=长期投资")
    assert 'data-testid="empty-state"' in _page(officer, "/compliance/approved?platform=bilibili")
    review_page = _page(officer, f"/compliance/reviews/{_r2}")
    assert 'data-testid="flagged-rescan"' in review_page


# --- landing page -------------------------------------------------------------------------------


def test_landing_page_shows_queue_counts_and_alerts_to_officers_only(app, people):
    submit_script(app, people["advisor"])
    _approved_package(app, people)
    with app.app_context():
        review = db.session.scalars(sa.select(Review).where(Review.decision.is_(None))).first()
        review.due_at = review.submitted_at.replace(year=review.submitted_at.year - 1)
        db.session.commit()
    html = _page(signed_in(app, people["compliance"]), "/")
    assert 'data-testid="compliance-landing"' in html
    assert re.search(r'data-testid="landing-count-script">1<', html)
    assert re.search(r'data-testid="landing-overdue">1<', html)
    assert re.search(r'data-testid="landing-expiring">0<', html)
    assert 'data-testid="compliance-landing"' not in _page(signed_in(app, people["advisor"]), "/")
