"""Render orchestration: the render run and the cover, from checked inputs to an atomically placed file.

``render()`` validates the identity, parses subtitles, probes the source, draws the overlays
(``overlays``) in a per-render temp directory, runs the one ffmpeg command (``command``) with
progress and a wall-clock timeout, checks the output and moves it into place so readers see either
nothing or the complete file. The recipe (every input that decides the bytes) and its hash are
computed here too.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image

from advisor_studio.video.probe import DEFAULT_MAX_DURATION_S, ProbeError, ProbeResult, probe
from advisor_studio.video.render.command import EncoderSettings, build_command, build_cover_command, tool_versions
from advisor_studio.video.render.errors import IdentityError, RenderError
from advisor_studio.video.render.overlays import (
    OUT_H,
    OUT_W,
    TEMPLATE_VERSION,
    TitleCard,
    default_font_path,
    make_band_overlay,
    make_cover_title,
    make_title_card,
    make_watermark_overlay,
    write_subtitle_track,
)
from advisor_studio.video.srt import parse_srt_file, timeline_segments

DEFAULT_DISCLAIMER = "投资有风险，入市需谨慎。以上内容仅供参考，不构成投资建议。"
DEFAULT_FIRM_WATERMARK = "某某证券"  # a placeholder; operators set FIRM_WATERMARK to the firm's name
SAC_RE = re.compile(r"S[0-9]{13}")  # ASCII digits only: \d would accept full-width digits

ProgressCallback = Callable[[float], None]


@dataclass(frozen=True)
class RenderOptions:
    """What the caller chooses for one rendition."""

    advisor_name: str
    sac_number: str
    disclaimer: str = DEFAULT_DISCLAIMER
    firm_watermark: str = DEFAULT_FIRM_WATERMARK
    subtitles_path: str | None = None
    title_card: TitleCard | None = None
    encoder: EncoderSettings = field(default_factory=EncoderSettings)
    font_path: str | None = None
    max_duration_s: float = DEFAULT_MAX_DURATION_S


@dataclass(frozen=True)
class RenderRecipe:
    """Every input that determines the output; equal recipes give equal renditions (same output key)."""

    template_version: str
    input_sha256: str
    advisor_name: str
    sac_number: str
    disclaimer: str
    firm_watermark: str
    font_sha256: str
    ffmpeg_version: str
    imageio_ffmpeg_version: str
    pillow_version: str
    encoder: dict
    subtitle_sha256: str | None
    title_card: dict | None

    def canonical_json(self) -> str:
        """Canonical JSON (sorted keys, no whitespace, UTF-8 text kept) of the recipe."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    def recipe_hash(self) -> str:
        """SHA-256 hex of the canonical JSON."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RenderResult:
    """What the worker stores about a finished rendition."""

    sha256: str
    size_bytes: int
    duration_s: float
    width: int
    height: int
    recipe_hash: str
    recipe: RenderRecipe
    elapsed_s: float


@dataclass(frozen=True)
class CoverResult:
    """A finished cover image."""

    sha256: str
    size_bytes: int
    width: int
    height: int


# --------------------------------------------------------------------------------------------- helpers


def sha256_file(path: str, chunk_size: int = 1024 * 1024) -> str:
    """SHA-256 hex of a file, read in chunks (never the whole file in memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


@functools.lru_cache(maxsize=8)
def _font_sha256(path: str, mtime_ns: int) -> str:
    return sha256_file(path)


def font_sha256(path: str) -> str:
    """SHA-256 of a font file, cached per (path, mtime)."""
    return _font_sha256(path, os.stat(path).st_mtime_ns)


def validate_identity(advisor_name: str | None, sac_number: str | None) -> tuple[str, str]:
    """Return the cleaned (name, SAC number) or raise IdentityError; both must be burned into every frame."""
    name = (advisor_name or "").strip()
    if not name:
        raise IdentityError("missing_advisor_name", "the advisor's real name is required")
    if len(name) > 40 or re.search(r"[\x00-\x1f\x7f]", name):
        raise IdentityError("bad_advisor_name", "the advisor's name must be 1-40 printable characters")
    sac = (sac_number or "").strip()
    if not sac:
        raise IdentityError("missing_sac_number", "the SAC registration number (执业证书编号) is required")
    if not SAC_RE.fullmatch(sac):
        raise IdentityError("bad_sac_number", f"SAC registration number must be 'S' + 13 digits, got {sac!r}")
    return name, sac


# ------------------------------------------------------------------------------------------ run ffmpeg


def run_ffmpeg(
    args: list[str],
    total_s: float,
    *,
    progress_callback: ProgressCallback | None,
    timeout_s: float | None,
    stderr_path: str,
) -> None:
    """Run ffmpeg with `-progress pipe:1`, report percent from out_time_us, enforce a wall-clock timeout.

    An exception raised by progress_callback cancels the render (ffmpeg is killed) and propagates.
    """
    timed_out = threading.Event()
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)

        def kill() -> None:
            timed_out.set()
            proc.kill()

        timer = threading.Timer(timeout_s, kill) if timeout_s else None
        if timer:
            timer.daemon = True
            timer.start()
        try:
            last = -1.0
            assert proc.stdout is not None
            for raw in proc.stdout:
                key, _, value = raw.decode("ascii", "replace").strip().partition("=")
                if key == "out_time_us" and progress_callback and total_s > 0:
                    try:
                        pct = min(99.0, max(0.0, int(value) / 1e6 / total_s * 100.0))
                    except ValueError:  # "N/A" before the first frame
                        continue
                    if pct >= last + 0.5:
                        last = pct
                        progress_callback(pct)
            proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            if timer:
                timer.cancel()
    if timed_out.is_set():
        raise RenderError("timeout", f"ffmpeg did not finish within {timeout_s:.0f} s")
    if proc.returncode != 0:
        with open(stderr_path, "rb") as fh:
            fh.seek(max(0, os.path.getsize(stderr_path) - 4000))
            tail = fh.read().decode("utf-8", "replace").strip().splitlines()[-5:]
        raise RenderError("ffmpeg_failed", f"ffmpeg exited with status {proc.returncode}: {' | '.join(tail)}")


def _same_filesystem(a: str, b: str) -> bool:
    return os.stat(a).st_dev == os.stat(b).st_dev


def _place_atomically(tmp_file: str, out_path: str, expected_sha256: str) -> None:
    """Move the finished file to out_path so readers see either nothing or the complete file."""
    out_dir = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(out_dir, exist_ok=True)
    with open(tmp_file, "rb") as fh:
        os.fsync(fh.fileno())
    if _same_filesystem(tmp_file, out_dir):
        os.replace(tmp_file, out_path)
        return
    # Different filesystem: copy next to the destination under a hidden name, verify, then rename.
    fd, partial = tempfile.mkstemp(prefix=f".{os.path.basename(out_path)}.", suffix=".partial", dir=out_dir)
    try:
        h = hashlib.sha256()
        with open(tmp_file, "rb") as src, os.fdopen(fd, "wb") as dst:
            while chunk := src.read(1024 * 1024):
                h.update(chunk)
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        if h.hexdigest() != expected_sha256:
            raise RenderError("copy_mismatch", "the copied rendition does not match its hash")
        os.replace(partial, out_path)
    except BaseException:
        if os.path.exists(partial):
            os.unlink(partial)
        raise


# ------------------------------------------------------------------------------------------- public API


def build_recipe(source_path: str, options: RenderOptions) -> RenderRecipe:
    """Compute the recipe of a render without rendering (hashes the source, font, subtitles, photo)."""
    name, sac = validate_identity(options.advisor_name, options.sac_number)
    font_path = options.font_path or default_font_path()
    versions = tool_versions()
    card = None
    if options.title_card:
        tc = options.title_card
        card = {
            "title": tc.title,
            "duration_s": tc.duration_s,
            "photo_sha256": sha256_file(tc.photo_path) if tc.photo_path else None,
        }
    return RenderRecipe(
        template_version=TEMPLATE_VERSION,
        input_sha256=sha256_file(source_path),
        advisor_name=name,
        sac_number=sac,
        disclaimer=options.disclaimer,
        firm_watermark=options.firm_watermark,
        font_sha256=font_sha256(font_path),
        ffmpeg_version=versions["ffmpeg"],
        imageio_ffmpeg_version=versions["imageio_ffmpeg"],
        pillow_version=versions["pillow"],
        encoder=dataclasses.asdict(options.encoder),
        subtitle_sha256=sha256_file(options.subtitles_path) if options.subtitles_path else None,
        title_card=card,
    )


def render(
    source_path: str,
    out_path: str,
    options: RenderOptions,
    *,
    progress_callback: ProgressCallback | None = None,
    timeout_s: float | None = None,
    tmp_root: str | None = None,
    source_probe: ProbeResult | None = None,
) -> RenderResult:
    """Render the publishable master of source_path to out_path in one ffmpeg encode.

    Raises IdentityError (missing/bad name or SAC number), SubtitleError (bad SRT, with line number),
    ProbeError (bad source) or RenderError (reason codes: font_missing, missing_disclaimer,
    disclaimer_too_long, watermark_too_long, missing_title, title_too_long, bad_photo, bad_title_card,
    timeout, ffmpeg_failed, bad_output, copy_mismatch). On any failure nothing appears at out_path and
    the per-render temp directory is removed.
    """
    t0 = time.perf_counter()
    name, sac = validate_identity(options.advisor_name, options.sac_number)
    font_path = options.font_path or default_font_path()
    enc = options.encoder
    if (enc.width, enc.height) != (OUT_W, OUT_H):
        raise RenderError("bad_settings", f"template {TEMPLATE_VERSION} is laid out for {OUT_W}x{OUT_H}")
    # Parse subtitles before any heavy work so a bad SRT fails fast with its line number.
    cues = parse_srt_file(options.subtitles_path) if options.subtitles_path else None
    src = source_probe or probe(source_path, max_duration_s=options.max_duration_s)
    recipe = build_recipe(source_path, options)

    work = tempfile.mkdtemp(prefix="render-", dir=tmp_root)
    try:
        band = make_band_overlay(name, sac, options.disclaimer, font_path, os.path.join(work, "band.png"))
        wm = make_watermark_overlay(options.firm_watermark, font_path, os.path.join(work, "watermark.png"))
        card_png, card_s = None, 0.0
        if options.title_card:
            card_png = os.path.join(work, "card.png")
            make_title_card(options.title_card, name, font_path, card_png)
            card_s = options.title_card.duration_s
        subs_list = None
        if cues:
            segments = timeline_segments(cues, duration_s=src.duration_s)
            if segments:
                subs_list = write_subtitle_track(segments, card_s, card_s + src.duration_s, font_path, work)
        tmp_out = os.path.join(work, "master.mp4")
        plan = build_command(
            src, tmp_out, enc, band=band, watermark=wm, card_png=card_png, card_s=card_s, subs_list=subs_list
        )
        run_ffmpeg(
            plan.args,
            plan.total_s,
            progress_callback=progress_callback,
            timeout_s=timeout_s,
            stderr_path=os.path.join(work, "ffmpeg.log"),
        )
        try:
            out = probe(tmp_out, decode_check_mode="none", max_duration_s=float("inf"))
        except ProbeError as exc:
            raise RenderError("bad_output", f"ffmpeg produced an unreadable file: {exc.message}") from exc
        if (out.width, out.height) != (OUT_W, OUT_H) or out.video_codec != "h264" or not out.faststart:
            raise RenderError("bad_output", f"unexpected output {out.width}x{out.height} {out.video_codec}")
        digest = sha256_file(tmp_out)
        size = os.path.getsize(tmp_out)
        _place_atomically(tmp_out, out_path, digest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if progress_callback:
        progress_callback(100.0)
    return RenderResult(
        sha256=digest,
        size_bytes=size,
        duration_s=out.duration_s,
        width=out.width,
        height=out.height,
        recipe_hash=recipe.recipe_hash(),
        recipe=recipe,
        elapsed_s=time.perf_counter() - t0,
    )


def extract_cover(
    source_path: str,
    timecode_s: float,
    title: str,
    out_path: str,
    *,
    font_path: str | None = None,
    timeout_s: float = 120.0,
    tmp_root: str | None = None,
) -> CoverResult:
    """Write a 1080x1920 JPEG cover: the frame at timecode_s (fitted like the master) with the title on it."""
    font_path = font_path or default_font_path()
    src = probe(source_path, decode_check_mode="none", max_duration_s=float("inf"))
    # Clamp into the video; the last frame may sit a little before the container duration.
    t = min(max(0.0, float(timecode_s)), max(0.0, src.duration_s - 0.1))
    title = " ".join((title or "").split())
    work = tempfile.mkdtemp(prefix="cover-", dir=tmp_root)
    try:
        title_png = None
        if title:
            title_png = os.path.join(work, "title.png")
            make_cover_title(title, font_path, title_png)
        tmp_out = os.path.join(work, "cover.jpg")
        args = build_cover_command(src, t, tmp_out, title_png=title_png)
        try:
            proc = subprocess.run(args, capture_output=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise RenderError("timeout", f"cover extraction did not finish within {timeout_s:.0f} s") from exc
        if proc.returncode != 0 or not os.path.isfile(tmp_out) or os.path.getsize(tmp_out) == 0:
            msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
            raise RenderError("ffmpeg_failed", f"cover extraction failed: {' | '.join(msg)}")
        with Image.open(tmp_out) as im:
            size_px = im.size
        digest = sha256_file(tmp_out)
        size = os.path.getsize(tmp_out)
        _place_atomically(tmp_out, out_path, digest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return CoverResult(sha256=digest, size_bytes=size, width=size_px[0], height=size_px[1])
