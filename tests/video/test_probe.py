"""Probing uploads by content: properties, rotation, and every kind of bad file we must refuse."""

from __future__ import annotations

import random
import subprocess

import pytest

from advisor_studio.video.probe import (
    ProbeError,
    ffmpeg_exe,
    parse_ffmpeg_info,
    probe,
    read_top_level_boxes,
)


def ff(*args: str) -> None:
    """Run the bundled ffmpeg to generate a fixture; fail loudly if it cannot."""
    subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", "-y", *args], check=True, timeout=60
    )


def make_video(path, size="320x240", dur=2, audio=True, extra=(), rate=25):
    args = ["-f", "lavfi", "-i", f"testsrc2=s={size}:r={rate}:d={dur}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=f=440:d={dur}:r=44100"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", *extra]
    if audio:
        args += ["-c:a", "aac", "-shortest"]
    ff(*args, str(path))
    return str(path)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("probe_media")
    m = {
        "land": make_video(d / "land.mp4"),
        "square": make_video(d / "square.mp4", size="240x240", dur=1, audio=False),
        "portrait": make_video(d / "portrait.mp4", size="180x320", dur=1),
        "faststart": make_video(d / "fast.mp4", dur=3, extra=["-movflags", "+faststart"]),
    }
    return d, m


def truncated_copy(src, dst, fraction):
    with open(src, "rb") as fh:
        data = fh.read()
    with open(dst, "wb") as fh:
        fh.write(data[: int(len(data) * fraction)])
    return str(dst)


def reason(path, **kwargs) -> str:
    with pytest.raises(ProbeError) as exc:
        probe(str(path), **kwargs)
    return exc.value.reason_code


def test_probe_reports_container_streams_and_sizes_of_a_landscape_video(media):
    _, m = media
    r = probe(m["land"])
    assert r.format_name.startswith("mov,mp4")
    assert r.duration_s == pytest.approx(2.0, abs=0.1)
    assert (r.width, r.height, r.display_width, r.display_height, r.rotation) == (320, 240, 320, 240, 0)
    assert r.fps == 25
    assert r.video_codec == "h264" and r.pix_fmt == "yuv420p"
    assert r.has_audio and r.audio_codec == "aac" and r.sample_rate == 44100 and r.channels == 1
    assert r.bitrate_kbps and r.bitrate_kbps > 0
    assert r.faststart is False  # ffmpeg's default puts moov at the end


def test_probe_reports_square_and_portrait_sizes_and_missing_audio(media):
    _, m = media
    sq = probe(m["square"])
    assert (sq.width, sq.height, sq.has_audio, sq.audio_codec) == (240, 240, False, None)
    pt = probe(m["portrait"])
    assert (pt.display_width, pt.display_height) == (180, 320)


def test_probe_detects_faststart_layout(media):
    _, m = media
    assert probe(m["faststart"]).faststart is True


def test_probe_reads_display_matrix_rotation_and_swaps_display_size(media):
    d, m = media
    out = d / "rot.mp4"
    # -display_rotation is counter-clockwise; -90 is what a phone held upright writes (ffmpeg prints -90).
    ff("-display_rotation", "-90", "-i", m["land"], "-c", "copy", str(out))
    r = probe(str(out))
    assert r.rotation == 90 and not r.rotation_from_tag_only
    assert (r.width, r.height, r.display_width, r.display_height) == (320, 240, 240, 320)


def test_probe_reads_a_bare_rotate_tag_that_ffmpeg_would_not_apply(media):
    d, m = media
    out = d / "rot_tag.mkv"
    ff("-i", m["land"], "-c", "copy", "-metadata:s:v:0", "rotate=90", str(out))
    r = probe(str(out))
    assert r.rotation == 90 and r.rotation_from_tag_only
    assert (r.display_width, r.display_height) == (240, 320)


def test_stream_report_parser_understands_legacy_rotate_tag_and_displaymatrix_spellings():
    legacy = (
        "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'x.mov':\n"
        "  Duration: 00:00:12.34, start: 0.000000, bitrate: 9000 kb/s\n"
        "  Stream #0:0(und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709), 1920x1080, "
        "8000 kb/s, 29.97 fps, 29.97 tbr, 600 tbn (default)\n"
        "    Metadata:\n"
        "      rotate          : 90\n"
        "    Side data:\n"
        "      displaymatrix: rotation of -90.00 degrees\n"
        "  Stream #0:1(und): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, stereo, fltp, 128 kb/s\n"
    )
    info = parse_ffmpeg_info(legacy)
    assert info["duration_s"] == pytest.approx(12.34)
    v = info["video"]
    assert (v["codec"], v["profile"], v["pix_fmt"], v["width"], v["height"]) == (
        "h264",
        "High",
        "yuv420p",
        1920,
        1080,
    )
    assert v["fps"] == pytest.approx(29.97) and v["rotation"] == 90 and not v["rotation_from_tag_only"]
    assert v["interlaced"] is False
    assert info["audio"] == {"codec": "aac", "sample_rate": 48000, "channels": 2, "index": 0}
    tag_only = legacy.replace("    Side data:\n      displaymatrix: rotation of -90.00 degrees\n", "")
    assert parse_ffmpeg_info(tag_only)["video"]["rotation_from_tag_only"] is True


def test_stream_report_parser_reads_non_square_pixels():
    report = (
        "Input #0, mpegts, from 'dv.ts':\n  Duration: 00:00:05.00, start: 1.4, bitrate: 5000 kb/s\n"
        "  Stream #0:0[0x100]: Video: mpeg2video (Main), yuv420p(tv, top first), "
        "720x576 [SAR 16:15 DAR 4:3], 25 fps, 25 tbr, 90k tbn\n"
    )
    v = parse_ffmpeg_info(report)["video"]
    assert (v["width"], v["height"], v["sar"], v["fps"]) == (720, 576, 16 / 15, 25)
    assert v["interlaced"] is True


def test_probe_ignores_cover_art_when_looking_for_video():
    report = (
        "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'a.m4a':\n"
        "  Duration: 00:03:00.00, start: 0, bitrate: 128 kb/s\n"
        "  Stream #0:0: Audio: aac (LC), 44100 Hz, stereo, fltp, 128 kb/s\n"
        "  Stream #0:1: Video: mjpeg (Baseline), yuvj420p(pc), 600x600, 90k tbr, 90k tbn (attached pic)\n"
    )
    assert parse_ffmpeg_info(report)["video"] is None


def test_probe_judges_by_content_not_by_extension(media):
    d, m = media
    disguised = d / "video.txt"
    disguised.write_bytes(open(m["land"], "rb").read())
    assert probe(str(disguised)).video_codec == "h264"


def test_probe_refuses_missing_and_empty_files(tmp_path):
    assert reason(tmp_path / "nope.mp4") == "not_found"
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert reason(tmp_path / "empty.mp4") == "empty_file"


def test_probe_refuses_a_text_file_renamed_to_mp4(tmp_path):
    f = tmp_path / "notes.mp4"
    f.write_text("这不是视频\nhello\n" * 50, encoding="utf-8")
    assert reason(f) == "not_a_video"


def test_probe_refuses_a_still_image(tmp_path):
    f = tmp_path / "photo.mp4"
    ff(
        "-f",
        "lavfi",
        "-i",
        "color=red:s=64x64:d=0.1",
        "-frames:v",
        "1",
        "-f",
        "image2",
        "-c:v",
        "png",
        str(f),
    )
    assert reason(f) == "not_a_video"


def test_probe_refuses_audio_only_files(tmp_path):
    f = tmp_path / "voice.m4a"
    ff("-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", str(f))
    assert reason(f) == "audio_only"


def test_probe_refuses_a_container_without_audio_or_video(tmp_path):
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nhi\n", encoding="utf-8")
    f = tmp_path / "subs_only.mkv"
    ff("-i", str(srt), "-c:s", "srt", str(f))
    assert reason(f) == "no_video_stream"


def test_probe_refuses_mp4_cut_before_its_trailing_moov(media, tmp_path):
    _, m = media
    f = truncated_copy(m["land"], tmp_path / "cut.mp4", 0.6)
    assert reason(f) == "truncated"


def test_probe_refuses_faststart_mp4_cut_in_half_although_ffmpeg_opens_it(media, tmp_path):
    _, m = media
    f = truncated_copy(m["faststart"], tmp_path / "half.mp4", 0.5)
    boxes, truncated = read_top_level_boxes(f)
    assert truncated and [b.type for b in boxes][:2] == ["ftyp", "moov"]
    assert reason(f) == "truncated"


def test_tail_decode_check_catches_a_truncated_matroska_file(media, tmp_path):
    _, m = media
    full = tmp_path / "full.mkv"
    ff("-i", m["faststart"], "-c", "copy", str(full))
    f = truncated_copy(full, tmp_path / "half.mkv", 0.5)
    assert probe(f, decode_check_mode="none").duration_s > 2  # the header alone looks fine
    assert reason(f) == "truncated"


def test_tail_decode_check_catches_garbage_at_the_end_of_the_stream(media, tmp_path):
    _, m = media
    data = bytearray(open(m["faststart"], "rb").read())
    rnd = random.Random(7)
    for i in range(int(len(data) * 0.85), len(data) - 64):
        data[i] = rnd.randrange(256)
    f = tmp_path / "noisy.mp4"
    f.write_bytes(bytes(data))
    assert reason(f) == "corrupt"


def test_probe_refuses_videos_longer_than_the_configured_maximum(media):
    _, m = media
    assert reason(m["land"], max_duration_s=1.5) == "too_long"
    assert probe(m["land"], max_duration_s=2.5).duration_s < 2.5


def test_probe_never_lets_ffmpeg_interpret_a_file_name_as_a_protocol(media, tmp_path):
    _, m = media
    sneaky = tmp_path / "concat:evil.mp4"
    sneaky.write_bytes(open(m["land"], "rb").read())
    assert probe(str(sneaky)).width == 320
