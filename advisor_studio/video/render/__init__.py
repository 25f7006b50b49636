"""Render the publishable master: one ffmpeg filter graph, one encode, disclosures burned in, atomic output.

This package keeps the render layer's public names in one place
(``from advisor_studio.video import render``; ``render.render(...)``); each concern has its module:

* ``overlays``: template v1's layout, the bundled CJK font, text wrapping and the PNGs drawn once
  with Pillow (disclaimer band with the advisor's name and SAC number, firm watermark, title card,
  subtitle track, the cover's title); no Python code runs per frame.
* ``command``: encoder settings, the filter graph (geometry, overlays, audio) and the ffmpeg
  arguments of a rendition or a cover, and the tool versions recorded in every recipe.
* ``pipeline``: the run: options, recipe and results, identity checks, the per-render temp
  directory, ffmpeg with progress and timeout, output checks and atomic placement.
* ``errors``: ``RenderError`` and ``IdentityError``, raised with a reason code by all of them.
"""

from advisor_studio.video.render.command import EncoderSettings, build_command, ffmpeg_version, tool_versions
from advisor_studio.video.render.errors import IdentityError, RenderError
from advisor_studio.video.render.overlays import (
    BAND_BOTTOM,
    BAND_RGBA,
    CARD_BG,
    FONT_FILE,
    MARGIN_X,
    OUT_H,
    OUT_W,
    SUB_GAP,
    SUB_H,
    TEMPLATE_VERSION,
    WATERMARK_Y,
    Overlay,
    TitleCard,
    default_font_path,
    make_band_overlay,
    make_title_card,
    make_watermark_overlay,
    wrap_text,
    write_subtitle_track,
)
from advisor_studio.video.render.pipeline import (
    DEFAULT_DISCLAIMER,
    DEFAULT_FIRM_WATERMARK,
    SAC_RE,
    CoverResult,
    ProgressCallback,
    RenderOptions,
    RenderRecipe,
    RenderResult,
    build_recipe,
    extract_cover,
    font_sha256,
    render,
    run_ffmpeg,
    sha256_file,
    validate_identity,
)

__all__ = [
    "BAND_BOTTOM",
    "BAND_RGBA",
    "CARD_BG",
    "DEFAULT_DISCLAIMER",
    "DEFAULT_FIRM_WATERMARK",
    "FONT_FILE",
    "MARGIN_X",
    "OUT_H",
    "OUT_W",
    "SAC_RE",
    "SUB_GAP",
    "SUB_H",
    "TEMPLATE_VERSION",
    "WATERMARK_Y",
    "CoverResult",
    "EncoderSettings",
    "IdentityError",
    "Overlay",
    "ProgressCallback",
    "RenderError",
    "RenderOptions",
    "RenderRecipe",
    "RenderResult",
    "TitleCard",
    "build_command",
    "build_recipe",
    "default_font_path",
    "extract_cover",
    "ffmpeg_version",
    "font_sha256",
    "make_band_overlay",
    "make_title_card",
    "make_watermark_overlay",
    "render",
    "run_ffmpeg",
    "sha256_file",
    "tool_versions",
    "validate_identity",
    "wrap_text",
    "write_subtitle_track",
]
