"""Render the publishable master: one ffmpeg filter graph, one encode, disclosures burned in, atomic output.

Static overlays (disclaimer band, advisor name + SAC number, firm watermark, title card, subtitle
images) are drawn ONCE with Pillow into PNGs using a bundled CJK font, then composited by ffmpeg; no
Python code runs per frame.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
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

from PIL import Image, ImageDraw, ImageFont, ImageOps

from advisor_studio.video.probe import (
    DEFAULT_MAX_DURATION_S,
    ProbeError,
    ProbeResult,
    VideoError,
    ffmpeg_exe,
    ffmpeg_input,
    probe,
)
from advisor_studio.video.srt import Segment, parse_srt_file, timeline_segments

TEMPLATE_VERSION = "v1"
DEFAULT_DISCLAIMER = "投资有风险，入市需谨慎。以上内容仅供参考，不构成投资建议。"
DEFAULT_FIRM_WATERMARK = "某某证券"  # a placeholder; operators set FIRM_WATERMARK to the firm's name
FONT_FILE = "NotoSansCJKsc-Regular.otf"
SAC_RE = re.compile(r"S[0-9]{13}")  # ASCII digits only: \d would accept full-width digits

OUT_W, OUT_H = 1080, 1920
# Layout of template v1. Short-video apps cover roughly the bottom 15% of the screen with the caption
# and the right edge with buttons, and the top ~100 px with the status bar; disclosures sit above that.
MARGIN_X = 40
WATERMARK_Y = 130
BAND_BOTTOM = OUT_H - 300
BAND_RGBA = (0, 0, 0, 160)
SUB_H = 340
SUB_GAP = 24
CARD_BG = (18, 32, 58)

ProgressCallback = Callable[[float], None]


class RenderError(VideoError):
    """Rendering failed or was refused (reason codes: see render())."""


class IdentityError(RenderError):
    """The advisor's real name or SAC registration number is missing or malformed."""


@dataclass(frozen=True)
class EncoderSettings:
    """Everything that decides the encoded bytes besides the inputs; part of the recipe hash."""

    preset: str = "veryfast"
    crf: int = 21
    maxrate: str = "8M"
    bufsize: str = "16M"
    profile: str = "high"
    fps: int = 30
    gop: int = 60  # one keyframe every 2 s at 30 fps; scene-cut keyframes disabled so it is exact
    width: int = OUT_W
    height: int = OUT_H
    audio_bitrate: str = "128k"
    audio_rate: int = 48000
    audio_channels: int = 2
    # x264 frame threads gave a different byte here and there on a loaded machine (1 run in 6 differed);
    # slice threads gave identical bytes in every run at the same speed and +0.3% size. See video.md.
    sliced_threads: bool = True
    # With slice threads the slice count equals the thread count, and it changes the bytes: pin it so a
    # worker with more cores produces the same file (ffmpeg's own decode/filter threads stay automatic).
    x264_threads: int = 4


@dataclass(frozen=True)
class TitleCard:
    """An optional card prepended to the video: title, the advisor's name, optionally a photo."""

    title: str
    photo_path: str | None = None
    duration_s: float = 2.0


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


def default_font_path() -> str:
    """Path of the CJK font shipped in the mplfonts wheel (located without importing matplotlib)."""
    spec = importlib.util.find_spec("mplfonts")
    if spec is None or not spec.submodule_search_locations:
        raise RenderError("font_missing", "the mplfonts package (CJK font) is not installed")
    path = os.path.join(list(spec.submodule_search_locations)[0], "fonts", FONT_FILE)
    if not os.path.isfile(path):
        raise RenderError("font_missing", f"{FONT_FILE} not found in mplfonts")
    return path


@functools.lru_cache(maxsize=8)
def _font_sha256(path: str, mtime_ns: int) -> str:
    return sha256_file(path)


def font_sha256(path: str) -> str:
    """SHA-256 of a font file, cached per (path, mtime)."""
    return _font_sha256(path, os.stat(path).st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    # BASIC layout: no Raqm dependency, identical output wherever the same Pillow/FreeType run.
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


@functools.lru_cache(maxsize=1)
def ffmpeg_version() -> str:
    """First line of `ffmpeg -version`, recorded in every recipe."""
    out = subprocess.run(
        [ffmpeg_exe(), "-version"], capture_output=True, timeout=30, stdin=subprocess.DEVNULL
    )
    first = out.stdout.decode("utf-8", "replace").splitlines()[0]
    return first.split(" Copyright")[0].strip()


def tool_versions() -> dict:
    """Versions of the tools that shape the output bytes."""
    import imageio_ffmpeg
    import PIL

    return {
        "ffmpeg": ffmpeg_version(),
        "imageio_ffmpeg": imageio_ffmpeg.__version__,
        "pillow": PIL.__version__,
    }


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


# ------------------------------------------------------------------------------------------ text layout

_CLOSING_PUNCT = set("，。！？、；：）》」』】”’,.!?;:)]%")
_RE_TOKEN = re.compile(r"[A-Za-z0-9_\-.,:;!?'\"%/@#&+=()]+|\s+|.", re.S)


def wrap_text(text: str, font: ImageFont.FreeTypeFont, max_width: float) -> list[str]:
    """Greedy line wrap: CJK may break between any characters, Latin words stay whole if they fit."""
    out: list[str] = []
    for para in text.split("\n"):
        if font.getlength(para) <= max_width:  # the common case for subtitles: one measurement
            out.append(para.strip())
            continue
        tokens: list[str] = []
        for tok in _RE_TOKEN.findall(para):
            # A Latin run wider than the line (a URL) is split into characters so it can break anywhere.
            tokens.extend(tok if len(tok) > 1 and font.getlength(tok) > max_width else [tok])
        line = ""
        for tok in tokens:
            candidate = line + tok
            if not line.strip() or font.getlength(candidate) <= max_width:
                line = candidate.lstrip() if not line.strip() else candidate
            elif tok in _CLOSING_PUNCT:
                line = candidate  # let punctuation hang rather than start a line with it
            elif tok.isspace():
                out.append(line.rstrip())
                line = ""
            else:
                out.append(line.rstrip())
                line = tok
        out.append(line.rstrip())
    return out


def _fit(text: str, font_path: str, max_width: float, sizes: range, max_lines: int):
    """Largest font size at which the text wraps into at most max_lines lines; None if none fits."""
    for size in sizes:
        font = _font(font_path, size)
        lines = wrap_text(text, font, max_width)
        if len(lines) <= max_lines:
            return font, lines
    return None


def _line_h(font: ImageFont.FreeTypeFont) -> int:
    return int(round(font.size * 1.3))


def _save_png(img: Image.Image, path: str) -> None:
    # compress_level=1: these files live for one render; speed matters more than size.
    img.save(path, format="PNG", compress_level=1)


# ----------------------------------------------------------------------------------- overlay images


@dataclass(frozen=True)
class Overlay:
    """A pre-rendered PNG and where it goes on the 1080x1920 frame."""

    path: str
    x: int
    y: int
    width: int
    height: int


def make_band_overlay(name: str, sac: str, disclaimer: str, font_path: str, out_path: str) -> Overlay:
    """Full-width translucent band with the advisor identity line and the wrapped risk disclaimer."""
    disclaimer = " ".join(disclaimer.split())
    if not disclaimer:
        raise RenderError("missing_disclaimer", "the risk disclaimer text is required")
    inner_w = OUT_W - 2 * MARGIN_X
    ident = f"投资顾问：{name}　执业证书编号：{sac}"
    fitted_ident = _fit(ident, font_path, inner_w, range(36, 25, -2), 1)
    if fitted_ident is None:
        raise IdentityError("bad_advisor_name", "the advisor's name is too long to display")
    fitted_disc = _fit(disclaimer, font_path, inner_w, range(30, 21, -2), 4)
    if fitted_disc is None:
        raise RenderError("disclaimer_too_long", "the disclaimer does not fit in 4 lines; shorten it")
    id_font, id_lines = fitted_ident
    d_font, d_lines = fitted_disc
    pad = 18
    height = pad + _line_h(id_font) + 6 + len(d_lines) * _line_h(d_font) + pad
    height += height % 2  # even size and position keep the band aligned to yuv420p chroma
    img = Image.new("RGBA", (OUT_W, height), BAND_RGBA)
    draw = ImageDraw.Draw(img)
    y = pad
    draw.text((MARGIN_X, y), id_lines[0], font=id_font, fill=(255, 255, 255, 255))
    y += _line_h(id_font) + 6
    for ln in d_lines:
        draw.text((MARGIN_X, y), ln, font=d_font, fill=(255, 224, 140, 255))
        y += _line_h(d_font)
    _save_png(img, out_path)
    return Overlay(out_path, 0, BAND_BOTTOM - height, OUT_W, height)


def make_watermark_overlay(text: str, font_path: str, out_path: str) -> Overlay | None:
    """Small semi-transparent firm name for the top-left safe area; None when no watermark is set."""
    text = " ".join((text or "").split())
    if not text:
        return None
    fitted = _fit(text, font_path, OUT_W // 2, range(30, 19, -2), 1)
    if fitted is None:
        raise RenderError("watermark_too_long", "the firm watermark text is too long")
    font, lines = fitted
    w = int(font.getlength(lines[0])) + 12
    h = _line_h(font) + 8
    w, h = w + w % 2, h + h % 2  # even sizes keep chroma placement exact in yuv420p
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.text(
        (6, 4), lines[0], font=font, fill=(255, 255, 255, 150), stroke_width=2, stroke_fill=(0, 0, 0, 90)
    )
    _save_png(img, out_path)
    return Overlay(out_path, MARGIN_X, WATERMARK_Y, w, h)


def _subtitle_image(lines: tuple[str, ...], font_path: str) -> Image.Image:
    # Grey + alpha ("LA"): white letters with a black outline need no colour, and the PNG encodes in
    # ~60% of the time of RGBA (measured 3.7 vs 6.1 ms per cue).
    img = Image.new("LA", (OUT_W, SUB_H), (0, 0))
    text = "\n".join(lines)
    fitted = _fit(text, font_path, OUT_W - 2 * MARGIN_X - 20, range(50, 33, -4), 6)
    if fitted is None:
        # Several long overlapping cues: keep the newest lines, which are at the end.
        font = _font(font_path, 34)
        wrapped = wrap_text(text, font, OUT_W - 2 * MARGIN_X - 20)[-6:]
    else:
        font, wrapped = fitted
    lh = _line_h(font)
    draw = ImageDraw.Draw(img)
    y = SUB_H - 10 - lh * len(wrapped)  # bottom-aligned, so the text grows upwards away from the band
    for ln in wrapped:
        x = (OUT_W - font.getlength(ln)) / 2
        draw.text((x, y), ln, font=font, fill=(255, 255), stroke_width=3, stroke_fill=(0, 220))
        y += lh
    return img


def write_subtitle_track(
    segments: list[Segment], offset_s: float, total_s: float, font_path: str, work_dir: str
) -> str:
    """Render each distinct subtitle text once to PNG and write an ffconcat timeline; returns its path.

    The track is ONE extra input decoded a frame per cue change, overlaid by ONE overlay filter, so the
    cost does not grow with the number of cues (unlike one overlay filter per cue).
    """
    blank = "sub_blank.png"
    _save_png(Image.new("LA", (OUT_W, SUB_H), (0, 0)), os.path.join(work_dir, blank))
    files: dict[tuple[str, ...], str] = {}
    entries: list[tuple[str, float]] = []
    t = 0.0
    for seg in segments:
        start, end = seg.start_s + offset_s, seg.end_s + offset_s
        if start > t + 1e-6:
            entries.append((blank, start - t))
        name = files.get(seg.lines)
        if name is None:
            name = f"sub_{len(files):05d}.png"
            _save_png(_subtitle_image(seg.lines, font_path), os.path.join(work_dir, name))
            files[seg.lines] = name
        entries.append((name, end - max(start, t)))
        t = end
    if total_s > t + 1e-6:
        entries.append((blank, total_s - t))
    lst = os.path.join(work_dir, "subs.ffconcat")
    with open(lst, "w", encoding="utf-8") as fh:
        fh.write("ffconcat version 1.0\n")
        for name, dur in entries:
            fh.write(f"file {name}\nduration {dur:.6f}\n")
        # The concat demuxer ignores the last entry's duration; a final blank closes the timeline exactly
        # at the end of the video, so the track never outlasts the main picture.
        fh.write(f"file {blank}\n")
    return lst


def make_title_card(card: TitleCard, advisor_name: str, font_path: str, out_path: str) -> None:
    """Opaque 1080x1920 card: optional round photo, wrapped title, advisor name."""
    title = " ".join((card.title or "").split())
    if not title:
        raise RenderError("missing_title", "the title card needs a title")
    if not 0.5 <= card.duration_s <= 10:
        raise RenderError("bad_title_card", "title card duration must be between 0.5 and 10 s")
    img = Image.new("RGB", (OUT_W, OUT_H), CARD_BG)
    draw = ImageDraw.Draw(img)
    y = 560
    if card.photo_path:
        try:
            with Image.open(card.photo_path) as ph:
                ph.load()
                photo = ImageOps.fit(ImageOps.exif_transpose(ph).convert("RGB"), (360, 360))
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise RenderError("bad_photo", f"the advisor photo cannot be read as an image: {exc}") from exc
        mask = Image.new("L", (360, 360), 0)
        ImageDraw.Draw(mask).ellipse((0, 0, 359, 359), fill=255)
        img.paste(photo, ((OUT_W - 360) // 2, 300), mask)
        y = 720
    fitted = _fit(title, font_path, OUT_W - 2 * 80, range(80, 43, -4), 4)
    if fitted is None:
        raise RenderError("title_too_long", "the title does not fit on the card; shorten it")
    font, lines = fitted
    for ln in lines:
        draw.text(((OUT_W - font.getlength(ln)) / 2, y), ln, font=font, fill=(255, 255, 255))
        y += _line_h(font)
    name_font = _font(font_path, 44)
    y += 40
    draw.text(
        ((OUT_W - name_font.getlength(advisor_name)) / 2, y),
        advisor_name,
        font=name_font,
        fill=(255, 224, 140),
    )
    _save_png(img, out_path)


# ------------------------------------------------------------------------------------------ filter graph


def _even(x: float) -> int:
    return max(2, int(round(x / 2.0)) * 2)


def _geometry_chain(src: ProbeResult, label_in: str, label_out: str, enc: EncoderSettings) -> list[str]:
    """Filters turning the source video into a W x H frame: fit over a blurred copy of itself if not 9:16.

    The blurred background is made at quarter resolution from a 9:16 centre crop, and only the strips
    the picture does not cover are upscaled and stacked around it (vstack/hstack): no full-frame blur,
    no full-frame overlay. Measured on a 30 s 1920x1080 source this costs ~0.8 s over a plain scale,
    against ~3.6 s for "blur the full frame, overlay the picture".
    """
    w, h = enc.width, enc.height
    # No PTS-STARTPTS here: ffmpeg already shifts the whole file to start at 0, and resetting each stream
    # on its own would drop a deliberate offset between audio and video (lip sync).
    pre: list[str] = []
    if src.fps is None or src.fps > enc.fps:
        pre.append(f"fps={enc.fps}")  # drop surplus frames before any per-pixel work
    if src.interlaced:
        pre.append("bwdif=mode=send_frame")  # broadcast/camcorder footage: combing would survive scaling
    if src.rotation_from_tag_only:
        # ffmpeg autorotates only from display-matrix side data; apply a bare "rotate" tag ourselves.
        pre.append({90: "transpose=clock", 180: "hflip,vflip", 270: "transpose=cclock"}[src.rotation])
    # Frame size in stored pixels after rotation, and the pixel aspect ratio (non-square for some DV/TS).
    pw, ph = src.display_width, src.display_height
    sar = src.sar if src.rotation not in (90, 270) else 1.0 / src.sar
    aspect = pw * sar / ph
    target = w / h
    if aspect >= target:  # wider than 9:16: full width, blurred strips above and below
        fg_w, fg_h = w, _even(w / aspect)
    else:  # narrower than 9:16: full height, blurred strips left and right
        fg_w, fg_h = _even(h * aspect), h
    if (w - fg_w) + (h - fg_h) < 8:  # within a few pixels of 9:16: a negligible stretch beats a blur
        direct = [*pre, f"scale={w}:{h}:flags=bicubic", "setsar=1", "format=yuv420p"]
        return [label_in + ",".join(direct) + label_out]
    bw, bh = w // 4, h // 4
    if aspect >= target:
        crop = f"crop={_even(ph * target / sar)}:{ph}"
    else:
        crop = f"crop={pw}:{_even(pw * sar / target)}"
    chain = [
        label_in + ",".join([*pre, "format=yuv420p", "split=2[g_bg][g_fg]"]),
        f"[g_bg]{crop},scale={bw}:{bh}:flags=fast_bilinear,boxblur=luma_radius=10:luma_power=2,"
        "eq=brightness=-0.08,split=2[g_s1][g_s2]",
        f"[g_fg]scale={fg_w}:{fg_h}:flags=bicubic,setsar=1[g_fgs]",
    ]
    if aspect >= target:
        top = (h - fg_h) // 4 * 2
        bottom = h - fg_h - top
        st, sb = max(2, round(top / 4)), max(2, round(bottom / 4))
        chain += [
            f"[g_s1]crop={bw}:{st}:0:0,scale={w}:{top}:flags=fast_bilinear,setsar=1[g_top]",
            f"[g_s2]crop={bw}:{sb}:0:{bh - sb},scale={w}:{bottom}:flags=fast_bilinear,setsar=1[g_bot]",
            f"[g_top][g_fgs][g_bot]vstack=inputs=3{label_out}",
        ]
    else:
        left = (w - fg_w) // 4 * 2
        right = w - fg_w - left
        sl, sr = max(2, round(left / 4)), max(2, round(right / 4))
        chain += [
            f"[g_s1]crop={sl}:{bh}:0:0,scale={left}:{h}:flags=fast_bilinear,setsar=1[g_left]",
            f"[g_s2]crop={sr}:{bh}:{bw - sr}:0,scale={right}:{h}:flags=fast_bilinear,setsar=1[g_right]",
            f"[g_left][g_fgs][g_right]hstack=inputs=3{label_out}",
        ]
    return chain


@dataclass
class _Plan:
    args: list[str]
    total_s: float
    filter_graph: str


def build_command(
    src: ProbeResult,
    out_file: str,
    enc: EncoderSettings,
    *,
    band: Overlay,
    watermark: Overlay | None,
    card_png: str | None,
    card_s: float,
    subs_list: str | None,
) -> _Plan:
    """Assemble the single ffmpeg invocation (inputs, filter graph, encoder flags)."""
    inputs = ["-i", ffmpeg_input(src.path), "-i", ffmpeg_input(band.path)]
    idx = 2
    wm_idx = card_idx = subs_idx = None
    if watermark:
        inputs += ["-i", ffmpeg_input(watermark.path)]
        wm_idx, idx = idx, idx + 1
    if card_png:
        inputs += ["-i", ffmpeg_input(card_png)]
        card_idx, idx = idx, idx + 1
    if subs_list:
        inputs += ["-f", "concat", "-i", ffmpeg_input(subs_list)]
        subs_idx, idx = idx, idx + 1

    d = src.duration_s
    parts = _geometry_chain(src, f"[0:v:{src.video_stream}]", "[mainv]", enc)
    ar, ch = enc.audio_rate, "stereo" if enc.audio_channels == 2 else "mono"
    if src.has_audio:
        # async=1 fills gaps / trims overlaps so A/V stay in sync; apad+atrim pin the length to the video.
        parts.append(
            f"[0:a:{src.audio_stream}]aresample={ar}:async=1:first_pts=0,"
            f"aformat=sample_fmts=fltp:sample_rates={ar}:channel_layouts={ch},apad,atrim=end={d:.6f}[maina]"
        )
    else:
        parts.append(f"anullsrc=r={ar}:cl={ch},atrim=end={d:.6f}[maina]")
    v, a = "[mainv]", "[maina]"
    if card_idx is not None:
        frames = int(round(card_s * enc.fps))
        parts.append(
            f"[{card_idx}:v]format=yuv420p,setsar=1,loop=loop={frames - 1}:size=1:start=0,"
            f"settb=1/{enc.fps},setpts=N,fps={enc.fps}[cardv]"
        )
        parts.append(f"anullsrc=r={ar}:cl={ch},atrim=end={card_s:.6f}[carda]")
        parts.append(f"[cardv][carda]{v}{a}concat=n=2:v=1:a=1[catv][cata]")
        v, a = "[catv]", "[cata]"
    # Overlays go on after the concat so identity and disclaimer are on the title card too.
    parts.append(f"{v}fps={enc.fps}[cfr]")
    v = "[cfr]"
    parts.append(f"{v}[1:v]overlay={band.x}:{band.y}:format=yuv420[ob]")
    v = "[ob]"
    if wm_idx is not None:
        parts.append(f"{v}[{wm_idx}:v]overlay={watermark.x}:{watermark.y}:format=yuv420[ow]")
        v = "[ow]"
    if subs_idx is not None:
        sub_y = band.y - SUB_GAP - SUB_H
        parts.append(f"{v}[{subs_idx}:v]overlay=0:{sub_y}:format=yuv420:eof_action=pass[os]")
        v = "[os]"
    parts.append(f"{v}format=yuv420p[vout]")
    graph = ";".join(parts)

    x264_params = f"8x8dct=1:threads={enc.x264_threads}"
    if enc.sliced_threads:
        x264_params += ":sliced-threads=1"
    args = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-y", "-loglevel", "error"]
    args += [
        "-progress",
        "pipe:1",
        "-nostats",
        *inputs,
        "-filter_complex",
        graph,
        "-map",
        "[vout]",
        "-map",
        a,
    ]
    args += ["-c:v", "libx264", "-preset", enc.preset, "-profile:v", enc.profile, "-crf", str(enc.crf)]
    args += ["-maxrate", enc.maxrate, "-bufsize", enc.bufsize, "-pix_fmt", "yuv420p"]
    # Fixed GOP, no scene-cut keyframes: a keyframe exactly every 2 s, as the platforms ask.
    args += ["-g", str(enc.gop), "-keyint_min", str(enc.gop), "-sc_threshold", "0"]
    # x264 signals the lowest profile its tools need; the 8x8 transform makes it High even with
    # "ultrafast" (the other presets enable it anyway), as the delivery contract requires.
    args += ["-x264-params", x264_params]
    args += ["-c:a", "aac", "-b:a", enc.audio_bitrate, "-ar", str(ar), "-ac", str(enc.audio_channels)]
    # bitexact + no metadata: no encoder version strings or timestamps in the file, so equal recipes can
    # give equal bytes.
    args += ["-map_metadata", "-1", "-map_chapters", "-1"]
    args += ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact"]
    args += ["-movflags", "+faststart", "-f", "mp4", out_file]
    return _Plan(args, card_s + d, graph)


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
    enc = EncoderSettings()
    work = tempfile.mkdtemp(prefix="cover-", dir=tmp_root)
    try:
        inputs = ["-ss", f"{t:.3f}", "-i", ffmpeg_input(source_path)]
        parts = _geometry_chain(src, f"[0:v:{src.video_stream}]", "[main]", enc)
        v = "[main]"
        if title:
            fitted = _fit(title, font_path, OUT_W - 2 * 60, range(84, 47, -4), 3)
            if fitted is None:
                raise RenderError("title_too_long", "the title does not fit on the cover; shorten it")
            font, lines = fitted
            lh = _line_h(font)
            img = Image.new("RGBA", (OUT_W, lh * len(lines) + 80), (0, 0, 0, 110))
            draw = ImageDraw.Draw(img)
            y = 40
            for ln in lines:
                draw.text(
                    ((OUT_W - font.getlength(ln)) / 2, y),
                    ln,
                    font=font,
                    fill=(255, 255, 255, 255),
                    stroke_width=3,
                    stroke_fill=(0, 0, 0, 200),
                )
                y += lh
            title_png = os.path.join(work, "title.png")
            _save_png(img, title_png)
            inputs += ["-i", ffmpeg_input(title_png)]
            parts.append(f"{v}[1:v]overlay=0:360:format=auto[titled]")
            v = "[titled]"
        # Full-range 4:2:0 is what JPEG viewers expect.
        parts.append(f"{v}scale=out_range=full,format=yuvj420p[cover]")
        tmp_out = os.path.join(work, "cover.jpg")
        args = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-y", "-loglevel", "error", *inputs]
        args += ["-filter_complex", ";".join(parts), "-map", "[cover]", "-frames:v", "1", "-q:v", "3"]
        args += ["-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact"]
        args += ["-f", "image2", "-update", "1", ffmpeg_input(tmp_out)]
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
