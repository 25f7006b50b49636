"""The package pages over HTTP: creation from a pre-approved script, editing with SRT errors that
name the line, the submit checklist, approval voiding with confirmation, recall and archive."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa

from advisor_studio.accounts.models import User
from advisor_studio.audit import AuditEntry
from advisor_studio.compliance import services as compliance
from advisor_studio.compliance.models import Approval
from advisor_studio.extensions import db
from advisor_studio.studio import services as studio
from advisor_studio.studio.models import Package
from tests.conftest import post_form, signed_in
from tests.factories import ensure_lexicon, make_channel, make_ready_rendition
from tests.studio.test_pages import (
    approved_package,
    approved_script,
    attr,
    by_testid,
    create_script,
    decide_open_review,
    html,
    package_for,
)

BAD_SRT = "1\n00:00:01,000 --> 00:00:02,000\n分散投资\n\n2\n00:00:03,000 -> 00:00:04,000\n长期持有\n"
GOOD_SRT = ("1\n00:00:01,000 --> 00:00:03,000\n分散投资、长期持有\n\n"
            "2\n00:00:03,000 --> 00:00:05,000\n这只股票下周必有行情\n")


@pytest.fixture(autouse=True)
def lexicon(app):
    with app.app_context():
        ensure_lexicon()
        db.session.commit()


def package_state(app, package_id: int) -> dict:
    with app.app_context():
        package = db.session.get(Package, package_id)
        return {"status": package.status, "caption": package.caption, "title": package.title,
                "channels": sorted(c.id for c in package.channels), "subtitles": package.subtitles_srt,
                "live_approval": compliance.live_approval(package) is not None}


def form_of(app, package_id: int, **changes) -> dict:
    """The package form as the page would post it, with ``changes``."""
    state = package_state(app, package_id)
    with app.app_context():
        package = db.session.get(Package, package_id)
        data = {"title": package.title, "caption": package.caption,
                "hashtags": " ".join(f"#{t}" for t in package.hashtags), "channels": state["channels"],
                "cover_time_s": str(package.cover_time_s)}
    data.update(changes)
    return data


def test_package_is_created_from_the_preapproved_script_only(app, users):
    advisor = users["advisor"]
    client = signed_in(app, advisor)
    draft_id = create_script(app, advisor.id)
    resp = post_form(client, f"/studio/scripts/{draft_id}/packages", {}, form_page=f"/studio/scripts/{draft_id}")
    assert resp.status_code == 409
    assert attr(by_testid(resp, "action-error")[0], "data-error-code") == "script_not_preapproved"
    script_id = approved_script(app, advisor.id, users["compliance"].id)
    resp = post_form(client, f"/studio/scripts/{script_id}/packages", {}, form_page=f"/studio/scripts/{script_id}")
    assert resp.status_code == 302
    with app.app_context():
        package = db.session.scalars(sa.select(Package).where(Package.script_id == script_id)).one()
        assert (package.status, package.author_id) == ("draft", advisor.id)


def test_preapproved_script_page_leads_to_its_package(app, users):
    advisor = users["advisor"]
    script_id = approved_script(app, advisor.id, users["compliance"].id)
    client = signed_in(app, advisor)
    page = client.get(f"/studio/scripts/{script_id}")
    assert by_testid(page, "next-step") and not by_testid(page, "open-package")
    [button] = by_testid(page, "create-package")
    assert "btn-success" in attr(button, "class")  # the page's main action
    resp = post_form(client, f"/studio/scripts/{script_id}/packages", {}, form_page=f"/studio/scripts/{script_id}")
    assert resp.status_code == 302
    package_page = client.get(resp.headers["Location"])
    assert package_page.status_code == 200 and by_testid(package_page, "package-form")
    package_id = int(resp.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    # Back on the script: the next step is the package just made, not another one.
    page = client.get(f"/studio/scripts/{script_id}")
    assert attr(by_testid(page, "next-step")[0], "data-package-id") == str(package_id)
    assert attr(by_testid(page, "open-package")[0], "href") == f"/studio/packages/{package_id}"
    assert "btn-outline-secondary" in attr(by_testid(page, "create-package")[0], "class")
    # Compliance reads that the script is pre-approved, without the advisor's buttons.
    page = signed_in(app, users["compliance"]).get(f"/studio/scripts/{script_id}")
    assert by_testid(page, "preapproved") and not by_testid(page, "create-package")


def test_edit_package_reports_the_bad_srt_line_and_saves_nothing(app, users):
    package_id = package_for(app, users["advisor"].id, users["compliance"].id)
    before = package_state(app, package_id)
    client = signed_in(app, users["advisor"])
    url = f"/studio/packages/{package_id}"
    data = form_of(app, package_id, caption="新的文案", subtitles=(io.BytesIO(BAD_SRT.encode()), "clip.srt"))
    resp = post_form(client, url, data, content_type="multipart/form-data")
    assert resp.status_code == 400
    [error] = by_testid(resp, "action-error")
    assert attr(error, "data-error-code") == "invalid"
    field_error = html(resp).split('data-testid="subtitles-error"', 1)[1].split("</div>", 1)[0]
    assert "line 6" in field_error  # the malformed timing line of the file
    assert package_state(app, package_id) == before


def test_edit_package_caption_channels_and_subtitles(app, users):
    package_id = package_for(app, users["advisor"].id, users["compliance"].id)
    with app.app_context():
        other = make_channel(partner_name="蓝海MCN", platform="bilibili").id
        db.session.commit()
    client = signed_in(app, users["advisor"])
    page = client.get(f"/studio/packages/{package_id}")
    assert f'value="{other}"' in html(page) and by_testid(page, "channel-choices")
    data = form_of(app, package_id, caption="新的文案", channels=[other],
                   subtitles=(io.BytesIO(GOOD_SRT.encode()), "clip.srt"))
    resp = post_form(client, f"/studio/packages/{package_id}", data, content_type="multipart/form-data")
    assert resp.status_code == 302
    state = package_state(app, package_id)
    assert (state["caption"], state["channels"], state["subtitles"].startswith("1\n")) == ("新的文案", [other], True)
    page = client.get(f"/studio/packages/{package_id}")
    assert [attr(t, "data-cue") for t in by_testid(page, "subtitle-line")] == ["2"]  # not in the script
    resp = post_form(client, f"/studio/packages/{package_id}", form_of(app, package_id, remove_subtitles="y"))
    assert resp.status_code == 302 and package_state(app, package_id)["subtitles"] is None


def test_empty_subtitle_file_is_refused(app, users):
    package_id = package_for(app, users["advisor"].id, users["compliance"].id)
    client = signed_in(app, users["advisor"])
    data = form_of(app, package_id, caption="x", subtitles=(io.BytesIO(b""), "empty.srt"))
    resp = post_form(client, f"/studio/packages/{package_id}", data, content_type="multipart/form-data")
    assert resp.status_code == 400 and by_testid(resp, "subtitles-error")
    assert package_state(app, package_id)["caption"] != "x"


def test_inactive_or_unknown_channel_is_refused(app, users):
    package_id = package_for(app, users["advisor"].id, users["compliance"].id)
    resp = post_form(signed_in(app, users["advisor"]), f"/studio/packages/{package_id}",
                     form_of(app, package_id, channels=[999_999]))
    assert resp.status_code == 400
    assert package_state(app, package_id)["channels"] != [999_999]


def test_submit_without_rendition_is_a_clear_409_and_the_checklist_says_what_is_missing(app, users):
    package_id = package_for(app, users["advisor"].id, users["compliance"].id)
    client = signed_in(app, users["advisor"])
    page = client.get(f"/studio/packages/{package_id}")
    assert attr(by_testid(page, "check-rendition")[0], "data-ok") == "false"
    assert attr(by_testid(page, "check-channels")[0], "data-ok") == "true"
    assert by_testid(page, "rendition-panel") and by_testid(page, "no-rendition")
    resp = post_form(client, f"/studio/packages/{package_id}/submit", {}, form_page=f"/studio/packages/{package_id}")
    assert resp.status_code == 409
    assert attr(by_testid(resp, "action-error")[0], "data-error-code") == "no_rendition"
    assert package_state(app, package_id)["status"] == "draft"


def test_submit_without_channels_is_refused(app, users):
    package_id = package_for(app, users["advisor"].id, users["compliance"].id, rendition=True, channel=False)
    client = signed_in(app, users["advisor"])
    page = client.get(f"/studio/packages/{package_id}")
    assert attr(by_testid(page, "check-channels")[0], "data-ok") == "false"
    resp = post_form(client, f"/studio/packages/{package_id}/submit", {}, form_page=f"/studio/packages/{package_id}")
    assert resp.status_code == 400
    assert package_state(app, package_id)["status"] == "draft"


def test_submit_button_saves_the_ticked_channels_then_submits(app, users):
    # Ticking a channel and pressing submit without saving first used to lose the tick.
    package_id = package_for(app, users["advisor"].id, users["compliance"].id, rendition=True, channel=False)
    with app.app_context():
        channel = make_channel(partner_name="蓝海MCN", platform="douyin").id
        db.session.commit()
    client = signed_in(app, users["advisor"])
    page = client.get(f"/studio/packages/{package_id}")
    [button] = by_testid(page, "submit-package")
    assert attr(button, "form") == "package-form" and attr(button, "name") == "then_submit"
    resp = post_form(client, f"/studio/packages/{package_id}", form_of(app, package_id, channels=[channel],
                                                                      then_submit="1"))
    assert resp.status_code == 302
    state = package_state(app, package_id)
    assert (state["status"], state["channels"]) == ("submitted", [channel])


def test_save_and_submit_keeps_the_changes_when_the_submission_is_refused(app, users):
    package_id = package_for(app, users["advisor"].id, users["compliance"].id, rendition=True)
    client = signed_in(app, users["advisor"])
    resp = post_form(client, f"/studio/packages/{package_id}",
                     form_of(app, package_id, caption="跟着我稳赚不赔", then_submit="1"))
    assert resp.status_code == 400
    assert attr(by_testid(resp, "findings")[0], "data-blocking") == "true"
    state = package_state(app, package_id)
    assert (state["status"], state["caption"]) == ("draft", "跟着我稳赚不赔")


def test_blocking_caption_refuses_the_package_submission_with_the_report(app, users):
    package_id = package_for(app, users["advisor"].id, users["compliance"].id, rendition=True)
    with app.app_context():
        package = db.session.get(Package, package_id)
        studio.update_package(package, db.session.get(User, users["advisor"].id), caption="跟着我稳赚不赔")
        db.session.commit()
    client = signed_in(app, users["advisor"])
    resp = post_form(client, f"/studio/packages/{package_id}/submit", {}, form_page=f"/studio/packages/{package_id}")
    assert resp.status_code == 400
    assert attr(by_testid(resp, "findings")[0], "data-blocking") == "true"
    assert '<mark class="finding finding-block"' in html(resp).split('data-testid="highlight-caption"', 1)[1]
    assert package_state(app, package_id)["status"] == "draft"


def test_submit_recall_and_resubmit_a_package(app, users):
    package_id = package_for(app, users["advisor"].id, users["compliance"].id, rendition=True)
    client = signed_in(app, users["advisor"])
    page = client.get(f"/studio/packages/{package_id}")
    assert attr(by_testid(page, "check-rendition")[0], "data-ok") == "true"
    assert by_testid(page, "rendition-info")
    url = f"/studio/packages/{package_id}"
    assert post_form(client, f"{url}/submit", {}, form_page=url).status_code == 302
    assert package_state(app, package_id)["status"] == "submitted"
    page = client.get(url)
    assert by_testid(page, "in-review") and by_testid(page, "package-readonly")
    assert post_form(client, f"{url}/recall", {}, form_page=url).status_code == 302
    assert package_state(app, package_id)["status"] == "draft"
    assert post_form(client, f"{url}/submit", {}, form_page=url).status_code == 302
    decide_open_review(app, users["compliance"].id, "request_changes", "字幕与脚本不一致", package_id=package_id,
                       comment="第二条字幕请删除")
    page = client.get(url)
    assert by_testid(page, "changes-requested")
    [review] = [t for t in by_testid(page, "review") if attr(t, "data-decision") == "request_changes"]
    assert review and "字幕与脚本不一致" in html(page) and "第二条字幕请删除" in html(page)


def test_recall_after_the_decision_is_refused_and_leaves_the_approval_live(app, users):
    """A recall that arrives once the officer has decided (a slow tab, a race lost) changes nothing."""
    package_id = approved_package(app, users["advisor"].id, users["compliance"].id)
    client = signed_in(app, users["advisor"])
    url = f"/studio/packages/{package_id}"
    resp = post_form(client, f"{url}/recall", {}, form_page=url)
    assert resp.status_code == 409
    state = package_state(app, package_id)
    assert (state["status"], state["live_approval"]) == ("approved", True)
    with app.app_context():
        actions = db.session.scalars(sa.select(AuditEntry.action).where(
            AuditEntry.object_type == "package", AuditEntry.object_id == str(package_id))).all()
        assert "package.recalled" not in actions and "package.approval_voided" not in actions


def test_editing_an_approved_package_needs_confirmation_and_voids_the_approval(app, users):
    package_id = approved_package(app, users["advisor"].id, users["compliance"].id)
    client = signed_in(app, users["advisor"])
    url = f"/studio/packages/{package_id}"
    page = client.get(url)
    assert by_testid(page, "void-warning")
    assert attr(by_testid(page, "approval")[0], "data-live") == "true"
    assert 'name="confirm_void"' in html(page)

    resp = post_form(client, url, form_of(app, package_id, caption="改一下文案"))
    assert resp.status_code == 400
    state = package_state(app, package_id)
    assert (state["status"], state["live_approval"]) == ("approved", True) and state["caption"] != "改一下文案"

    resp = post_form(client, url, form_of(app, package_id, caption="改一下文案", confirm_void="y"))
    assert resp.status_code == 302
    state = package_state(app, package_id)
    assert (state["status"], state["live_approval"], state["caption"]) == ("draft", False, "改一下文案")
    page = client.get(url)
    assert attr(by_testid(page, "approval")[0], "data-live") == "false"
    assert not by_testid(page, "void-warning")
    with app.app_context():
        approval = db.session.scalars(sa.select(Approval).where(Approval.package_id == package_id)).one()
        assert approval.voided_at is not None and "caption" in approval.void_reason


def test_new_rendition_not_yet_offered_is_announced(app, users):
    package_id = package_for(app, users["advisor"].id, users["compliance"].id)
    with app.app_context():
        make_ready_rendition(db.session.get(Package, package_id))
        db.session.commit()
    page = signed_in(app, users["advisor"]).get("/studio/")
    [row] = [t for t in by_testid(page, "content-row") if attr(t, "data-kind") == "package"]
    assert attr(row, "data-blocking") == "offer_rendition"


def test_archive_package_needs_confirmation(app, users):
    package_id = package_for(app, users["advisor"].id, users["compliance"].id)
    client = signed_in(app, users["advisor"])
    url = f"/studio/packages/{package_id}"
    assert post_form(client, f"{url}/archive", {}, form_page=url).status_code == 400
    assert package_state(app, package_id)["status"] == "draft"
    assert post_form(client, f"{url}/archive", {"confirm": "y"}, form_page=url).status_code == 302
    assert package_state(app, package_id)["status"] == "archived"


def test_packages_list_shows_rendition_state_and_expiry(app, users):
    advisor, officer = users["advisor"], users["compliance"]
    draft = package_for(app, advisor.id, officer.id)
    approved = approved_package(app, advisor.id, officer.id)
    client = signed_in(app, advisor)
    page = client.get("/studio/packages")
    rows = {attr(t, "data-package-id") for t in by_testid(page, "package-row")}
    assert rows == {str(draft), str(approved)}
    states = [attr(t, "data-rendition") for t in by_testid(page, "rendition-state")]
    assert sorted(states) == ["none", "ready"]
    filtered = client.get("/studio/packages?status=approved")
    assert [attr(t, "data-package-id") for t in by_testid(filtered, "package-row")] == [str(approved)]
    assert "—" not in html(filtered).split('data-testid="expires-at"', 1)[1].split("</td>", 1)[0]
    empty = signed_in(app, users["advisor2"]).get("/studio/packages")
    assert by_testid(empty, "empty-state")


def test_upload_warning_shows_on_an_approved_package_only(app, users):
    draft_id = package_for(app, users["advisor"].id, users["compliance"].id, rendition=True)
    approved_id = approved_package(app, users["advisor"].id, users["compliance"].id)
    client = signed_in(app, users["advisor"])
    draft = client.get(f"/studio/packages/{draft_id}")
    assert not by_testid(draft, "upload-approved-warning")
    # Channels are named by platform, not by its code.
    labels = html(draft).split('data-testid="channel-choices"', 1)[1].split("</fieldset>", 1)[0]
    assert "抖音 · h" in labels and "douyin:" not in labels
    assert by_testid(client.get(f"/studio/packages/{approved_id}"), "upload-approved-warning")
