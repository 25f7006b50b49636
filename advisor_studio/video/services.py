"""Every state change of the video feature: accepting uploads, queuing renders, recording results."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from advisor_studio import audit, storage
from advisor_studio.dbtypes import utcnow
from advisor_studio.errors import Conflict, PermissionDenied, ValidationError
from advisor_studio.extensions import db
from advisor_studio.notifications import models as notes
from advisor_studio.notifications import services as notifications
from advisor_studio.studio.models import PACKAGE_EDITABLE, STATUS_LABELS
from advisor_studio.tasks_util import enqueue_after_commit
from advisor_studio.video import render as render_logic
from advisor_studio.video.models import (
    RENDER_FAILED,
    RENDER_QUEUED,
    RENDER_READY,
    RENDER_RUNNING,
    DisclaimerTemplate,
    Rendition,
    SourceVideo,
)
from advisor_studio.video.probe import DEFAULT_MAX_SIDE_PX, ProbeError, probe

DISCLAIMER_MAX = 80

# Plain-words explanations of probe and render reason codes, shown to the advisor.
REASONS = {
    "empty_file": _l("The file is empty."),
    "not_a_video": _l("The file is not a video we can read (check that it is an MP4, MOV, MKV, WebM or AVI file)."),
    "truncated": _l("The video file is incomplete: the upload or the export was cut off. Export it again."),
    "corrupt": _l("The video file is damaged and cannot be decoded."),
    "audio_only": _l("The file has sound but no picture."),
    "no_video_stream": _l("The file has no video track."),
    "frame_too_large": _l("The picture of the video is too large to process. Export it at a smaller size, "
                          "for example 1080×1920."),
    "no_duration": _l("The length of the video cannot be determined."),
    "too_long": _l("The video is longer than the allowed maximum."),
    "probe_timeout": _l("Reading the video took too long; the file may be damaged."),
    "identity": _l("Your profile needs a real name and a valid SAC registration number before rendering."),
    "timeout": _l("Rendering took longer than allowed."),
    "ffmpeg_failed": _l("The video could not be converted."),
    "bad_output": _l("The converted video failed its final check."),
    "subtitles": _l("The subtitle file is not valid SRT."),
    "interrupted": _l("The render was interrupted several times (the worker stopped). Try again later."),
    "pinned_input": _l("A file this render was queued with has changed since. Save the package to render anew."),
}


def reason_text(code: str | None, detail: str | None = None) -> str:
    """A message for the advisor for a probe/render reason code."""
    text = str(REASONS.get(code or "", _("The render failed.")))
    return f"{text} ({detail})" if detail else text


def current_disclaimer() -> tuple[int, str]:
    """(version, text) of the disclaimer template in force; version 0 is the built-in default."""
    row = db.session.scalars(sa.select(DisclaimerTemplate).order_by(DisclaimerTemplate.version.desc())).first()
    if row is None:
        return 0, render_logic.DEFAULT_DISCLAIMER
    return row.version, row.text


def set_disclaimer(text: str, actor) -> DisclaimerTemplate:
    """Compliance publishes a new disclaimer version (renders after this use it)."""
    if actor is None or not actor.has_role("compliance"):
        raise PermissionDenied(_("Only compliance officers change the disclaimer."))
    text = " ".join((text or "").split())
    if not text:
        raise ValidationError(_("The disclaimer is required."), fields={"text": _("required")})
    if len(text) > DISCLAIMER_MAX:
        raise ValidationError(_("The disclaimer must fit the band: at most %(n)d characters.", n=DISCLAIMER_MAX),
                              fields={"text": _("too long")})
    version, old = current_disclaimer()
    if text == old:
        raise Conflict(_("That is already the disclaimer in force."))
    row = DisclaimerTemplate(version=version + 1, text=text, created_by_id=actor.id)
    db.session.add(row)
    db.session.flush()
    audit.record("disclaimer.published", "disclaimer_template", row.version, actor=actor,
                 details={"text": text, "previous": old})
    return row


@contextmanager
def local_copy(key: str, suffix: str = ""):
    """A local file path for a stored object (the file itself for local storage, a temp copy for S3)."""
    store = storage.get_storage()
    if isinstance(store, storage.LocalStorage):
        yield str(store.local_path(key))
        return
    work = tempfile.mkdtemp(prefix="fetch-")
    try:
        path = os.path.join(work, "object" + suffix)
        store.fetch_to_path(key, path)
        yield path
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _max_duration() -> float:
    return float(current_app.config.get("MAX_VIDEO_SECONDS", 900))


def _max_side() -> int:
    return int(current_app.config.get("MAX_VIDEO_SIDE_PX", DEFAULT_MAX_SIDE_PX))


def accept_upload(package, actor, stream, filename: str) -> SourceVideo:
    """Stream an upload to storage, probe it by content, keep it or refuse it (the refused file is removed)."""
    if actor is None or package.author_id != actor.id:
        raise PermissionDenied(_("Only the author uploads videos to a package."))
    if package.status not in PACKAGE_EDITABLE:
        raise Conflict(_("A %(status)s package does not take new videos.", status=STATUS_LABELS[package.status]))
    store = storage.get_storage()
    stored = store.put_stream(stream, storage.new_key("sources", ".bin"))
    try:
        if stored.size == 0:
            raise ProbeError("empty_file", "0 bytes")
        with local_copy(stored.key) as path:
            result = probe(path, max_duration_s=_max_duration(), max_side_px=_max_side())
    except ProbeError as exc:
        store.delete_unreferenced(stored.key)
        audit.record("video.upload_refused", "package", package.id, actor=actor,
                     details={"reason": exc.reason_code, "size": stored.size, "name": (filename or "")[:200]})
        detail = None
        if exc.reason_code == "too_long":
            detail = _("at most %(m)d minutes", m=int(_max_duration() // 60))
        elif exc.reason_code == "frame_too_large":
            detail = _("at most %(n)d pixels on a side", n=_max_side())
        raise ValidationError(reason_text(exc.reason_code, detail), fields={"video": exc.reason_code},
                              code=exc.reason_code) from exc
    except BaseException:
        store.delete_unreferenced(stored.key)
        raise
    source = SourceVideo(package_id=package.id, uploaded_by_id=actor.id, storage_key=stored.key,
                         sha256=stored.sha256, size_bytes=stored.size, original_name=(filename or "video")[:255],
                         probe=_probe_summary(result), duration_s=result.duration_s)
    db.session.add(source)
    db.session.flush()
    audit.record("video.uploaded", "package", package.id, actor=actor,
                 details={"source_id": source.id, "sha256": stored.sha256, "size": stored.size,
                          "duration_s": round(result.duration_s, 3)})
    return source


def _probe_summary(result) -> dict:
    keys = ("format_name", "duration_s", "bitrate_kbps", "width", "height", "display_width", "display_height",
            "rotation", "fps", "video_codec", "video_profile", "pix_fmt", "has_audio", "audio_codec", "sample_rate",
            "channels", "faststart")
    return {k: getattr(result, k) for k in keys}


def recipe_inputs(package) -> dict:
    """Every input besides the source that a render of this package burns in, as the package is now.

    The dict is stored with the rendition when it is requested (its pinned inputs): the worker renders
    from it alone, so a later edit of the package cannot leak into a render recorded under this hash.
    """
    profile = package.author.advisor_profile
    version, text = current_disclaimer()
    srt = package.subtitles_srt or None
    card = package.title if package.title_card else None
    # The photo is only drawn on the title card; without a card a new avatar must not make renders stale.
    avatar = profile if card and profile is not None and profile.avatar_key else None
    return {
        "advisor_name": profile.real_name if profile else None,
        "sac_number": profile.sac_number if profile else None,
        "avatar_key": avatar.avatar_key if avatar else None,
        "avatar_sha256": avatar.avatar_sha256 if avatar else None,
        "disclaimer_version": version,
        "disclaimer": text,
        "subtitles_srt": srt,
        "subtitles_sha256": hashlib.sha256(srt.encode()).hexdigest() if srt else None,
        "title_card": card,
        "cover_title": package.title,
        "cover_time_s": float(package.cover_time_s if package.cover_time_s is not None else 1.0),
        "template_version": render_logic.TEMPLATE_VERSION,
    }


def inputs_hash(source_sha256: str, inputs: dict) -> str:
    """The request hash of a render: the source's SHA-256 plus the pinned inputs, canonical JSON."""
    return hashlib.sha256(json.dumps({"source": source_sha256, **inputs}, sort_keys=True,
                                     ensure_ascii=False).encode()).hexdigest()


def newest_source(package) -> SourceVideo | None:
    """The package's most recent accepted upload (what a new render would start from)."""
    return db.session.scalars(sa.select(SourceVideo).where(SourceVideo.package_id == package.id)
                              .order_by(SourceVideo.id.desc())).first()


def current_recipe_hash(package, source: SourceVideo | None = None) -> str | None:
    """The request hash of the package's current inputs with ``source`` (default: its newest upload).

    The one definition of "made from exactly these inputs": request_render, mark_ready, submission,
    the decision and the review page all compare against it. None when the package has no video.
    """
    source = source or newest_source(package)
    if source is None:
        return None
    return inputs_hash(source.sha256, recipe_inputs(package))


def rendition_is_current(package, rendition=None) -> bool:
    """Whether ``rendition`` (default: the package's own) was made from the package's current inputs."""
    rendition = rendition if rendition is not None else package.rendition
    if rendition is None:
        return False
    current = current_recipe_hash(package)
    return current is not None and rendition.recipe_hash == current


def adopt_if_current(rendition: Rendition, actor) -> bool:
    """Make a ready rendition the package's if it matches the current inputs and nothing approved is in the way."""
    from advisor_studio.studio import services as studio
    from advisor_studio.studio.models import PACKAGE_OPEN

    package = rendition.package
    if not rendition.is_ready or not rendition_is_current(package, rendition):
        return False
    # Never behind a live approval or a review; an expired package takes it (and returns to draft) for renewal.
    if package.rendition_id is not None and package.status not in PACKAGE_OPEN:
        return False
    studio.set_rendition(package, rendition, actor)
    return True


def request_render(package, source: SourceVideo, actor, *, enqueue: bool = True) -> Rendition:
    """Queue a render of ``source`` with the package's current inputs pinned, or reuse an identical one.

    A reused finished rendition is adopted at once; a queued or running one is adopted when it finishes.
    ``enqueue=False`` leaves running it to the caller (seed-demo renders in-process).
    """
    profile = package.author.advisor_profile
    try:
        render_logic.validate_identity(profile.real_name if profile else None, profile.sac_number if profile else None)
    except render_logic.IdentityError as exc:
        raise ValidationError(reason_text("identity"), code="identity") from exc
    inputs = recipe_inputs(package)
    request_hash = current_recipe_hash(package, source)
    existing = db.session.scalars(sa.select(Rendition).where(
        Rendition.package_id == package.id, Rendition.recipe_hash == request_hash,
        Rendition.status.in_((RENDER_QUEUED, RENDER_RUNNING, RENDER_READY))).order_by(Rendition.id.desc())).first()
    if existing is not None:
        if existing.status == RENDER_READY:
            adopt_if_current(existing, actor)
        return existing
    rendition = Rendition(package_id=package.id, source_id=source.id, recipe={"request": inputs},
                          recipe_hash=request_hash, status=RENDER_QUEUED, progress=0.0)
    db.session.add(rendition)
    db.session.flush()
    audit.record("rendition.queued", "rendition", rendition.id, actor=actor,
                 details={"package_id": package.id, "source_id": source.id, "recipe_hash": request_hash})
    if enqueue:
        from advisor_studio.video import tasks

        enqueue_after_commit(tasks.render_rendition, rendition.id)
    return rendition


def retry_render(rendition: Rendition, actor) -> Rendition:
    """Queue a failed render again."""
    if rendition.status != RENDER_FAILED:
        raise Conflict(_("Only a failed render can be retried."))
    rendition.status = RENDER_QUEUED
    rendition.progress = 0.0
    rendition.error = None
    rendition.attempts = 0
    db.session.flush()
    audit.record("rendition.retried", "rendition", rendition.id, actor=actor)
    from advisor_studio.video import tasks

    enqueue_after_commit(tasks.render_rendition, rendition.id)
    return rendition


def mark_running(rendition: Rendition, task_id: str | None) -> None:
    """The worker started (or restarted after a crash) this render."""
    rendition.status = RENDER_RUNNING
    rendition.started_at = utcnow()
    rendition.attempts = (rendition.attempts or 0) + 1
    rendition.task_id = task_id
    rendition.error = None
    db.session.flush()


def record_progress(rendition_id: int, percent: float) -> None:
    """Store a running render's percentage (below 100 until mark_ready; not audited, it is not a state)."""
    db.session.execute(sa.update(Rendition).where(Rendition.id == rendition_id, Rendition.status == RENDER_RUNNING)
                       .values(progress=round(min(max(percent, 0.0), 99.9), 1)))


def mark_ready(rendition: Rendition, *, key: str, result, cover_key: str, cover_sha256: str, recipe: dict) -> None:
    """Record a finished render; the package adopts it only if it was made from the package's current inputs."""
    rendition.storage_key = key
    rendition.sha256 = result.sha256
    rendition.size_bytes = result.size_bytes
    rendition.duration_s = result.duration_s
    rendition.width, rendition.height = result.width, result.height
    rendition.cover_key, rendition.cover_sha256 = cover_key, cover_sha256
    rendition.recipe = {**rendition.recipe, "render": recipe}
    rendition.status = RENDER_READY
    rendition.progress = 100.0
    rendition.finished_at = utcnow()
    db.session.flush()
    audit.record("rendition.ready", "rendition", rendition.id, actor="worker",
                 details={"sha256": result.sha256, "size": result.size_bytes, "package_id": rendition.package_id})
    _notify_advisor(rendition, notes.RENDER_FINISHED)
    # A render requested before a later edit finishes stale: it stays in the list but does not win.
    adopt_if_current(rendition, "worker")


def mark_failed(rendition: Rendition, code: str, detail: str = "") -> None:
    """Record why a render failed, in plain words."""
    rendition.status = RENDER_FAILED
    rendition.error = reason_text(code, None) + (f" [{code}]" if code else "")
    rendition.finished_at = utcnow()
    db.session.flush()
    audit.record("rendition.failed", "rendition", rendition.id, actor="worker",
                 details={"code": code, "detail": (detail or "")[:500]})
    _notify_advisor(rendition, notes.RENDER_FAILED, code=code)


def _notify_advisor(rendition: Rendition, kind: str, **params) -> None:
    """Tell the package's advisor that a render finished or failed (the package page shows it)."""
    package = rendition.package
    notifications.notify(kind, [package.author_id], object_type="package", object_id=package.id,
                         params={"title": package.title, **params})
