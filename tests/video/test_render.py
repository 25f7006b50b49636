"""Rendering the master: platform format, burned-in disclosures, geometry, atomic output, determinism."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess

import pytest
from PIL import Image

from advisor_studio.video import render as R
from advisor_studio.video.probe import ffmpeg_exe, probe, read_top_level_boxes
from advisor_studio.video.render import pipeline
from advisor_studio.video.srt import SubtitleError

SAC = "S1234567890123"
FAST = R.EncoderSettings(preset="ultrafast")


def ff(*args: str) -> None:
    """Run the bundled ffmpeg to generate a fixture; fail loudly if it cannot."""
    subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", "-y", *args], check=True, timeout=60
    )


def lavfi_video(path, src: str, dur: float = 1.0, audio: bool = True, extra=()) -> str:
    args = ["-f", "lavfi", "-i", f"{src}:d={dur}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=f=330:d={dur}:r=44100"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", *extra]
    if audio:
        args += ["-c:a", "aac", "-shortest"]
    ff(*args, str(path))
    return str(path)


def options(**kw) -> R.RenderOptions:
    base = {"advisor_name": "张三", "sac_number": SAC, "encoder": FAST}
    base.update(kw)
    return R.RenderOptions(**base)


def frame_at(video: str, t: float, out_png) -> Image.Image:
    ff("-ss", f"{t:.3f}", "-i", video, "-frames:v", "1", "-update", "1", str(out_png))
    return Image.open(out_png).convert("RGB")


def dark_pixels(img: Image.Image, box: tuple[int, int, int, int], below: int = 60) -> int:
    return sum(1 for p in img.crop(box).convert("L").getdata() if p < below)


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    d = tmp_path_factory.mktemp("render_src")
    # A red stripe on the left eighth of a landscape frame: fitting keeps it only inside the centred
    # picture, stretching would drag it over the whole height (see the geometry test).
    stripe = "drawbox=x=0:y=0:w=40:h=240:color=red:t=fill"
    return {
        "dir": d,
        "land": lavfi_video(d / "land.mp4", "testsrc2=s=320x240:r=25", dur=1.0),
        "striped": lavfi_video(
            d / "striped.mp4", "color=c=blue:s=320x240:r=25", dur=0.5, extra=["-vf", stripe]
        ),
        "white_sq": lavfi_video(d / "white.mp4", "color=c=white:s=240x240:r=30", dur=1.5),
        "portrait_silent": lavfi_video(d / "portrait.mp4", "testsrc2=s=180x320:r=30", dur=0.5, audio=False),
    }


@pytest.fixture(scope="module")
def master(src, tmp_path_factory):
    out = tmp_path_factory.mktemp("render_out") / "master.mp4"
    seen: list[float] = []
    res = R.render(src["land"], str(out), options(), progress_callback=seen.append)
    return out, res, seen


def test_master_is_1080x1920_h264_high_yuv420p_30fps_aac_48k_stereo(master):
    out, res, _ = master
    p = probe(str(out))
    assert (p.width, p.height, res.width, res.height) == (1080, 1920, 1080, 1920)
    assert (p.video_codec, p.video_profile, p.pix_fmt, p.fps) == ("h264", "High", "yuv420p", 30)
    assert (p.audio_codec, p.sample_rate, p.channels) == ("aac", 48000, 2)
    assert res.duration_s == pytest.approx(1.0, abs=0.05)
    assert res.size_bytes == os.path.getsize(out) and res.sha256 == R.sha256_file(str(out))


def test_master_is_fast_start_moov_before_mdat(master):
    out, _, _ = master
    boxes, truncated = read_top_level_boxes(str(out))
    kinds = [b.type for b in boxes]
    assert not truncated and kinds.index("moov") < kinds.index("mdat")


def test_progress_is_reported_increasing_and_ends_at_100(master):
    _, _, seen = master
    assert seen and seen[-1] == 100.0 and seen == sorted(seen)


def test_keyframes_come_every_two_seconds(src, tmp_path):
    source = lavfi_video(tmp_path / "long.mp4", "testsrc2=s=160x120:r=30", dur=4.5, audio=False)
    out = tmp_path / "m.mp4"
    R.render(source, str(out), options())
    log = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(out), "-map", "0:v", "-vf", "showinfo", "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stderr
    key_times = [float(m.group(1)) for m in re.finditer(r"pts_time:([\d.]+).*?iskey:1", log)]
    assert key_times == pytest.approx([0.0, 2.0, 4.0], abs=0.02)


def test_disclaimer_band_and_identity_are_burned_into_the_picture(src, tmp_path):
    out = tmp_path / "m.mp4"
    R.render(src["white_sq"], str(out), options())
    band = R.make_band_overlay(
        "张三", SAC, R.DEFAULT_DISCLAIMER, R.default_font_path(), str(tmp_path / "b.png")
    )
    img = frame_at(str(out), 0.5, tmp_path / "f.png")
    # The band's translucent black over a white source: mid grey where there is no text.
    r, g, b = img.getpixel((1060, band.y + 4))
    assert 70 <= r <= 125 and abs(r - g) < 12 and abs(r - b) < 12
    above = img.getpixel((1060, band.y - 500))
    assert min(above) > 200
    # Text inside the band: many bright glyph pixels over the grey band background.
    glyphs = sum(
        1 for p in img.crop((0, band.y, 1080, band.y + band.height)).convert("L").getdata() if p > 180
    )
    assert glyphs > 2000


def test_landscape_source_is_fitted_over_its_blurred_self_not_stretched(src, tmp_path):
    out = tmp_path / "m.mp4"
    R.render(src["striped"], str(out), options(firm_watermark=""))
    img = frame_at(str(out), 0.2, tmp_path / "f.png")
    # 320x240 fitted to width 1080 is 810 px tall, centred: y 555..1365, stripe x 0..135.
    r, g, b = img.getpixel((60, 960))
    assert r > 180 and b < 80
    # Above the picture is the blurred background, which is a centre crop: no red stripe there.
    r, g, b = img.getpixel((60, 300))
    assert b > r
    # The background is blurred: neighbouring pixels change smoothly, not a hard edge.
    assert abs(img.getpixel((540, 300))[2] - img.getpixel((544, 300))[2]) < 10


def test_narrow_portrait_source_gets_blurred_strips_left_and_right(tmp_path):
    # 180x420 is narrower than 9:16: full height, picture 824 px wide, centred; the blurred strips come
    # from a 9:16 centre crop, which cuts off the red top rows.
    source = lavfi_video(
        tmp_path / "narrow.mp4",
        "color=c=blue:s=180x420:r=30",
        dur=0.4,
        audio=False,
        extra=["-vf", "drawbox=x=0:y=0:w=180:h=24:color=red:t=fill"],
    )
    out = tmp_path / "m.mp4"
    R.render(source, str(out), options(firm_watermark=""))
    img = frame_at(str(out), 0.1, tmp_path / "f.png")
    r, g, b = img.getpixel((540, 40))
    assert r > 180 and b < 80
    r, g, b = img.getpixel((40, 40))
    assert b > r


def test_source_without_audio_gets_a_silent_stereo_track(src, tmp_path):
    out = tmp_path / "m.mp4"
    res = R.render(src["portrait_silent"], str(out), options())
    p = probe(str(out))
    assert p.has_audio and (p.audio_codec, p.sample_rate, p.channels) == ("aac", 48000, 2)
    assert res.duration_s == pytest.approx(0.5, abs=0.05)


def _rms_windows(video: str, windows: list[tuple[float, float]]) -> list[float]:
    rate = 8000
    pcm = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", video, "-map", "0:a", "-ac", "1", "-ar", str(rate), "-f", "s16le"]
        + ["-"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    samples = memoryview(pcm).cast("h")
    out = []
    for a, b in windows:
        chunk = samples[int(a * rate) : int(b * rate)]
        out.append((sum(x * x for x in chunk) / max(1, len(chunk))) ** 0.5)
    return out


def test_audio_that_starts_late_keeps_its_offset_against_the_picture(tmp_path):
    late = tmp_path / "late.mp4"
    ff("-f", "lavfi", "-i", "testsrc2=s=160x120:r=30:d=1.5", "-itsoffset", "0.5", "-f", "lavfi",
       "-i", "sine=f=440:d=1:r=48000", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
       "-c:a", "aac", str(late))
    out = tmp_path / "m.mp4"
    R.render(str(late), str(out), options())
    before, after = _rms_windows(str(out), [(0.05, 0.4), (0.65, 1.2)])
    assert before < 50 and after > 1000


@pytest.mark.parametrize("how", ["displaymatrix", "rotate_tag"])
def test_rotated_phone_video_is_rendered_upright(src, tmp_path, how):
    coded = lavfi_video(
        tmp_path / "coded.mp4",
        "color=c=blue:s=320x180:r=30",
        dur=0.4,
        audio=False,
        extra=["-vf", "drawbox=x=0:y=0:w=320:h=30:color=red:t=fill"],
    )
    if how == "displaymatrix":
        rotated = tmp_path / "rot.mp4"
        ff("-display_rotation", "-90", "-i", coded, "-c", "copy", str(rotated))
    else:
        rotated = tmp_path / "rot.mkv"
        ff("-i", coded, "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    out = tmp_path / "m.mp4"
    R.render(str(rotated), str(out), options(firm_watermark=""))
    img = frame_at(str(out), 0.1, tmp_path / "f.png")
    # Rotated 90 degrees clockwise the red top rows become the right-hand columns of a 9:16 picture.
    assert img.getpixel((1060, 700))[0] > 180 and img.getpixel((1060, 700))[2] < 80
    assert img.getpixel((540, 40))[2] > 180


def test_title_card_is_prepended_within_the_same_encode(src, tmp_path):
    out = tmp_path / "m.mp4"
    card = R.TitleCard(title="三分钟看懂资产配置", duration_s=2.0)
    res = R.render(src["land"], str(out), options(title_card=card))
    assert res.duration_s == pytest.approx(3.0, abs=0.05)
    img = frame_at(str(out), 1.0, tmp_path / "f.png")
    assert all(abs(a - b) < 12 for a, b in zip(img.getpixel((100, 1300)), R.CARD_BG, strict=True))
    assert res.recipe.title_card["title"] == "三分钟看懂资产配置"


def test_subtitles_show_only_during_their_cue(src, tmp_path):
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,300 --> 00:00:00,800\n字幕测试 subtitle\n", encoding="utf-8")
    out = tmp_path / "m.mp4"
    R.render(src["white_sq"], str(out), options(subtitles_path=str(srt)))
    band = R.make_band_overlay(
        "张三", SAC, R.DEFAULT_DISCLAIMER, R.default_font_path(), str(tmp_path / "b.png")
    )
    region = (0, band.y - R.SUB_GAP - R.SUB_H, 1080, band.y - R.SUB_GAP)
    during = frame_at(str(out), 0.55, tmp_path / "a.png")
    after = frame_at(str(out), 1.2, tmp_path / "b2.png")
    assert dark_pixels(during, region) > 500  # black outline of white letters on a white picture
    assert dark_pixels(after, region) == 0


def test_bad_srt_fails_fast_with_its_line_number_and_no_output(src, tmp_path):
    srt = tmp_path / "bad.srt"
    srt.write_text("1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:03,000 --> 00:00:0X,000\nbad\n")
    out = tmp_path / "m.mp4"
    with pytest.raises(SubtitleError) as exc:
        R.render(src["land"], str(out), options(subtitles_path=str(srt)))
    assert exc.value.line_no == 6 and not out.exists()


@pytest.mark.parametrize(
    "name,sac,code",
    [
        ("张三", None, "missing_sac_number"),
        ("张三", "", "missing_sac_number"),
        ("张三", "S123", "bad_sac_number"),
        ("张三", "s1234567890123", "bad_sac_number"),
        ("张三", "S12345678901234", "bad_sac_number"),
        ("张三", "A1234567890123", "bad_sac_number"),
        ("张三", "S１２３４５６７８９０１２３", "bad_sac_number"),
        ("", SAC, "missing_advisor_name"),
        ("   ", SAC, "missing_advisor_name"),
    ],
)
def test_render_refuses_missing_or_malformed_identity(src, tmp_path, name, sac, code):
    out = tmp_path / "m.mp4"
    with pytest.raises(R.IdentityError) as exc:
        R.render(src["land"], str(out), options(advisor_name=name, sac_number=sac))
    assert exc.value.reason_code == code and not out.exists()


def test_identity_is_cleaned_of_surrounding_whitespace():
    assert R.validate_identity(" 张三 ", "S1234567890123\n") == ("张三", "S1234567890123")


def _broken_probe(src_path: str):
    # A probe result that points ffmpeg at an audio stream the file does not have: ffmpeg fails mid-way.
    return dataclasses.replace(probe(src_path), has_audio=True, audio_stream=7)


def test_failed_render_leaves_destination_untouched_and_removes_its_temp_dir(src, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    out = tmp_path / "published.mp4"
    out.write_bytes(b"previous approved bytes")
    with pytest.raises(R.RenderError) as exc:
        R.render(
            src["portrait_silent"],
            str(out),
            options(),
            tmp_root=str(work),
            source_probe=_broken_probe(src["portrait_silent"]),
        )
    assert exc.value.reason_code == "ffmpeg_failed"
    assert out.read_bytes() == b"previous approved bytes"
    assert os.listdir(work) == []


def test_timeout_kills_ffmpeg_and_leaves_nothing_behind(src, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    out = tmp_path / "m.mp4"
    with pytest.raises(R.RenderError) as exc:
        R.render(src["land"], str(out), options(), tmp_root=str(work), timeout_s=0.05)
    assert exc.value.reason_code == "timeout"
    assert not out.exists() and os.listdir(work) == []


def test_exception_in_progress_callback_cancels_the_render(src, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    out = tmp_path / "m.mp4"

    def cancel(_pct: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        R.render(src["land"], str(out), options(), tmp_root=str(work), progress_callback=cancel)
    assert not out.exists() and os.listdir(work) == []


def test_same_inputs_give_the_same_recipe_hash_and_identical_bytes(src, tmp_path, master):
    _, first, _ = master
    out = tmp_path / "again.mp4"
    second = R.render(src["land"], str(out), options())
    assert second.recipe_hash == first.recipe_hash
    assert second.sha256 == first.sha256


def test_recipe_hash_changes_with_anything_that_changes_the_output(src):
    base = R.build_recipe(src["land"], options())
    assert base.recipe_hash() == R.build_recipe(src["land"], options()).recipe_hash()
    assert base.font_sha256 == R.font_sha256(R.default_font_path())
    assert base.ffmpeg_version.startswith("ffmpeg version")
    variants = [
        options(sac_number="S1234567890124"),
        options(disclaimer="投资有风险。"),
        options(encoder=R.EncoderSettings(preset="veryfast")),
        options(title_card=R.TitleCard("标题")),
    ]
    hashes = {R.build_recipe(src["land"], o).recipe_hash() for o in variants}
    assert base.recipe_hash() not in hashes and len(hashes) == len(variants)


def test_cover_is_a_1080x1920_jpeg_with_the_title(src, tmp_path):
    plain = tmp_path / "plain.jpg"
    titled = tmp_path / "cover.jpg"
    R.extract_cover(src["white_sq"], 0.5, "", str(plain))
    res = R.extract_cover(src["white_sq"], 99.0, "三分钟看懂资产配置", str(titled))  # clamped into the video
    assert (res.width, res.height) == (1080, 1920)
    with Image.open(titled) as im:
        assert im.format == "JPEG" and im.size == (1080, 1920)
        assert dark_pixels(im.convert("RGB"), (0, 360, 1080, 560), below=120) > 1000
    with Image.open(plain) as im:
        assert dark_pixels(im.convert("RGB"), (0, 360, 1080, 560), below=120) == 0


def test_output_on_another_filesystem_is_copied_under_a_hidden_name_then_renamed(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "_same_filesystem", lambda a, b: False)
    finished = tmp_path / "work" / "master.mp4"
    finished.parent.mkdir()
    finished.write_bytes(b"rendition bytes")
    dest = tmp_path / "media" / "renditions" / "x.mp4"
    pipeline._place_atomically(str(finished), str(dest), R.sha256_file(str(finished)))
    assert dest.read_bytes() == b"rendition bytes"
    assert os.listdir(dest.parent) == ["x.mp4"]


def test_a_copy_that_does_not_match_its_hash_never_reaches_the_destination(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "_same_filesystem", lambda a, b: False)
    finished = tmp_path / "master.mp4"
    finished.write_bytes(b"rendition bytes")
    dest = tmp_path / "media" / "x.mp4"
    with pytest.raises(R.RenderError) as exc:
        pipeline._place_atomically(str(finished), str(dest), "0" * 64)
    assert exc.value.reason_code == "copy_mismatch"
    assert os.listdir(dest.parent) == []


def test_title_card_shows_the_advisor_photo_in_a_circle(tmp_path):
    photo = tmp_path / "me.png"
    Image.new("RGB", (400, 300), (200, 30, 30)).save(photo)
    card = tmp_path / "card.png"
    R.make_title_card(R.TitleCard("标题", str(photo)), "张三", R.default_font_path(), str(card))
    with Image.open(card) as im:
        assert im.size == (1080, 1920)
        assert im.getpixel((540, 480)) == (200, 30, 30)  # centre of the circle
        assert im.getpixel((362, 302)) == R.CARD_BG  # corner of its square stays background


def test_unreadable_photo_is_refused_before_encoding(src, tmp_path):
    photo = tmp_path / "me.jpg"
    photo.write_text("not an image")
    out = tmp_path / "m.mp4"
    with pytest.raises(R.RenderError) as exc:
        R.render(src["land"], str(out), options(title_card=R.TitleCard("标题", str(photo))))
    assert exc.value.reason_code == "bad_photo" and not out.exists()


def test_4k_60fps_source_becomes_a_1080x1920_30fps_master(tmp_path):
    src4k = lavfi_video(tmp_path / "uhd.mp4", "testsrc2=s=3840x2160:r=60", dur=0.6)
    probed = probe(src4k)
    assert (probed.width, probed.height) == (3840, 2160) and round(probed.fps) == 60
    out = tmp_path / "master.mp4"
    result = R.render(src4k, str(out), options())
    master = probe(str(out))
    assert (result.width, result.height) == (1080, 1920)
    assert (master.width, master.height, round(master.fps)) == (1080, 1920, 30)
    assert master.video_codec == "h264" and master.pix_fmt == "yuv420p"


def test_the_render_package_still_exports_every_name_of_the_former_single_module():
    from advisor_studio.video.render import command, errors, overlays

    former = {
        "BAND_BOTTOM", "BAND_RGBA", "CARD_BG", "DEFAULT_DISCLAIMER", "DEFAULT_FIRM_WATERMARK", "FONT_FILE",
        "MARGIN_X", "OUT_H", "OUT_W", "SAC_RE", "SUB_GAP", "SUB_H", "TEMPLATE_VERSION", "WATERMARK_Y",
        "CoverResult", "EncoderSettings", "IdentityError", "Overlay", "ProgressCallback", "RenderError",
        "RenderOptions", "RenderRecipe", "RenderResult", "TitleCard", "build_command", "build_recipe",
        "default_font_path", "extract_cover", "ffmpeg_version", "font_sha256", "make_band_overlay",
        "make_title_card", "make_watermark_overlay", "render", "run_ffmpeg", "sha256_file", "tool_versions",
        "validate_identity", "wrap_text", "write_subtitle_track",
    }
    assert set(R.__all__) == former
    homes = (overlays, command, pipeline, errors)
    for name in former:
        defined_in = [m for m in homes if name in vars(m) and vars(m)[name] is getattr(R, name)]
        assert defined_in, f"{name} is not the object of one of the concern modules"
    assert callable(R.render) and R.render is pipeline.render
