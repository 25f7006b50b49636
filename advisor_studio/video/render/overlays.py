"""Overlays of template v1: the bundled CJK font, text wrapping, and the PNGs ffmpeg composites.

Static overlays (disclaimer band, advisor name + SAC number, firm watermark, title card, subtitle
images, the cover's title) are drawn ONCE with Pillow into PNGs using a bundled CJK font, then
composited by ffmpeg (``command``); no Python code runs per frame.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont, ImageOps

from advisor_studio.video.render.errors import IdentityError, RenderError
from advisor_studio.video.srt import Segment

TEMPLATE_VERSION = "v1"
FONT_FILE = "NotoSansCJKsc-Regular.otf"

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


@dataclass(frozen=True)
class TitleCard:
    """An optional card prepended to the video: title, the advisor's name, optionally a photo."""

    title: str
    photo_path: str | None = None
    duration_s: float = 2.0


# ------------------------------------------------------------------------------------------------ fonts


def default_font_path() -> str:
    """Path of the CJK font shipped in the mplfonts wheel (located without importing matplotlib)."""
    spec = importlib.util.find_spec("mplfonts")
    if spec is None or not spec.submodule_search_locations:
        raise RenderError("font_missing", "the mplfonts package (CJK font) is not installed")
    path = os.path.join(list(spec.submodule_search_locations)[0], "fonts", FONT_FILE)
    if not os.path.isfile(path):
        raise RenderError("font_missing", f"{FONT_FILE} not found in mplfonts")
    return path


@functools.lru_cache(maxsize=64)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    # BASIC layout: no Raqm dependency, identical output wherever the same Pillow/FreeType run.
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


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


def make_cover_title(title: str, font_path: str, out_path: str) -> None:
    """Full-width translucent strip with the cover title, wrapped into at most 3 centred lines."""
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
    _save_png(img, out_path)
