"""Every state change on the advisor side: scripts, frozen revisions, packages and submissions."""

from __future__ import annotations

import hashlib
import json
import re
from typing import NamedTuple

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import ngettext

from advisor_studio import audit, system_reasons
from advisor_studio.compliance import services as compliance
from advisor_studio.compliance.models import STAGE_SCRIPT, Approval
from advisor_studio.compliance.scanner import PLATFORMS
from advisor_studio.concurrency import flush_or_conflict
from advisor_studio.dbtypes import utcnow
from advisor_studio.errors import Conflict, PermissionDenied, ValidationError
from advisor_studio.extensions import db
from advisor_studio.studio import states
from advisor_studio.studio.cuematch import MISSING, match_cues
from advisor_studio.studio.models import (
    BODY_MAX,
    CAPTION_MAX,
    FIELD_LABELS,
    HASHTAG_MAX,
    PACKAGE_EDITABLE,
    PACKAGE_OPEN,
    PKG_APPROVED,
    PKG_ARCHIVED,
    PKG_DRAFT,
    PKG_EXPIRED,
    PKG_SUBMITTED,
    SCRIPT_APPROVED,
    SCRIPT_ARCHIVED,
    SCRIPT_DRAFT,
    SCRIPT_EDITABLE,
    SCRIPT_OPEN,
    SCRIPT_SUBMITTED,
    STATUS_LABELS,
    TITLE_MAX,
    Package,
    Script,
    ScriptRevision,
)

SRT_MAX_BYTES = 2 * 1024 * 1024
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HASHTAG_RE = re.compile(r"^[^\s#,，]{1,30}$")


class BlockingFindings(ValidationError):
    """The pre-check found blocking problems; ``report`` holds every finding for the page."""

    code = "blocking_findings"

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


# --- validation ---------------------------------------------------------------------------------


def _clean_text(value: str | None, field: str, limit: int, required: bool = False) -> str:
    label = FIELD_LABELS.get(field, field)
    value = (value or "").replace("\r\n", "\n").replace("\r", "\n")
    if _CONTROL_RE.search(value):
        raise ValidationError(_("The %(field)s contains control characters; remove them and try again.",
                                field=label), fields={field: _("control characters")})
    value = value.strip()
    if required and not value:
        raise ValidationError(_("The %(field)s is required.", field=label), fields={field: _("required")})
    if len(value) > limit:
        raise ValidationError(_("The %(field)s has %(n)d characters; at most %(max)d are allowed.",
                                field=label, n=len(value), max=limit), fields={field: _("too long")})
    return value


def parse_hashtags(raw) -> list[str]:
    """'#a #b, c' or a list -> ['a', 'b', 'c'] (deduplicated, order kept)."""
    items = raw if isinstance(raw, list | tuple) else re.split(r"[\s,，#]+", raw or "")
    tags: list[str] = []
    for item in items:
        tag = (item or "").strip().lstrip("#")
        if not tag:
            continue
        if not _HASHTAG_RE.match(tag):
            raise ValidationError(_("Invalid hashtag: %(tag)s", tag=tag[:40]), fields={"hashtags": _("invalid")})
        if tag not in tags:
            tags.append(tag)
    if len(tags) > HASHTAG_MAX:
        raise ValidationError(_("At most %(n)d hashtags.", n=HASHTAG_MAX), fields={"hashtags": _("too many")})
    return tags


def _platforms(values) -> list[str]:
    chosen = sorted(set(values or []))
    unknown = [p for p in chosen if p not in PLATFORMS]
    if unknown:
        raise ValidationError(_("Unknown platform: %(p)s", p=", ".join(unknown)), fields={"platforms": _("invalid")})
    return chosen


def _require_author(obj, actor) -> None:
    if actor is None or obj.author_id != actor.id:
        raise PermissionDenied(_("Only the author can change this."))


# --- scripts ------------------------------------------------------------------------------------


def _script_content(title, body, caption, hashtags, platforms) -> dict:
    return {
        "title": _clean_text(title, "title", TITLE_MAX, required=True),
        "body": _clean_text(body, "body", BODY_MAX),
        "caption": _clean_text(caption, "caption", CAPTION_MAX),
        "hashtags": parse_hashtags(hashtags),
        "platforms": _platforms(platforms),
    }


def create_script(author, *, title, body="", caption="", hashtags=(), platforms=()) -> Script:
    """Start a draft script."""
    if not author.has_role("advisor") or author.advisor_profile is None:
        raise PermissionDenied(_("Only advisors with a SAC registration number write scripts."))
    content = _script_content(title, body, caption, hashtags, platforms)
    script = Script(author_id=author.id, status=SCRIPT_DRAFT, **content)
    db.session.add(script)
    db.session.flush()
    audit.record("script.created", "script", script.id, actor=author, details={"title": content["title"]})
    return script


def update_script(script: Script, actor, *, title, body, caption, hashtags, platforms) -> Script:
    """Save the draft; editing an approved or returned script reopens it as a draft."""
    _require_author(script, actor)
    if script.status == SCRIPT_SUBMITTED:
        raise Conflict(_("The script is waiting for review. Recall it before editing."), code="in_review")
    if script.status not in SCRIPT_EDITABLE:
        raise Conflict(_("A %(status)s script cannot be edited.", status=STATUS_LABELS[script.status]),
                       code="not_editable")
    content = _script_content(title, body, caption, hashtags, platforms)
    changed = [k for k, v in content.items() if getattr(script, k) != v]
    if not changed:
        return script
    for key, value in content.items():
        setattr(script, key, value)
    script.updated_at = utcnow()
    if script.status == SCRIPT_APPROVED:
        states.transition_script(script, SCRIPT_DRAFT, actor, system_reasons.EDITED_AFTER_PREAPPROVAL,
                                 {"fields": changed})
    flush_or_conflict(states.KIND_LABELS["script"])  # the version check refuses an edit of a stale read
    audit.record("script.edited", "script", script.id, actor=actor, details={"fields": changed})
    return script


def script_fields(script_or_revision) -> dict[str, str]:
    """The texts of a script (or revision) that are scanned."""
    return {"title": script_or_revision.title, "body": script_or_revision.body,
            "caption": script_or_revision.caption,
            "hashtags": " ".join(f"#{t}" for t in script_or_revision.hashtags or [])}


def precheck_script(script: Script) -> dict:
    """Scan the working draft as a submission would, without storing anything."""
    return compliance.scan_fields(script_fields(script), platforms=script.platforms, advisor=script.author)


def revision_hash(content: dict) -> str:
    """SHA-256 of the canonical JSON of a revision's content."""
    canonical = {k: content[k] for k in ("title", "body", "caption", "hashtags", "platforms")}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False).encode()).hexdigest()


def submit_script(script: Script, actor) -> ScriptRevision:
    """Freeze an immutable revision, pre-check it and queue it for script pre-approval."""
    _require_author(script, actor)
    if script.status not in SCRIPT_OPEN:
        raise Conflict(_("Only a draft or returned script can be submitted."), code="not_submittable")
    if not script.body.strip():
        raise ValidationError(_("The script body is empty."), fields={"body": _("required")})
    report = precheck_script(script)
    if report["blocking"]:
        raise BlockingFindings(_("The pre-check found blocking problems. Fix them before submitting."), report)
    content = {k: getattr(script, k) for k in ("title", "body", "caption", "hashtags", "platforms")}
    number = (db.session.scalar(sa.select(sa.func.max(ScriptRevision.number))
                                .where(ScriptRevision.script_id == script.id)) or 0) + 1
    revision = ScriptRevision(script_id=script.id, number=number, created_by_id=actor.id,
                              sha256=revision_hash(content), **content)
    db.session.add(revision)
    db.session.flush()
    scan = compliance.record_scan("script_revision", revision.id, report)
    revision.scan_id = scan.id
    script.latest_revision_id = revision.id
    states.transition_script(script, SCRIPT_SUBMITTED, actor, "",
                             {"revision": number, "sha256": revision.sha256, "scan_id": scan.id})
    compliance.open_review(stage=STAGE_SCRIPT, script=script, revision=revision, author=actor,
                           manifest=compliance.script_manifest(revision, report["lexicon_version"]), scan=scan)
    return revision


def recall_script(script: Script, actor) -> Script:
    """Take a submitted script back to draft (its open review is closed)."""
    _require_author(script, actor)
    if script.status != SCRIPT_SUBMITTED:  # decided in the meantime: the decision stands
        raise Conflict(_("Only a script under review can be recalled; it has been decided."),
                       code="not_recallable")
    # Review first, then script: the same lock order as a decision, so the two cannot deadlock.
    compliance.supersede_open_script_reviews(script, actor, "recalled")
    states.transition_script(script, SCRIPT_DRAFT, actor, system_reasons.RECALLED_BY_AUTHOR)
    return script


def archive_script(script: Script, actor, reason: str = "") -> Script:
    """Archive a script (nothing is deleted; packages already made from it keep working)."""
    _require_author(script, actor)
    states.transition_script(script, SCRIPT_ARCHIVED, actor, reason)
    return script


def script_is_preapproved(revision: ScriptRevision) -> bool:
    """True when compliance pre-approved exactly this revision."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(Approval).where(
        Approval.stage == STAGE_SCRIPT, Approval.script_revision_id == revision.id,
        Approval.voided_at.is_(None))) > 0


# --- packages -----------------------------------------------------------------------------------


def _channels(channel_ids) -> list:
    from advisor_studio.distribution.models import Channel

    ids = sorted({int(i) for i in channel_ids or []})
    if not ids:
        return []
    channels = list(db.session.scalars(sa.select(Channel).where(Channel.id.in_(ids), Channel.active.is_(True))))
    if len(channels) != len(ids):
        raise ValidationError(_("One of the chosen channels does not exist or is inactive."),
                              fields={"channels": _("invalid")})
    return channels


def validate_srt(srt_text: str | bytes | None) -> tuple[str | None, str | None]:
    """Parse an SRT upload; return (text, sha256) or raise a ValidationError naming the line."""
    from advisor_studio.video.srt import SubtitleError, decode_srt, parse_srt

    if srt_text is None or srt_text in ("", b""):
        return None, None
    raw = srt_text if isinstance(srt_text, bytes) else srt_text.encode()
    if len(raw) > SRT_MAX_BYTES:
        raise ValidationError(_("The subtitle file is larger than 2 MB."), fields={"subtitles": _("too large")})
    try:
        text = decode_srt(raw)
        parse_srt(text)
    except SubtitleError as exc:
        if exc.reason_code == "control_character":
            raise ValidationError(_("The subtitle file contains a control character (such as a NUL byte) on line "
                                    "%(line)d. Remove it and upload the file again.", line=exc.line_no),
                                  fields={"subtitles": _("line %(line)d", line=exc.line_no)}) from exc
        raise ValidationError(_("The subtitle file is not valid SRT: %(why)s", why=str(exc)),
                              fields={"subtitles": str(exc)}) from exc
    return text, hashlib.sha256(text.encode()).hexdigest()


class CueInput(NamedTuple):
    """One row of the package page's cue table as typed; ``number`` (its place in the table) names it in errors."""

    number: int
    start: str
    end: str
    text: str
    remove: bool = False


def cue_field(number: int, part: str) -> str:
    """The name under which a problem with one input of the cue table is reported (part: start/end/text)."""
    return f"cues-{number}-{part}"


def _cue_time(value: str, number: int, part: str, problems: dict[str, str]) -> float | None:
    from advisor_studio.video.srt import SubtitleError, parse_timestamp

    if not value.strip():
        problems[cue_field(number, part)] = (
            _("Cue %(n)d needs a start time, such as 00:01:02,500.", n=number) if part == "start"
            else _("Cue %(n)d needs an end time, such as 00:01:04,000.", n=number))
        return None
    try:
        return parse_timestamp(value)
    except SubtitleError:
        shown = value.strip()[:40]
        problems[cue_field(number, part)] = (
            _("Cue %(n)d: the start time “%(value)s” is not a time. Write hours:minutes:seconds,milliseconds, "
              "such as 00:01:02,500.", n=number, value=shown) if part == "start"
            else _("Cue %(n)d: the end time “%(value)s” is not a time. Write hours:minutes:seconds,milliseconds, "
                   "such as 00:01:04,000.", n=number, value=shown))
        return None


def _cue_text(value: str, number: int, problems: dict[str, str]) -> str | None:
    from advisor_studio.video.srt import MAX_CUE_CHARS, clean_text, is_timing_line

    lines = [line.strip() for line in value.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    text = "\n".join(line for line in lines if line)  # a blank line would end the cue in the SRT file
    field = cue_field(number, "text")
    if not text:
        problems[field] = _("Cue %(n)d has no text. Type what is said, or tick “Remove” to drop the cue.", n=number)
    elif _CONTROL_RE.search(text):
        problems[field] = _("Cue %(n)d contains a control character; remove it.", n=number)
    elif clean_text(text) != text:
        problems[field] = _("Cue %(n)d contains formatting tags such as <i> or {\\an8}, which the video does not "
                            "show; remove them.", n=number)
    elif any(is_timing_line(line) for line in text.split("\n")):
        problems[field] = _("Cue %(n)d has a line that reads like an SRT time line; reword it.", n=number)
    elif len(text) > MAX_CUE_CHARS:
        problems[field] = _("Cue %(n)d has %(len)d characters; at most %(max)d are allowed.",
                            n=number, len=len(text), max=MAX_CUE_CHARS)
    else:
        return text
    return None


def cues_to_srt(package: Package, rows: list[CueInput], base: str | None) -> str | None:
    """The SRT the cue table describes ("" for no cues), or None when it describes the stored cues.

    Every problem is named at its input (ValidationError fields from cue_field()); a table shown for
    other subtitles than those stored now (``base`` is their SHA-256) is a Conflict, so an edit made
    in another tab is never overwritten unseen.
    """
    from advisor_studio.video.srt import MAX_CUES, format_timestamp, serialize_srt

    kept = [row for row in rows if not row.remove and (row.start.strip() or row.end.strip() or row.text.strip())]
    if len(kept) > MAX_CUES:
        raise ValidationError(_("The subtitles may have at most %(max)d cues; the table has %(n)d.",
                                max=MAX_CUES, n=len(kept)), fields={"cues": _("too many cues")}, code="too_many_cues")
    problems: dict[str, str] = {}
    typed: list[tuple[float, float, str, int]] = []  # start, end, text, row number
    for row in kept:
        start = _cue_time(row.start, row.number, "start", problems)
        end = _cue_time(row.end, row.number, "end", problems)
        text = _cue_text(row.text, row.number, problems)
        if start is not None and end is not None and end <= start:
            problems[cue_field(row.number, "end")] = _(
                "Cue %(n)d ends at %(end)s, which is not after its start (%(start)s).",
                n=row.number, end=format_timestamp(end), start=format_timestamp(start))
        elif start is not None and end is not None and text is not None:
            typed.append((start, end, text, row.number))
    if not problems:
        ordered = sorted(typed, key=lambda cue: cue[0])  # stable: cues starting together keep the table's order
        stored = stored_cues(package)
        if stored is not None and [(c.start_s, c.end_s, c.text) for c in stored] == [c[:3] for c in ordered]:
            return None
        if (base or "") != (package.subtitles_sha256 or ""):
            raise Conflict(_("The subtitles were changed elsewhere after this page was opened. Reload the page to "
                             "see them, then make your changes again. Nothing was saved."), code="subtitles_changed",
                           fields={"cues": _("changed elsewhere")})
        for prev, cur in zip(ordered, ordered[1:], strict=False):
            if cur[0] < prev[1]:
                problems.setdefault(cue_field(cur[3], "start"), _(
                    "Cue %(n)d starts at %(start)s, before cue %(prev)d ends (%(end)s); cues may not overlap.",
                    n=cur[3], start=format_timestamp(cur[0]), prev=prev[3], end=format_timestamp(prev[1])))
    if problems:
        raise ValidationError(ngettext("%(num)d problem in the subtitle cues: see the marked rows. Nothing was saved.",
                                       "%(num)d problems in the subtitle cues: see the marked rows. Nothing was saved.",
                                       len(problems)), fields=problems, code="invalid_cues")
    srt = serialize_srt(cue[:3] for cue in ordered)
    if len(srt.encode()) > SRT_MAX_BYTES:
        raise ValidationError(_("Written as an SRT file these subtitles would be larger than 2 MB; shorten or remove "
                                "cues."), fields={"cues": _("too large")}, code="too_large")
    return srt


def create_package(script: Script, actor, *, title=None, caption=None, hashtags=None, channel_ids=()) -> Package:
    """Start a package from the script's pre-approved revision."""
    _require_author(script, actor)
    revision = script.approved_revision
    if revision is None or not script_is_preapproved(revision):
        raise Conflict(_("The script needs compliance pre-approval before a package can be made."),
                       code="script_not_preapproved")
    package = Package(
        author_id=actor.id, script_id=script.id, script_revision_id=revision.id,
        title=_clean_text(title if title is not None else revision.title, "title", TITLE_MAX, required=True),
        caption=_clean_text(caption if caption is not None else revision.caption, "caption", CAPTION_MAX),
        hashtags=parse_hashtags(hashtags if hashtags is not None else revision.hashtags),
        status=PKG_DRAFT,
    )
    package.channels = _channels(channel_ids)
    db.session.add(package)
    db.session.flush()
    audit.record("package.created", "package", package.id, actor=actor,
                 details={"script_revision_id": revision.id, "script_revision_sha256": revision.sha256})
    return package


def _after_change(package: Package, actor, changed: list[str]) -> None:
    """A change to an approved package voids its approval; a change in review is refused earlier."""
    # Write the edit first: the version check refuses it (409) if the package changed since it was read.
    flush_or_conflict(states.KIND_LABELS["package"])
    if package.status in (PKG_APPROVED,):
        compliance.void_approvals(package, actor, system_reasons.changed_after_approval(changed))
        states.transition_package(package, PKG_DRAFT, actor, system_reasons.CHANGED_AFTER_APPROVAL,
                                  {"fields": changed})
    elif package.status == PKG_EXPIRED:
        states.transition_package(package, PKG_DRAFT, actor, system_reasons.EDITED_AFTER_EXPIRY, {"fields": changed})
    package.updated_at = utcnow()
    flush_or_conflict(states.KIND_LABELS["package"])
    audit.record("package.edited", "package", package.id, actor=actor, details={"fields": changed})


def _require_editable(package: Package, actor) -> None:
    _require_author(package, actor)
    if package.status == PKG_SUBMITTED:
        raise Conflict(_("The package is waiting for review. Recall it before editing."), code="in_review")
    if package.status not in PACKAGE_EDITABLE:
        raise Conflict(_("A %(status)s package cannot be edited.", status=STATUS_LABELS[package.status]),
                       code="not_editable")


def update_package(package: Package, actor, *, title=None, caption=None, hashtags=None, channel_ids=None,
                   subtitles=None, clear_subtitles=False, cues: list[CueInput] | None = None,
                   cues_base: str | None = None, cover_time_s=None, title_card=None) -> Package:
    """Change package fields; any change to an approved package voids the approval.

    Subtitles come from an uploaded SRT (``subtitles``) or from the edited cue table (``cues``, shown
    for the subtitles whose SHA-256 is ``cues_base``), and are stored as SRT either way.
    """
    _require_editable(package, actor)
    updates: dict = {}
    if title is not None:
        updates["title"] = _clean_text(title, "title", TITLE_MAX, required=True)
    if caption is not None:
        updates["caption"] = _clean_text(caption, "caption", CAPTION_MAX)
    if hashtags is not None:
        updates["hashtags"] = parse_hashtags(hashtags)
    if clear_subtitles:
        updates["subtitles_srt"], updates["subtitles_sha256"] = None, None
    else:
        edited = cues_to_srt(package, cues, cues_base) if cues is not None else None
        if subtitles is not None and edited is not None:
            raise ValidationError(_("You edited cues in the table and also chose a subtitle file. Save the cue edits "
                                    "first, or reload the page and upload the file alone. Nothing was saved."),
                                  fields={"subtitles": _("cues edited too")}, code="cues_and_file")
        if subtitles is not None or edited is not None:
            updates["subtitles_srt"], updates["subtitles_sha256"] = validate_srt(
                subtitles if subtitles is not None else edited)
    if cover_time_s is not None:
        if not 0 <= float(cover_time_s) <= 3600:
            raise ValidationError(_("The cover time must be within the video."), fields={"cover_time_s": _("invalid")})
        updates["cover_time_s"] = float(cover_time_s)
    if title_card is not None:
        updates["title_card"] = bool(title_card)
    changed = [k for k, v in updates.items() if getattr(package, k) != v]
    new_channels = None
    if channel_ids is not None:
        new_channels = _channels(channel_ids)
        if sorted(c.id for c in new_channels) != sorted(c.id for c in package.channels):
            changed.append("channels")
    if not changed:
        # Saving unchanged settings re-renders a stale video (e.g. after a new disclaimer or profile photo).
        _rerender_if_stale(package, actor)
        return package
    for key, value in updates.items():
        setattr(package, key, value)
    if new_channels is not None:
        package.channels = new_channels
    _after_change(package, actor, changed)
    if set(changed) & RENDER_FIELDS:
        _rerender(package, actor)
    return package


# Package fields that are burned into the rendition (or its cover): changing one makes a new rendition.
RENDER_FIELDS = {"subtitles_srt", "cover_time_s", "title_card", "title"}


def _rerender(package: Package, actor) -> None:
    from advisor_studio.video import services as video

    source = video.newest_source(package)
    if source is not None:
        video.request_render(package, source, actor)


def _rerender_if_stale(package: Package, actor) -> None:
    from advisor_studio.video import services as video

    if package.status in PACKAGE_OPEN and package.rendition is not None \
            and not video.rendition_is_current(package):
        _rerender(package, actor)


def set_rendition(package: Package, rendition, actor) -> Package:
    """Offer a finished rendition for review (a new rendition voids an approval of the old one)."""
    if not rendition.is_ready or rendition.package_id != package.id:
        raise Conflict(_("This rendition is not finished."), code="rendition_not_ready")
    if package.rendition_id == rendition.id:
        return package
    if package.status == PKG_SUBMITTED:
        supersede_and_recall(package, actor, system_reasons.NEW_RENDITION_IN_REVIEW)
    package.rendition = rendition  # the relationship too, so checks later in this session see it
    flush_or_conflict(states.KIND_LABELS["package"])
    _after_change(package, actor, ["rendition"])
    return package


def supersede_and_recall(package: Package, actor, reason: str) -> None:
    """Take a submitted package back to draft and close its open review."""
    # Review first, then package (a decision locks them in that order too). A review decided in
    # the meantime is not superseded, and the package's compare-and-set then refuses the recall.
    compliance.supersede_open_reviews(package, actor, reason)
    states.transition_package(package, PKG_DRAFT, actor, reason)


def stored_cues(package: Package) -> list | None:
    """The package's subtitle cues in the order the reviewer numbers them ([] without subtitles; None
    when the stored text cannot be read as SRT, which uploads refuse)."""
    from advisor_studio.video.srt import SubtitleError, parse_srt

    if not package.subtitles_srt:
        return []
    try:
        return parse_srt(package.subtitles_srt)
    except SubtitleError:
        return None


def subtitle_lines_not_in_script(package: Package) -> list[dict]:
    """Subtitle cues whose text is not in the approved script (flagged for the reviewer)."""
    cues = stored_cues(package) or []
    matches = match_cues([cue.text for cue in cues], package.script_revision.body)
    return [{"cue": number, "start": cue.start_s, "end": cue.end_s, "text": cue.text, "line": cue.line_no}
            for number, (cue, match) in enumerate(zip(cues, matches, strict=True), start=1)
            if match.status == MISSING]


def submit_package(package: Package, actor) -> Package:
    """Pre-check the package and queue it for final approval (or renewal after expiry)."""
    from advisor_studio.video import services as video

    _require_author(package, actor)
    if package.status not in PACKAGE_OPEN:
        raise Conflict(_("Only a draft, returned or expired package can be submitted."), code="not_submittable")
    if not script_is_preapproved(package.script_revision):
        raise Conflict(_("The script revision of this package is no longer pre-approved."),
                       code="script_not_preapproved")
    if package.rendition is None or not package.rendition.is_ready:
        raise Conflict(_("Upload a video and wait for the rendition to finish before submitting."),
                       code="no_rendition")
    if not video.rendition_is_current(package):
        raise Conflict(_("The video no longer matches the package's current settings (subtitles, title, cover, "
                         "disclaimer or profile). Wait for the new render to finish, or save the package to start "
                         "one, then submit."), code="rendition_stale")
    if not package.channels:
        raise ValidationError(_("Choose at least one MCN channel."), fields={"channels": _("required")})
    report = compliance.precheck_package(package)
    report["subtitle_lines"] = subtitle_lines_not_in_script(package)
    if report["blocking"]:
        raise BlockingFindings(_("The pre-check found blocking problems. Fix them before submitting."), report)
    from advisor_studio.referrals import sharing

    # One referral link per target channel, so the manifest (and the approval) pins what partners post.
    sharing.ensure_package_links(package, actor)
    review = compliance.queue_package_review(package, actor, report)
    states.transition_package(package, PKG_SUBMITTED, actor, "",
                              {"manifest_sha256": review.manifest_sha256, "scan_id": review.scan_id})
    return package


def recall_package(package: Package, actor) -> Package:
    """The author takes a submitted package back to draft."""
    _require_author(package, actor)
    if package.status != PKG_SUBMITTED:  # decided in the meantime: the decision stands
        raise Conflict(_("Only a package under review can be recalled; it has been decided."),
                       code="not_recallable")
    supersede_and_recall(package, actor, system_reasons.RECALLED_BY_AUTHOR)
    return package


def archive_package(package: Package, actor, reason: str = "") -> Package:
    """Archive a package that is not live (nothing is deleted)."""
    _require_author(package, actor)
    states.transition_package(package, PKG_ARCHIVED, actor, reason)
    return package


# A steady Chinese voice-over reads about 4.5 characters a second (270 a minute; broadcast news is
# 240-300): enough to tell a 60-second script from a 3-minute one while typing.
SPEAKING_CHARS_PER_SECOND = 4.5


def speaking_stats(text: str) -> dict[str, int]:
    """Characters (without whitespace) and the estimated seconds to speak them."""
    chars = sum(1 for c in text or "" if not c.isspace())
    return {"chars": chars, "seconds": round(chars / SPEAKING_CHARS_PER_SECOND)}

