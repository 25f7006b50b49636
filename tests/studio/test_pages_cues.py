"""The package page's subtitles as a table of cues: each cue with the script line it matches (or the
flag compliance sees), edited in place and saved back as SRT through the package update (audit,
approval voiding, re-render), refused per cue with nothing stored when a cue is wrong."""

from __future__ import annotations

import io
import re
from html import unescape

import pytest
import sqlalchemy as sa

from advisor_studio.accounts.models import User
from advisor_studio.audit import AuditEntry
from advisor_studio.errors import ValidationError
from advisor_studio.extensions import db
from advisor_studio.studio import services as studio
from advisor_studio.studio.models import Package, Script
from advisor_studio.video import services as video
from advisor_studio.video.models import Rendition
from advisor_studio.video.srt import MAX_CUE_CHARS, MAX_CUES
from tests.conftest import post_form, signed_in
from tests.factories import legal_script_body, make_channel, make_ready_rendition
from tests.studio.test_pages import approved_script, attr, by_testid, decide_open_review, html
from tests.studio.test_pages_packages import form_of, lexicon, package_state  # noqa: F401 (autouse)

SCRIPT_TAIL = "\n第二段：债券基金、波动较小，适合稳健配置。\n第三段：定期再平衡，量力而行。"
SRT = ("1\n00:00:01,000 --> 00:00:03,000\n债券基金，波动较小\n\n"
       "2\n00:00:03,000 --> 00:00:05,000\n这只股票下周必有行情\n\n"
       "3\n00:00:05,500 --> 00:00:07,000\n定期再平衡\n")


def cue_package(app, users, *, srt: str | None = SRT, rendition: bool = False, approved: bool = False) -> int:
    """A package of a three-line script with subtitles ``srt`` (approved: submitted and approved)."""
    advisor, officer = users["advisor"].id, users["compliance"].id
    with app.app_context():
        body = legal_script_body(db.session.get(User, advisor)) + SCRIPT_TAIL
    script_id = approved_script(app, advisor, officer, body=body)
    with app.app_context():
        author = db.session.get(User, advisor)
        package = studio.create_package(db.session.get(Script, script_id), author, channel_ids=[make_channel().id])
        if srt:
            studio.update_package(package, author, subtitles=srt)
        if rendition or approved:
            studio.set_rendition(package, make_ready_rendition(package), author)
        if approved:
            studio.submit_package(package, author)
        db.session.commit()
        package_id = package.id
    if approved:
        decide_open_review(app, officer, package_id=package_id)
    return package_id


def table_of(page) -> list[dict]:
    """The cue rows of the page's form, as the browser would post them."""
    body = html(page).split('data-testid="cue-table"', 1)[1].split("</table>", 1)[0]
    rows = []
    for row in re.findall(r'<tr data-testid="cue-row".*?</tr>', body, re.S):
        rows.append({"start": unescape(re.search(r'name="cues-start"\s+value="([^"]*)"', row).group(1)),
                     "end": unescape(re.search(r'name="cues-end"\s+value="([^"]*)"', row).group(1)),
                     "text": unescape(re.search(r'name="cues-text"[^>]*>([^<]*)</textarea>', row).group(1))})
    return rows


def base_of(page) -> str:
    return re.search(r'name="cues-base" value="([^"]*)"', html(page)).group(1)


def cue_post(app, package_id: int, rows: list[dict], base: str, *, remove=(), **changes) -> dict:
    """The package form with its cue table (as multipart, like the browser) and ``changes``."""
    data = form_of(app, package_id, **changes)
    data.update({"cues-base": base, "cues-start": [r["start"] for r in rows], "cues-end": [r["end"] for r in rows],
                 "cues-text": [r["text"] for r in rows], "cues-remove": list(remove)})
    return data


def save(client, package_id: int, data: dict):
    return post_form(client, f"/studio/packages/{package_id}", data, content_type="multipart/form-data")


def edited(app, client, package_id: int, change, **kwargs):
    """GET the page, apply ``change`` to its cue rows, post them; return (response, rows posted)."""
    page = client.get(f"/studio/packages/{package_id}")
    rows = table_of(page)
    change(rows)
    return save(client, package_id, cue_post(app, package_id, rows, base_of(page), **kwargs)), rows


def renditions(app, package_id: int) -> list[Rendition]:
    with app.app_context():
        return list(db.session.scalars(sa.select(Rendition).where(Rendition.package_id == package_id)
                                       .order_by(Rendition.id)))


# --- showing -------------------------------------------------------------------------------------


def test_each_cue_shows_its_times_text_and_the_script_line_it_matches(app, users):
    package_id = cue_package(app, users)
    page = signed_in(app, users["advisor"]).get(f"/studio/packages/{package_id}")
    rows = by_testid(page, "cue-row")
    assert [attr(r, "data-status") for r in rows] == ["match", "missing", "match", "blank"]
    # Lines 2 and 3 of the script (line 1 is the greeting and the disclosure).
    assert [attr(m, "data-line") for m in by_testid(page, "cue-match")] == ["2", "3"]
    assert len(by_testid(page, "cue-flag")) == 1
    [state] = by_testid(page, "subtitle-state")
    assert (attr(state, "data-cues"), attr(state, "data-flagged")) == ("3", "1")
    assert table_of(page) == [
        {"start": "00:00:01,000", "end": "00:00:03,000", "text": "债券基金，波动较小"},
        {"start": "00:00:03,000", "end": "00:00:05,000", "text": "这只股票下周必有行情"},
        {"start": "00:00:05,500", "end": "00:00:07,000", "text": "定期再平衡"},
        {"start": "", "end": "", "text": ""}]
    assert "<mark>债券基金、波动较小</mark>" in html(page)  # the script's own words, highlighted


def test_compliance_sees_the_same_table_without_inputs(app, users):
    package_id = cue_package(app, users)
    page = signed_in(app, users["compliance"]).get(f"/studio/packages/{package_id}")
    assert page.status_code == 200 and not by_testid(page, "package-form")
    assert [attr(r, "data-status") for r in by_testid(page, "cue-row")] == ["match", "missing", "match"]
    assert 'name="cues-' not in html(page) and "00:00:05,500" in html(page)


# --- saving --------------------------------------------------------------------------------------


def test_an_edited_cue_is_stored_as_srt_audited_and_rendered_again(app, users):
    package_id = cue_package(app, users, rendition=True)
    before = renditions(app, package_id)
    client = signed_in(app, users["advisor"])

    def change(rows):
        rows[1].update(start="00:00:03,200", text="投资有风险\n入市需谨慎")

    resp, _rows = edited(app, client, package_id, change)
    assert resp.status_code == 302
    expected = ("1\n00:00:01,000 --> 00:00:03,000\n债券基金，波动较小\n\n"
                "2\n00:00:03,200 --> 00:00:05,000\n投资有风险\n入市需谨慎\n\n"
                "3\n00:00:05,500 --> 00:00:07,000\n定期再平衡\n")
    assert package_state(app, package_id)["subtitles"] == expected
    with app.app_context():
        package = db.session.get(Package, package_id)
        [entry] = db.session.scalars(sa.select(AuditEntry).where(
            AuditEntry.action == "package.edited", AuditEntry.object_id == str(package_id))
            .order_by(AuditEntry.id.desc()).limit(1))
        assert "subtitles_srt" in entry.details["fields"]
        # A render of the new subtitles is queued, as after an upload of the same file.
        [queued] = [r for r in renditions(app, package_id) if r.id not in {b.id for b in before}]
        assert queued.status == "queued" and queued.recipe["request"]["subtitles_srt"] == expected
        assert queued.recipe_hash == video.current_recipe_hash(package)
    page = client.get(f"/studio/packages/{package_id}")
    assert [attr(r, "data-status") for r in by_testid(page, "cue-row")] == ["match", "match", "match", "blank"]


def test_a_cue_is_removed_by_its_checkbox_and_added_in_the_empty_row(app, users):
    package_id = cue_package(app, users)
    client = signed_in(app, users["advisor"])

    def change(rows):
        rows[-1].update(start="00:00:00,200", end="00:00:00,900", text="大家好")  # the empty row

    resp, _rows = edited(app, client, package_id, change, remove=["2"])
    assert resp.status_code == 302
    assert package_state(app, package_id)["subtitles"] == (
        "1\n00:00:00,200 --> 00:00:00,900\n大家好\n\n"  # sorted by time: the new cue comes first
        "2\n00:00:01,000 --> 00:00:03,000\n债券基金，波动较小\n\n"
        "3\n00:00:05,500 --> 00:00:07,000\n定期再平衡\n")


def test_removing_every_cue_removes_the_subtitles(app, users):
    package_id = cue_package(app, users)
    resp, _rows = edited(app, signed_in(app, users["advisor"]), package_id, lambda rows: None,
                         remove=["1", "2", "3"])
    assert resp.status_code == 302 and package_state(app, package_id)["subtitles"] is None


def test_saving_other_fields_keeps_the_uploaded_file_byte_for_byte(app, users):
    """A table that says what is stored changes nothing: not the file's tags, numbers, line ends or its
    overlapping cues (which the editor would refuse in an edit), so no render either."""
    srt = ("7\r\n00:00:01,000 --> 00:00:03,000\r\n<i>分散投资</i>，长期持有\r\n\r\n"
           "7\r\n00:00:02,000 --> 00:00:04,000\r\n控制回撤\r\n")
    package_id = cue_package(app, users, srt=srt, rendition=True)
    before = renditions(app, package_id)
    resp, _rows = edited(app, signed_in(app, users["advisor"]), package_id, lambda rows: None, caption="新的文案")
    assert resp.status_code == 302
    state = package_state(app, package_id)
    assert (state["caption"], state["subtitles"]) == ("新的文案", srt)
    assert len(renditions(app, package_id)) == len(before)


def test_an_approved_package_needs_the_void_confirmation_for_a_cue_edit(app, users):
    package_id = cue_package(app, users, approved=True)
    client = signed_in(app, users["advisor"])

    def change(rows):
        rows[0]["text"] = "分散投资"

    resp, rows = edited(app, client, package_id, change)
    assert resp.status_code == 400 and 'name="confirm_void"' in html(resp)
    state = package_state(app, package_id)
    assert (state["status"], state["live_approval"], state["subtitles"]) == ("approved", True, SRT)
    assert table_of(resp)[0]["text"] == "分散投资"  # the edit is still in the form

    resp, _rows = edited(app, client, package_id, change, confirm_void="y")
    assert resp.status_code == 302
    state = package_state(app, package_id)
    assert (state["status"], state["live_approval"]) == ("draft", False)
    assert state["subtitles"].startswith("1\n00:00:01,000 --> 00:00:03,000\n分散投资\n\n")


# --- refusing ------------------------------------------------------------------------------------

BAD_CUES = {
    # rule: (change to the rows, the input the message is shown at, a piece of the message)
    "start_not_a_time": (lambda rows: rows[0].update(start="1:2:3:4"), "cues-1-start", "1:2:3:4"),
    "end_not_a_time": (lambda rows: rows[1].update(end="五秒"), "cues-2-end", "五秒"),
    "start_missing": (lambda rows: rows[2].update(start=""), "cues-3-start", "00:01:02,500"),
    "end_before_start": (lambda rows: rows[1].update(start="00:00:04,000", end="00:00:03,500"), "cues-2-end",
                         "00:00:03,500"),
    "overlap": (lambda rows: rows[1].update(start="00:00:02,000"), "cues-2-start", "00:00:03,000"),
    "empty_text": (lambda rows: rows[0].update(text="  \n "), "cues-1-text", "1"),
    "too_long": (lambda rows: rows[2].update(text="字" * (MAX_CUE_CHARS + 1)), "cues-3-text",
                 str(MAX_CUE_CHARS + 1)),
    "tags": (lambda rows: rows[2].update(text="<b>定期再平衡</b>"), "cues-3-text", "<i>"),
    "timing_line": (lambda rows: rows[2].update(text="定期再平衡\n00:00:01,000 --> 00:00:02,000"), "cues-3-text", "3"),
    "control_character": (lambda rows: rows[0].update(text="分散\x07投资"), "cues-1-text", "1"),
}


@pytest.mark.parametrize("rule", sorted(BAD_CUES))
def test_a_bad_cue_is_refused_at_its_input_and_nothing_is_stored(app, users, rule):
    change, field, piece = BAD_CUES[rule]
    package_id = cue_package(app, users, rendition=True)
    before, renders = package_state(app, package_id), len(renditions(app, package_id))
    client = signed_in(app, users["advisor"])
    resp, rows = edited(app, client, package_id, change, caption="别的修改也不保存")
    assert resp.status_code == 400
    assert attr(by_testid(resp, "action-error")[0], "data-error-code") == "invalid_cues"
    [error] = [e for e in re.findall(r'<div[^>]*data-testid="cue-error"[^>]*>[^<]*</div>', html(resp))]
    assert attr(error, "data-field") == field
    number = field.split("-")[1]
    message = unescape(error.split(">", 1)[1])
    assert number in message and piece in message
    # Nothing stored, nothing rendered, and the table shows what was typed.
    assert package_state(app, package_id) == before and len(renditions(app, package_id)) == renders
    assert table_of(resp) == rows
    [row] = re.findall(rf'<tr data-testid="cue-row" data-key="{number}".*?</tr>', html(resp), re.S)
    [bad] = re.findall(r'<(?:input|textarea)[^>]*is-invalid[^>]*>', row)
    assert f'name="cues-{field.rsplit("-", 1)[1]}"' in bad


def _rows(n: int, step_ms: int = 2000) -> list[dict]:
    def tc(ms: int) -> str:
        return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    return [{"start": tc(i * step_ms), "end": tc(i * step_ms + step_ms // 2), "text": f"第{i + 1}句"} for i in range(n)]


def test_the_cues_of_a_long_video_save_through_the_form(app, users):
    """450 cues (a 15-minute video, a cue every 2 s) are 1,350 fields: more than Flask's 1,000 form parts."""
    package_id = cue_package(app, users)
    client = signed_in(app, users["advisor"])
    page = client.get(f"/studio/packages/{package_id}")
    resp = save(client, package_id, cue_post(app, package_id, _rows(450), base_of(page)))
    assert resp.status_code == 302
    stored = package_state(app, package_id)["subtitles"]
    assert stored.count(" --> ") == 450 and stored.endswith("450\n00:14:58,000 --> 00:14:59,000\n第450句\n")


def test_more_cues_than_an_srt_file_may_have_are_refused(app, users, monkeypatch):
    from advisor_studio.video import srt

    package_id = cue_package(app, users)
    before = package_state(app, package_id)
    client = signed_in(app, users["advisor"])
    page = client.get(f"/studio/packages/{package_id}")
    monkeypatch.setattr(srt, "MAX_CUES", 5)  # the parser's limit, lowered to keep the request small
    resp = save(client, package_id, cue_post(app, package_id, _rows(6), base_of(page)))
    assert resp.status_code == 400
    [error] = by_testid(resp, "action-error")
    assert attr(error, "data-error-code") == "too_many_cues"
    assert "6" in html(resp).split('data-testid="action-error"', 1)[1].split("</div>", 1)[0]
    assert by_testid(resp, "cue-table-error") and len(table_of(resp)) == 7  # what was typed, and a new row
    assert package_state(app, package_id) == before


def test_the_cue_limit_is_the_srt_parsers(app, users):
    package_id = cue_package(app, users)
    with app.app_context():
        package = db.session.get(Package, package_id)
        rows = [studio.CueInput(i + 1, r["start"], r["end"], r["text"])
                for i, r in enumerate(_rows(MAX_CUES + 1, 100))]
        with pytest.raises(ValidationError) as caught:
            studio.cues_to_srt(package, rows, package.subtitles_sha256)
        assert caught.value.code == "too_many_cues"
        assert studio.cues_to_srt(package, rows[:MAX_CUES], package.subtitles_sha256).count(" --> ") == MAX_CUES


def test_a_table_made_for_other_subtitles_is_a_409_and_overwrites_nothing(app, users):
    package_id = cue_package(app, users)
    client = signed_in(app, users["advisor"])
    page = client.get(f"/studio/packages/{package_id}")
    rows = table_of(page)
    # Meanwhile, in another tab, a new file is uploaded.
    newer = "1\n00:00:00,500 --> 00:00:02,000\n控制回撤\n"
    assert save(client, package_id, form_of(app, package_id, subtitles=(io.BytesIO(newer.encode()), "b.srt"))
                ).status_code == 302
    rows[0]["text"] = "分散投资"
    resp = save(client, package_id, cue_post(app, package_id, rows, base_of(page)))
    assert resp.status_code == 409
    assert attr(by_testid(resp, "action-error")[0], "data-error-code") == "subtitles_changed"
    assert package_state(app, package_id)["subtitles"] == newer


def test_an_upload_replaces_the_cues_unless_cues_were_edited_too(app, users):
    package_id = cue_package(app, users)
    client = signed_in(app, users["advisor"])
    newer = "1\n00:00:00,500 --> 00:00:02,000\n控制回撤\n"
    page = client.get(f"/studio/packages/{package_id}")
    rows = table_of(page)
    rows[0]["text"] = "分散投资"
    data = cue_post(app, package_id, rows, base_of(page), subtitles=(io.BytesIO(newer.encode()), "b.srt"))
    resp = save(client, package_id, data)
    assert resp.status_code == 400
    assert attr(by_testid(resp, "action-error")[0], "data-error-code") == "cues_and_file"
    assert package_state(app, package_id)["subtitles"] == SRT

    data = cue_post(app, package_id, table_of(page), base_of(page), subtitles=(io.BytesIO(newer.encode()), "b.srt"))
    assert save(client, package_id, data).status_code == 302
    assert package_state(app, package_id)["subtitles"] == newer


def test_a_table_sent_in_pieces_is_refused(app, users):
    package_id = cue_package(app, users)
    client = signed_in(app, users["advisor"])
    page = client.get(f"/studio/packages/{package_id}")
    data = cue_post(app, package_id, table_of(page), base_of(page), caption="不保存")
    data["cues-text"] = data["cues-text"][:-1]
    resp = save(client, package_id, data)
    assert resp.status_code == 400
    assert package_state(app, package_id)["caption"] != "不保存"


@pytest.mark.parametrize("role", ["advisor2", "compliance", "admin", "mcn"])
def test_only_the_author_can_save_cues(app, users, role):
    package_id = cue_package(app, users)
    page = signed_in(app, users["advisor"]).get(f"/studio/packages/{package_id}")
    rows = table_of(page)
    rows[0]["text"] = "分散投资"
    client = signed_in(app, users[role])
    form_page = "/studio/packages" if role.startswith("advisor") else "/"
    resp = post_form(client, f"/studio/packages/{package_id}", cue_post(app, package_id, rows, base_of(page)),
                     form_page=form_page, content_type="multipart/form-data")
    assert resp.status_code == 403
    assert package_state(app, package_id)["subtitles"] == SRT
