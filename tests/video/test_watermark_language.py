"""The firm watermark defaults to a Chinese placeholder (operators set the firm's name) and is drawn
with real glyphs of the bundled CJK font, not missing-glyph boxes."""

from __future__ import annotations

import re

from PIL import Image, ImageFont

from advisor_studio.video import render as R


def test_default_watermark_is_chinese_in_config_and_renderer(app):
    assert re.fullmatch(r"[\u4e00-\u9fff]+", R.DEFAULT_FIRM_WATERMARK)
    assert app.config["FIRM_WATERMARK"] == R.DEFAULT_FIRM_WATERMARK


def test_chinese_watermark_is_drawn_with_real_glyphs(tmp_path):
    font_path = R.default_font_path()
    font = ImageFont.truetype(font_path, 30)
    missing = bytes(font.getmask("\U000f0000"))  # a private-use code point: the font's missing glyph
    for char in R.DEFAULT_FIRM_WATERMARK:
        assert bytes(font.getmask(char)) != missing, char
    overlay = R.make_watermark_overlay(R.DEFAULT_FIRM_WATERMARK, font_path, str(tmp_path / "wm.png"))
    assert overlay is not None
    with Image.open(overlay.path) as img:
        alpha = img.getchannel("A")
        assert alpha.getbbox() is not None  # something is drawn
    # Different names draw different pixels (the text, not a row of identical boxes).
    other = R.make_watermark_overlay("星河证券", font_path, str(tmp_path / "other.png"))
    with Image.open(overlay.path) as a, Image.open(other.path) as b:
        assert a.tobytes() != b.tobytes()
