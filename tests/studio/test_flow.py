"""The end-to-end review flow at the service level: script pre-approval, package approval,
hash-pinned manifests, voiding, expiry, withdrawal, four-eyes and claims."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from advisor_studio import audit
from advisor_studio.accounts.models import User
from advisor_studio.compliance import services as compliance
from advisor_studio.compliance.models import Approval, Review
from advisor_studio.errors import Conflict, PermissionDenied, ValidationError
from advisor_studio.extensions import db
from advisor_studio.studio import services as studio
from advisor_studio.studio.models import Package, ScriptRevision
from tests.factories import ensure_lexicon, legal_script_body, make_channel, make_ready_rendition, make_user


@pytest.fixture
def people(app_ctx):
    ensure_lexicon()
    advisor = make_user("advisor")
    officer = make_user("compliance")
    officer2 = make_user("compliance")
    both = make_user("advisor", "compliance")
    db.session.commit()
    return {"advisor": advisor, "officer": officer, "officer2": officer2, "both": both}


def _approved_script(people, author=None):
    author = author or people["advisor"]
    script = studio.create_script(author, title="资产配置三原则", body=legal_script_body(author),
                                  caption="长期投资 #理财", hashtags="理财 资产配置", platforms=["douyin"])
    studio.submit_script(script, author)
    review = db.session.scalars(sa.select(Review).where(Review.script_id == script.id)).one()
    compliance.claim(review, people["officer"])
    compliance.decide(review, people["officer"], "approve")
    db.session.commit()
    return script


def _submitted_package(people):
    script = _approved_script(people)
    channel = make_channel()
    package = studio.create_package(script, people["advisor"], channel_ids=[channel.id])
    rendition = make_ready_rendition(package)
    studio.set_rendition(package, rendition, people["advisor"])
    studio.submit_package(package, people["advisor"])
    db.session.commit()
    review = db.session.scalars(sa.select(Review).where(Review.package_id == package.id)).one()
    return package, review


def test_submission_freezes_an_immutable_hashed_revision(people):
    advisor = people["advisor"]
    script = studio.create_script(advisor, title="标题", body=legal_script_body(advisor), platforms=["douyin"])
    revision = studio.submit_script(script, advisor)
    assert revision.number == 1 and len(revision.sha256) == 64
    assert revision.sha256 == studio.revision_hash({k: getattr(script, k) for k in
                                                    ("title", "body", "caption", "hashtags", "platforms")})
    assert script.status == "submitted"
    with pytest.raises(Conflict):
        studio.update_script(script, advisor, title="x", body="y", caption="", hashtags="", platforms=[])


def test_blocking_findings_prevent_submission_and_store_nothing(people):
    advisor = people["advisor"]
    script = studio.create_script(advisor, title="稳赚", body=legal_script_body(advisor) + "跟我买，稳 赚 不 赔！")
    db.session.commit()
    with pytest.raises(studio.BlockingFindings) as caught:
        studio.submit_script(script, advisor)
    db.session.rollback()
    body_findings = caught.value.report["fields"]["body"]
    assert any(f["text"].replace(" ", "") == "稳赚不赔" for f in body_findings)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ScriptRevision)) == 0
    assert db.session.get(type(script), script.id).status == "draft"


def test_author_cannot_approve_own_work_even_as_compliance_officer(people):
    both = people["both"]
    script = studio.create_script(both, title="t", body=legal_script_body(both))
    studio.submit_script(script, both)
    review = db.session.scalars(sa.select(Review)).one()
    with pytest.raises(PermissionDenied):
        compliance.claim(review, both)
    with pytest.raises(PermissionDenied):
        compliance.decide(review, both, "approve")


def test_only_compliance_officers_decide(people):
    advisor = people["advisor"]
    script = studio.create_script(advisor, title="t", body=legal_script_body(advisor))
    studio.submit_script(script, advisor)
    other_advisor = make_user("advisor")
    review = db.session.scalars(sa.select(Review)).one()
    with pytest.raises(PermissionDenied):
        compliance.claim(review, other_advisor)


def test_claim_locks_review_for_one_officer_until_released(people):
    advisor = people["advisor"]
    script = studio.create_script(advisor, title="t", body=legal_script_body(advisor))
    studio.submit_script(script, advisor)
    review = db.session.scalars(sa.select(Review)).one()
    compliance.claim(review, people["officer"])
    with pytest.raises(Conflict):
        compliance.claim(review, people["officer2"])
    with pytest.raises(Conflict):
        compliance.decide(review, people["officer2"], "approve")
    compliance.release(review, people["officer"])
    compliance.claim(review, people["officer2"])
    compliance.decide(review, people["officer2"], "request_changes", "请补充风险提示的位置")
    assert script.status == "changes_requested"


def test_expired_claim_can_be_taken_over(people):
    advisor = people["advisor"]
    script = studio.create_script(advisor, title="t", body=legal_script_body(advisor))
    studio.submit_script(script, advisor)
    review = db.session.scalars(sa.select(Review)).one()
    compliance.claim(review, people["officer"])
    review.claimed_until = review.claimed_until - timedelta(hours=2)
    compliance.claim(review, people["officer2"])
    assert review.claimed_by_id == people["officer2"].id


def test_request_changes_and_reject_need_a_reason(people):
    advisor = people["advisor"]
    script = studio.create_script(advisor, title="t", body=legal_script_body(advisor))
    studio.submit_script(script, advisor)
    review = db.session.scalars(sa.select(Review)).one()
    compliance.claim(review, people["officer"])
    for decision in ("request_changes", "reject"):
        with pytest.raises(ValidationError):
            compliance.decide(review, people["officer"], decision, "  ")
    assert review.decision is None


def test_package_approval_pins_the_manifest_hash(people):
    package, review = _submitted_package(people)
    compliance.claim(review, people["officer"])
    compliance.decide(review, people["officer"], "approve")
    db.session.commit()
    approval = db.session.scalars(sa.select(Approval).where(Approval.package_id == package.id)).one()
    manifest = compliance.package_manifest(package, review.manifest["lexicon_version"])
    assert approval.manifest_sha256 == compliance.manifest_hash(manifest)
    assert approval.manifest["rendition_sha256"] == package.rendition.sha256
    assert approval.manifest["script_revision_sha256"] == package.script_revision.sha256
    assert approval.manifest["channel_ids"] == [c.id for c in package.channels]
    assert package.status == "approved"
    days = (approval.expires_at - approval.approved_at).days
    assert days == 90


@pytest.mark.parametrize("change", ["caption", "channels", "subtitles", "rendition"])
def test_any_change_after_approval_voids_it(people, change):
    package, review = _submitted_package(people)
    compliance.claim(review, people["officer"])
    compliance.decide(review, people["officer"], "approve")
    advisor = people["advisor"]
    if change == "caption":
        studio.update_package(package, advisor, caption="新的文案")
    elif change == "channels":
        studio.update_package(package, advisor, channel_ids=[make_channel(platform="bilibili").id])
    elif change == "subtitles":
        studio.update_package(package, advisor, subtitles="1\n00:00:01,000 --> 00:00:02,000\n分散投资\n")
    else:
        studio.set_rendition(package, make_ready_rendition(package, b"another render"), advisor)
    assert package.status == "draft"
    assert compliance.live_approval(package) is None
    approval = db.session.scalars(sa.select(Approval).where(Approval.package_id == package.id)).one()
    assert approval.voided_at is not None and change in approval.void_reason


def test_change_after_claim_blocks_the_decision(people):
    package, review = _submitted_package(people)
    compliance.claim(review, people["officer"])
    # Simulate a change slipping in between claim and decision (e.g. a channel renamed to another id).
    package.caption = "sneaky change"
    with pytest.raises(Conflict) as caught:
        compliance.decide(review, people["officer"], "approve")
    assert caught.value.code == "changed_since_claim"


def test_approval_expires_and_can_be_renewed_only_by_new_review(people):
    package, review = _submitted_package(people)
    compliance.claim(review, people["officer"])
    compliance.decide(review, people["officer"], "approve")
    approval = compliance.live_approval(package)
    later = approval.expires_at + timedelta(seconds=1)
    assert compliance.expire_due_approvals(now=later) == 1
    assert package.status == "expired"
    studio.submit_package(package, people["advisor"])
    assert package.status == "submitted"
    renewal = db.session.scalars(sa.select(Review).where(Review.package_id == package.id,
                                                         Review.decision.is_(None))).one()
    assert renewal.id != review.id


def test_withdraw_requires_reason_and_voids_approval(people):
    package, review = _submitted_package(people)
    compliance.claim(review, people["officer"])
    compliance.decide(review, people["officer"], "approve")
    with pytest.raises(ValidationError):
        compliance.withdraw(package, people["officer"], "")
    with pytest.raises(PermissionDenied):
        compliance.withdraw(package, people["advisor"], "I want to")
    compliance.withdraw(package, people["officer"], "客户投诉：涉嫌夸大收益")
    assert package.status == "withdrawn" and compliance.live_approval(package) is None
    with pytest.raises(Conflict):
        studio.update_package(package, people["advisor"], caption="again")


def test_package_needs_preapproved_script_and_ready_rendition(people):
    advisor = people["advisor"]
    script = studio.create_script(advisor, title="t", body=legal_script_body(advisor))
    with pytest.raises(Conflict):
        studio.create_package(script, advisor)
    script = _approved_script(people)
    package = studio.create_package(script, advisor, channel_ids=[make_channel().id])
    with pytest.raises(Conflict) as caught:
        studio.submit_package(package, advisor)
    assert caught.value.code == "no_rendition"


def test_subtitle_lines_not_in_script_are_flagged(people):
    script = _approved_script(people)
    advisor = people["advisor"]
    package = studio.create_package(script, advisor, channel_ids=[make_channel().id])
    srt = ("1\n00:00:01,000 --> 00:00:03,000\n分散投资、长期持有\n\n"
           "2\n00:00:03,000 --> 00:00:05,000\n这只股票下周必有行情\n")
    studio.update_package(package, advisor, subtitles=srt)
    flagged = studio.subtitle_lines_not_in_script(package)
    assert [f["cue"] for f in flagged] == [2]


def test_someone_elses_script_cannot_be_submitted_or_edited(people):
    script = studio.create_script(people["advisor"], title="t", body=legal_script_body(people["advisor"]))
    intruder = make_user("advisor")
    with pytest.raises(PermissionDenied):
        studio.submit_script(script, intruder)
    with pytest.raises(PermissionDenied):
        studio.update_script(script, intruder, title="x", body="y", caption="", hashtags="", platforms=[])


@pytest.mark.parametrize("bad", ["", "x" * 20_001, "正常\x00文字", "a\x1bb"])
def test_bad_script_bodies_are_refused_with_clear_message(people, bad):
    advisor = people["advisor"]
    script = studio.create_script(advisor, title="t", body="ok")
    with pytest.raises(ValidationError) as caught:
        studio.update_script(script, advisor, title="t", body=bad, caption="", hashtags="", platforms=[])
        studio.submit_script(script, advisor)
    assert caught.value.message


def test_one_megabyte_script_is_refused_before_scanning(people):
    advisor = people["advisor"]
    with pytest.raises(ValidationError) as caught:
        studio.create_script(advisor, title="t", body="字" * 1_000_000)
    assert caught.value.fields == {"body": caught.value.fields["body"]} and "20000" in caught.value.message


def test_every_state_change_is_in_the_audit_chain(people):
    package, review = _submitted_package(people)
    compliance.claim(review, people["officer"])
    compliance.decide(review, people["officer"], "approve")
    db.session.commit()
    actions = set(db.session.scalars(sa.select(audit.AuditEntry.action)))
    for expected in ("script.submitted", "script.approved", "package.submitted", "package.approved",
                     "approval.granted", "review.claimed", "review.approve"):
        assert expected in actions
    assert audit.verify().ok


def test_lexicon_change_flags_live_approved_packages(people):
    package, review = _submitted_package(people)
    compliance.claim(review, people["officer"])
    compliance.decide(review, people["officer"], "approve")
    db.session.commit()
    officer = db.session.get(User, people["officer"].id)
    compliance.add_rule(phrase="资产配置", kind="forbidden", severity="block", category="test", actor=officer)
    version = compliance.current_lexicon_version()
    assert compliance.rescan_live_approvals(version) == 1
    approval = compliance.live_approval(package)
    assert approval.flagged_at is not None and approval.flag_scan_id is not None
    assert db.session.get(Package, package.id).status == "approved"
