"""Probe uploaded media with the bundled ffmpeg binary (there is no ffprobe) and reject bad input early."""

from __future__ import annotations

import functools
import os
import re
import struct
import subprocess
from dataclasses import dataclass

DEFAULT_MAX_DURATION_S = 900.0
DEFAULT_PROBE_TIMEOUT_S = 60.0
# Largest coded frame side we decode: a 16000x16000 source made ffmpeg use 677 MB per render (and fail);
# 4096 covers 4K/DCI sources with room, and the output is 1080x1920 anyway.
DEFAULT_MAX_SIDE_PX = 4096
# How much of the end of the file the "tail" decode check decodes; a few seconds is enough to hit the
# last samples of a file whose index promises more data than the file holds.
TAIL_CHECK_S = 2.0
DECODE_CHECK_MODES = ("none", "tail", "full")

# Top-level ISO-BMFF box types we accept as proof that a file is an MP4/MOV family container.
_ISO_TOP_LEVEL = {
    b"ftyp",
    b"moov",
    b"mdat",
    b"free",
    b"skip",
    b"wide",
    b"pdin",
    b"styp",
    b"sidx",
    b"moof",
    b"mfra",
    b"uuid",
    b"meta",
    b"prft",
    b"emsg",
    b"ssix",
}


class VideoError(Exception):
    """Base of the video layer's typed errors: a stable reason code plus a human message."""

    def __init__(self, reason_code: str, message: str):
        super().__init__(f"{reason_code}: {message}")
        self.reason_code = reason_code
        self.message = message


class ProbeError(VideoError):
    """The file is not a usable video (reason codes: see probe())."""


@dataclass(frozen=True)
class ProbeResult:
    """What ffmpeg says about a media file, normalised."""

    path: str
    size_bytes: int
    format_name: str  # demuxer list as printed by ffmpeg, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    duration_s: float
    bitrate_kbps: int | None
    width: int  # coded size of the video stream
    height: int
    display_width: int  # size after applying rotation
    display_height: int
    rotation: int  # clockwise degrees the player must rotate: 0, 90, 180 or 270
    rotation_from_tag_only: bool  # rotation known only from a "rotate" tag: ffmpeg will not autorotate
    sar: float  # sample (pixel) aspect ratio of the coded frame; 1.0 for square pixels
    interlaced: bool  # field order reported (top/bottom first): the renderer deinterlaces
    fps: float | None
    video_codec: str
    video_profile: str | None
    pix_fmt: str | None
    video_stream: int  # index among the video streams, for "-map 0:v:N"
    has_audio: bool
    audio_codec: str | None
    sample_rate: int | None
    channels: int | None
    audio_stream: int | None  # index among the audio streams, for "-map 0:a:N"
    is_mp4_family: bool
    faststart: bool | None  # moov before mdat (MP4/MOV only)


@dataclass(frozen=True)
class Box:
    """One top-level ISO-BMFF box header."""

    type: str
    offset: int
    size: int


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped with imageio-ffmpeg."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_input(path: str) -> str:
    """Force the file protocol so names like "http:..." or "concat:..." are never interpreted by ffmpeg."""
    return "file:" + os.path.abspath(path)


def read_top_level_boxes(path: str, limit: int = 100_000) -> tuple[list[Box], bool]:
    """Walk the top-level ISO-BMFF boxes by their headers; returns (boxes, truncated)."""
    boxes: list[Box] = []
    size_total = os.path.getsize(path)
    with open(path, "rb") as fh:
        pos = 0
        while pos < size_total and len(boxes) < limit:
            fh.seek(pos)
            head = fh.read(8)
            if len(head) < 8:
                return boxes, True
            size, kind = struct.unpack(">I4s", head)
            header_len = 8
            if size == 1:
                ext = fh.read(8)
                if len(ext) < 8:
                    return boxes, True
                size = struct.unpack(">Q", ext)[0]
                header_len = 16
            elif size == 0:  # box extends to end of file
                size = size_total - pos
            if size < header_len:
                # Garbage header: not a box structure we can trust.
                return boxes, True
            boxes.append(Box(kind.decode("latin-1"), pos, size))
            if pos + size > size_total:
                return boxes, True
            pos += size
    return boxes, False


def _looks_iso_bmff(path: str) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(8)
    return len(head) == 8 and head[4:8] in _ISO_TOP_LEVEL


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses or brackets."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur).strip())
    return parts


_RE_INPUT = re.compile(r"^Input #0, (.+?), from ", re.M)
_RE_DURATION = re.compile(r"Duration: (?:(\d+):(\d+):(\d+(?:\.\d+)?)|N/A)")
_RE_BITRATE = re.compile(r"bitrate: (\d+) kb/s")
_RE_STREAM = re.compile(r"^\s*Stream #0:(\d+)\S*: (Video|Audio|Subtitle|Data|Attachment): (.*)$")
_RE_SIZE = re.compile(r"^(\d{1,5})x(\d{1,5})\b")
_RE_INTERLACED = re.compile(r"\b(?:top|bottom)(?: coded)? first\b")
_RE_SAR = re.compile(r"\[SAR (\d+):(\d+) DAR")
_RE_RATE = re.compile(r"^([\d.]+)(k?) (fps|tbr)$")
_RE_ROTATE_TAG = re.compile(r"^\s*rotate\s*:\s*(-?\d+(?:\.\d+)?)\s*$", re.I)
_RE_DISPLAYMATRIX = re.compile(r"display\s*matrix:\s*rotation of (-?\d+(?:\.\d+)?) degrees", re.I)
_CHANNEL_LAYOUTS = {
    "mono": 1,
    "stereo": 2,
    "2.1": 3,
    "3.0": 3,
    "quad": 4,
    "4.0": 4,
    "5.0": 5,
    "5.1": 6,
    "6.1": 7,
    "7.1": 8,
}


def _channels(text: str) -> int | None:
    layout = text.split("(")[0].strip().lower()
    if layout in _CHANNEL_LAYOUTS:
        return _CHANNEL_LAYOUTS[layout]
    m = re.match(r"(\d+) channels", layout)
    return int(m.group(1)) if m else None


def _norm_rotation(ccw_degrees: float) -> int:
    """Display matrix angles are counter-clockwise; return the clockwise angle snapped to 90 degrees."""
    return int(round(-ccw_degrees / 90.0)) * 90 % 360


@dataclass
class _Stream:
    kind: str
    kind_index: int
    desc: str
    meta_lines: list[str]


def _parse_streams(stderr: str) -> list[_Stream]:
    streams: list[_Stream] = []
    counters: dict[str, int] = {}
    current: _Stream | None = None
    for line in stderr.splitlines():
        m = _RE_STREAM.match(line)
        if m:
            kind = m.group(2)
            current = _Stream(kind, counters.get(kind, 0), m.group(3), [])
            counters[kind] = current.kind_index + 1
            streams.append(current)
        elif current is not None:
            if line.startswith("  ") and not line.lstrip().startswith(("Input #", "Output #")):
                current.meta_lines.append(line)
            else:
                current = None
    return streams


def parse_ffmpeg_info(stderr: str) -> dict:
    """Parse the stream report `ffmpeg -i` prints on stderr into a plain dict (exposed for tests)."""
    info: dict = {"format_name": None, "duration_s": None, "bitrate_kbps": None, "video": None, "audio": None}
    m = _RE_INPUT.search(stderr)
    if m:
        info["format_name"] = m.group(1)
    m = _RE_DURATION.search(stderr)
    if m and m.group(1) is not None:
        info["duration_s"] = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    m = _RE_BITRATE.search(stderr)
    if m:
        info["bitrate_kbps"] = int(m.group(1))
    for st in _parse_streams(stderr):
        parts = _split_top_level(st.desc)
        head = parts[0]
        codec = head.split()[0] if head.split() else ""
        if st.kind == "Video" and info["video"] is None:
            if "(attached pic)" in st.desc:  # cover art of an audio file is not a video
                continue
            v = {
                "codec": codec,
                "profile": None,
                "pix_fmt": None,
                "width": None,
                "height": None,
                "sar": 1.0,
                "interlaced": bool(_RE_INTERLACED.search(st.desc)),
                "fps": None,
                "rotation": 0,
                "rotation_from_tag_only": False,
                "index": st.kind_index,
            }
            pm = re.search(r"\(([^()/]+)\)", head)
            if pm:
                v["profile"] = pm.group(1).strip()
            tbr = None
            for p in parts[1:]:
                sm = _RE_SIZE.match(p)
                if sm and v["width"] is None:
                    v["width"], v["height"] = int(sm.group(1)), int(sm.group(2))
                    sar = _RE_SAR.search(p)
                    if sar and int(sar.group(1)) > 0 and int(sar.group(2)) > 0:
                        v["sar"] = int(sar.group(1)) / int(sar.group(2))
                    continue
                rm = _RE_RATE.match(p)
                if rm:
                    val = float(rm.group(1)) * (1000 if rm.group(2) else 1)
                    if rm.group(3) == "fps":
                        v["fps"] = val
                    else:
                        tbr = val
                    continue
                if v["pix_fmt"] is None and v["width"] is None and re.match(r"^[a-z0-9_]+(\(|$)", p):
                    v["pix_fmt"] = p.split("(")[0]
            if v["fps"] is None:
                v["fps"] = tbr
            tag_rot = matrix_rot = None
            for ml in st.meta_lines:
                tm = _RE_ROTATE_TAG.match(ml)
                if tm:
                    tag_rot = int(round(float(tm.group(1)) / 90.0)) * 90 % 360
                dm = _RE_DISPLAYMATRIX.search(ml)
                if dm:
                    matrix_rot = _norm_rotation(float(dm.group(1)))
            if matrix_rot is not None:
                v["rotation"] = matrix_rot
            elif tag_rot is not None:
                v["rotation"] = tag_rot
                v["rotation_from_tag_only"] = tag_rot != 0
            info["video"] = v
        elif st.kind == "Audio" and info["audio"] is None:
            a = {"codec": codec, "sample_rate": None, "channels": None, "index": st.kind_index}
            for p in parts[1:]:
                hz = re.match(r"^(\d+) Hz$", p)
                if hz:
                    a["sample_rate"] = int(hz.group(1))
                elif a["channels"] is None and a["sample_rate"] is not None:
                    a["channels"] = _channels(p)
            info["audio"] = a
    return info


def _run(args: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, capture_output=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise ProbeError("probe_timeout", f"ffmpeg did not answer within {timeout_s:.0f} s") from exc


def decode_check(
    path: str,
    duration_s: float,
    mode: str = "tail",
    *,
    video_stream: int = 0,
    audio_stream: int | None = None,
    timeout_s: float = DEFAULT_PROBE_TIMEOUT_S,
) -> list[str]:
    """Decode the last TAIL_CHECK_S seconds ("tail") or everything ("full"); return ffmpeg's error lines."""
    if mode == "none":
        return []
    if mode not in DECODE_CHECK_MODES:
        raise ValueError(f"decode check mode must be one of {DECODE_CHECK_MODES}")
    args = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error"]
    if mode == "tail" and duration_s > TAIL_CHECK_S:
        # Input-side seek jumps to the keyframe before the point, so the cost is bounded by one GOP
        # plus the tail, independent of the file's length.
        args += ["-ss", f"{duration_s - TAIL_CHECK_S:.3f}"]
    args += ["-i", ffmpeg_input(path), "-map", f"0:v:{video_stream}"]
    if audio_stream is not None:
        args += ["-map", f"0:a:{audio_stream}"]
    args += ["-f", "null", "-"]
    proc = _run(args, timeout_s)
    lines = [ln for ln in proc.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    if proc.returncode != 0 and not lines:
        lines = [f"ffmpeg exited with status {proc.returncode}"]
    return lines


def probe(
    path: str,
    *,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
    decode_check_mode: str = "tail",
    timeout_s: float = DEFAULT_PROBE_TIMEOUT_S,
    max_side_px: int = DEFAULT_MAX_SIDE_PX,
) -> ProbeResult:
    """Probe a media file by content (never by extension); raise ProbeError if it is not a usable video.

    Reason codes: not_found, empty_file, not_a_video, truncated, corrupt, audio_only, no_video_stream,
    frame_too_large, no_duration, too_long, probe_timeout.
    """
    if not os.path.isfile(path):
        raise ProbeError("not_found", f"no such file: {os.path.basename(path)}")
    size = os.path.getsize(path)
    if size == 0:
        raise ProbeError("empty_file", "the file is empty (0 bytes)")

    is_iso = _looks_iso_bmff(path)
    boxes: list[Box] = []
    iso_truncated = False
    if is_iso:
        boxes, iso_truncated = read_top_level_boxes(path)

    proc = _run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-i", ffmpeg_input(path)], timeout_s)
    stderr = proc.stderr.decode("utf-8", "replace")
    if "Input #0" not in stderr:
        if is_iso:
            # An MP4 header with no usable index is what a cut-off upload with moov at the end looks like.
            raise ProbeError(
                "truncated", "the MP4 file is incomplete (index 'moov' missing); upload it again"
            )
        raise ProbeError("not_a_video", "the file is not a recognised video container")
    info = parse_ffmpeg_info(stderr)
    fmt = info["format_name"] or ""
    if fmt.endswith("_pipe") or fmt in ("image2", "tty"):
        raise ProbeError("not_a_video", f"the file is a still image or text ({fmt}), not a video")
    video, audio = info["video"], info["audio"]
    if video is None:
        if audio is not None:
            raise ProbeError("audio_only", "the file contains audio only; a video stream is required")
        raise ProbeError("no_video_stream", "the file contains no video stream")
    if not video["width"] or not video["height"]:
        raise ProbeError("corrupt", "the video stream has no usable frame size")
    if max(video["width"], video["height"]) > max_side_px:
        # Checked before the decode check below, which would already have to hold such frames in memory.
        raise ProbeError(
            "frame_too_large",
            f"the frame is {video['width']}x{video['height']} pixels; at most {max_side_px} on a side",
        )
    if iso_truncated:
        raise ProbeError("truncated", "the MP4 file is shorter than its own index says; upload it again")
    duration = info["duration_s"]
    if duration is None or duration <= 0:
        raise ProbeError("no_duration", "the video has no readable duration")
    if duration > max_duration_s:
        raise ProbeError(
            "too_long", f"the video lasts {duration:.0f} s; the maximum is {max_duration_s:.0f} s"
        )

    errors = decode_check(
        path,
        duration,
        decode_check_mode,
        video_stream=video["index"],
        audio_stream=audio["index"] if audio else None,
        timeout_s=timeout_s,
    )
    if errors:
        joined = " | ".join(errors[:3])
        code = (
            "truncated"
            if re.search(r"partial file|end of file|ended prematurely|truncat", joined, re.I)
            else "corrupt"
        )
        raise ProbeError(code, f"the video cannot be decoded: {joined[:300]}")

    rotation = video["rotation"]
    w, h = video["width"], video["height"]
    dw, dh = (h, w) if rotation in (90, 270) else (w, h)
    faststart = None
    if is_iso:
        kinds = [b.type for b in boxes]
        if "moov" in kinds and "mdat" in kinds:
            faststart = kinds.index("moov") < kinds.index("mdat")
    return ProbeResult(
        path=path,
        size_bytes=size,
        format_name=fmt,
        duration_s=duration,
        bitrate_kbps=info["bitrate_kbps"],
        width=w,
        height=h,
        display_width=dw,
        display_height=dh,
        rotation=rotation,
        rotation_from_tag_only=video["rotation_from_tag_only"],
        sar=video["sar"],
        interlaced=video["interlaced"],
        fps=video["fps"],
        video_codec=video["codec"],
        video_profile=video["profile"],
        pix_fmt=video["pix_fmt"],
        video_stream=video["index"],
        has_audio=audio is not None,
        audio_codec=audio["codec"] if audio else None,
        sample_rate=audio["sample_rate"] if audio else None,
        channels=audio["channels"] if audio else None,
        audio_stream=audio["index"] if audio else None,
        is_mp4_family=is_iso,
        faststart=faststart,
    )
