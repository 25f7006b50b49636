"""The render task: idempotent, late-acknowledged, one at a time per worker process, on its own queue."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time

from billiard.exceptions import SoftTimeLimitExceeded
from celery import shared_task
from flask import current_app

from advisor_studio import storage
from advisor_studio.errors import Conflict
from advisor_studio.extensions import db
from advisor_studio.video import render as render_logic
from advisor_studio.video import services
from advisor_studio.video.models import RENDER_FAILED, RENDER_READY, Rendition
from advisor_studio.video.probe import ProbeError, VideoError, probe
from advisor_studio.video.srt import SubtitleError

# A 15-minute 1080p source renders in well under this on one core; the hard limit stops runaway encodes.
SOFT_LIMIT_S = 3 * 3600
HARD_LIMIT_S = SOFT_LIMIT_S + 300
# A rendition queued before inputs were pinned lacks these; it is refused rather than read from the package.
PINNED_KEYS = frozenset({"subtitles_srt", "cover_title", "cover_time_s", "avatar_key"})
MAX_ATTEMPTS = 3  # a render whose worker died this many times is marked failed (retry button remains)


class _Progress:
    """Writes the percentage to the rendition row at most every second (its own short transactions)."""

    def __init__(self, rendition_id: int):
        self.rendition_id = rendition_id
        self.last = 0.0

    def __call__(self, percent: float) -> None:
        now = time.monotonic()
        if now - self.last < 1.0 and percent < 100:
            return
        self.last = now
        services.record_progress(self.rendition_id, percent)
        db.session.commit()


def output_key(recipe_hash: str) -> str:
    """Renditions are stored under their recipe hash: a rerun finds the finished file and stops."""
    return f"renditions/{recipe_hash[:2]}/{recipe_hash}.mp4"


READY_ATTEMPTS = 3


def _record_ready(rendition_id: int, **result) -> None:
    """Record the finished render; if the package changed at that very moment (its version check
    refused the adoption), read everything again and retry, so the rendition never stays "running"."""
    for attempt in range(READY_ATTEMPTS):
        try:
            services.mark_ready(db.session.get(Rendition, rendition_id), **result)
            db.session.commit()
            return
        except Conflict:
            db.session.rollback()
            db.session.expire_all()
            if attempt == READY_ATTEMPTS - 1:
                raise


@shared_task(bind=True, name="advisor_studio.video.tasks.render_rendition", acks_late=True,
             reject_on_worker_lost=True, max_retries=3, soft_time_limit=SOFT_LIMIT_S, time_limit=HARD_LIMIT_S)
def render_rendition(self, rendition_id: int) -> str:
    """Render one rendition; safe to run twice (the second run finds the result and returns)."""
    rendition = db.session.get(Rendition, rendition_id)
    if rendition is None or rendition.status in (RENDER_READY, RENDER_FAILED):
        return rendition.status if rendition else "missing"
    if (rendition.attempts or 0) >= MAX_ATTEMPTS:
        # Redelivered again after repeated worker deaths (e.g. out of memory): stop instead of looping.
        services.mark_failed(rendition, "interrupted", f"{rendition.attempts} attempts")
        db.session.commit()
        return RENDER_FAILED
    services.mark_running(rendition, self.request.id)
    db.session.commit()
    store = storage.get_storage()
    work = tempfile.mkdtemp(prefix="render-task-")
    try:
        source_path = os.path.join(work, "source")
        store.fetch_to_path(rendition.source.storage_key, source_path)
        # Only the inputs pinned when the render was requested: the package may have changed since.
        inputs = rendition.recipe["request"]
        if not PINNED_KEYS <= inputs.keys():
            raise render_logic.RenderError("pinned_input", "queued before its inputs were pinned; request it again")
        subtitles_path = None
        if inputs.get("subtitles_sha256"):
            srt = inputs.get("subtitles_srt") or ""
            if hashlib.sha256(srt.encode()).hexdigest() != inputs["subtitles_sha256"]:
                raise render_logic.RenderError("pinned_input", "the pinned subtitles do not match their SHA-256")
            subtitles_path = os.path.join(work, "subtitles.srt")
            with open(subtitles_path, "w", encoding="utf-8", newline="") as fh:
                fh.write(srt)
        title_card = None
        if inputs.get("title_card"):
            photo = None
            if inputs.get("avatar_key"):
                photo = os.path.join(work, "avatar.jpg")
                try:
                    store.fetch_to_path(inputs["avatar_key"], photo)
                except storage.StorageError as exc:
                    raise render_logic.RenderError("pinned_input", "the pinned profile photo is gone") from exc
                if render_logic.sha256_file(photo) != inputs.get("avatar_sha256"):
                    raise render_logic.RenderError("pinned_input", "the profile photo no longer matches its SHA-256")
            title_card = render_logic.TitleCard(title=inputs["title_card"], photo_path=photo)
        options = render_logic.RenderOptions(
            advisor_name=inputs["advisor_name"], sac_number=inputs["sac_number"], disclaimer=inputs["disclaimer"],
            firm_watermark=current_app.config.get("FIRM_WATERMARK", render_logic.DEFAULT_FIRM_WATERMARK),
            subtitles_path=subtitles_path, title_card=title_card,
            encoder=render_logic.EncoderSettings(preset=current_app.config.get("RENDER_PRESET", "veryfast")),
            max_duration_s=float(current_app.config.get("MAX_VIDEO_SECONDS", 900)),
        )
        recipe = render_logic.build_recipe(source_path, options)
        key = output_key(recipe.recipe_hash())
        local_out = os.path.join(work, "master.mp4")
        if store.exists(key):
            # An earlier attempt finished and stored the file but died before recording it.
            store.fetch_to_path(key, local_out)
            finished = probe(local_out, decode_check_mode="none", max_duration_s=float("inf"))
            result = render_logic.RenderResult(
                sha256=render_logic.sha256_file(local_out), size_bytes=os.path.getsize(local_out),
                duration_s=finished.duration_s, width=finished.width, height=finished.height,
                recipe_hash=recipe.recipe_hash(), recipe=recipe, elapsed_s=0.0)
        else:
            result = render_logic.render(source_path, local_out, options, progress_callback=_Progress(rendition_id),
                                         timeout_s=SOFT_LIMIT_S, tmp_root=work)
            stored = store.put_file(local_out, key, "video/mp4")
            if stored.sha256 != result.sha256:
                raise render_logic.RenderError("copy_mismatch", "stored bytes differ from the rendered file")
        cover_path = os.path.join(work, "cover.jpg")
        cover = render_logic.extract_cover(source_path, inputs["cover_time_s"], inputs["cover_title"], cover_path,
                                           tmp_root=work)
        cover_key = f"covers/{recipe.recipe_hash()[:2]}/{recipe.recipe_hash()}-{cover.sha256[:16]}.jpg"
        if not store.exists(cover_key):
            store.put_file(cover_path, cover_key, "image/jpeg")
        _record_ready(rendition_id, key=key, result=result, cover_key=cover_key, cover_sha256=cover.sha256,
                      recipe=json.loads(recipe.canonical_json()))
        return RENDER_READY
    except (ProbeError, SubtitleError, VideoError) as exc:
        db.session.rollback()
        code = "identity" if isinstance(exc, render_logic.IdentityError) else (
            "subtitles" if isinstance(exc, SubtitleError) else getattr(exc, "reason_code", "ffmpeg_failed"))
        services.mark_failed(db.session.get(Rendition, rendition_id), code, str(exc))
        db.session.commit()
        return RENDER_FAILED
    except SoftTimeLimitExceeded:
        db.session.rollback()
        services.mark_failed(db.session.get(Rendition, rendition_id), "timeout")
        db.session.commit()
        return RENDER_FAILED
    finally:
        shutil.rmtree(work, ignore_errors=True)
