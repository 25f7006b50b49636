"""SRT subtitle parsing with line-numbered errors, writing cues back as SRT, and flattening of cues into a
display timeline."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from advisor_studio.video.probe import VideoError

MAX_SRT_BYTES = 5 * 1024 * 1024
MAX_CUES = 20_000
MAX_CUE_CHARS = 120
# At most this many overlapping cues are shown at once (the newest win); keeps the timeline linear.
MAX_SIMULTANEOUS = 3
OVERLAP_POLICIES = ("stack", "error")

_TIME = r"(\d{1,3}):(\d{1,2}):(\d{1,2})(?:[,.](\d{1,3}))?"
_RE_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}(?:\s+.*)?$")
_RE_INDEX = re.compile(r"^\s*\d+\s*$")
# Formatting SRT players understand (<i>, <font ...>, {\an8}); we render plain text.
_RE_TAGS = re.compile(r"</?\s*[a-zA-Z][^<>]{0,200}>|\{\\[^{}]{0,200}\}")
_RE_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class SubtitleError(VideoError):
    """An SRT file cannot be used; line_no is 1-based in the original file, when known."""

    def __init__(self, reason_code: str, message: str, line_no: int | None = None):
        where = f"line {line_no}: " if line_no is not None else ""
        super().__init__(reason_code, where + message)
        self.line_no = line_no


@dataclass(frozen=True)
class Cue:
    """One subtitle cue; times in seconds from the start of the source video."""

    index: int  # 1-based position in the file (SRT numbers are often wrong, so we do not trust them)
    start_s: float
    end_s: float
    text: str
    line_no: int  # line of the timing line


@dataclass(frozen=True)
class Segment:
    """A span of the timeline during which the same lines of text are on screen."""

    start_s: float
    end_s: float
    lines: tuple[str, ...]


def _to_seconds(h: str, m: str, s: str, frac: str | None, line_no: int | None, raw: str) -> float:
    if int(m) >= 60 or int(s) >= 60:
        raise SubtitleError(
            "bad_timecode", f"minutes and seconds must be below 60 in {raw.strip()!r}", line_no
        )
    ms = int((frac or "0").ljust(3, "0"))  # "1,5" means 1.5 s, as a decimal fraction
    return int(h) * 3600 + int(m) * 60 + int(s) + ms / 1000.0


# A time typed into the cue editor: [H:]MM:SS with optional milliseconds, as in SRT files.
_RE_TIMESTAMP = re.compile(r"^(?:(\d{1,3}):)?(\d{1,2}):(\d{1,2})(?:[,.](\d{1,3}))?$")
# What a Chinese input method types in place of ':' and ',' (full-width forms and the ideographic comma).
_FULLWIDTH_TIME = str.maketrans({"：": ":", "，": ",", "、": ",", "．": ".", "。": "."})


def parse_timestamp(text: str) -> float:
    """Seconds of a typed time such as '00:01:02,500', '1:02:03.5' or '01:02,500' (no hours); full-width
    ':' and ',' are accepted. Raise SubtitleError('bad_timecode') for anything else."""
    raw = (text or "").strip().translate(_FULLWIDTH_TIME)
    m = _RE_TIMESTAMP.match(raw)
    if not m:
        raise SubtitleError("bad_timecode", f"{raw[:40]!r} is not a time like 00:01:02,500")
    h, mm, ss, frac = m.groups()
    return _to_seconds(h or "0", mm, ss, frac, None, raw)


def format_timestamp(seconds: float) -> str:
    """'HH:MM:SS,mmm', the SRT form of a time in seconds (rounded to the millisecond)."""
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def is_timing_line(line: str) -> bool:
    """True when ``line`` would be read as a cue's timing line (so it cannot be a line of cue text)."""
    return bool(_RE_TIMING.match(line))


def serialize_srt(cues) -> str:
    """SRT text of cues given as (start_s, end_s, text), numbered 1.. in the order given.

    Text lines are written as they are: callers pass cleaned text (no blank or timing lines), which
    parse_srt reads back unchanged.
    """
    blocks = [f"{n}\n{format_timestamp(start)} --> {format_timestamp(end)}\n{text}\n"
              for n, (start, end, text) in enumerate(cues, start=1)]
    return "\n".join(blocks)


def _parse_timing(line: str, line_no: int) -> tuple[float, float]:
    m = _RE_TIMING.match(line)
    if not m:
        raise SubtitleError(
            "bad_timecode",
            f"malformed timing {line.strip()[:80]!r}; expected 'HH:MM:SS,mmm --> HH:MM:SS,mmm'",
            line_no,
        )
    g = m.groups()
    start = _to_seconds(*g[0:4], line_no, line)
    end = _to_seconds(*g[4:8], line_no, line)
    if end <= start:
        raise SubtitleError(
            "bad_timecode", f"cue ends ({end:.3f} s) before it starts ({start:.3f} s)", line_no
        )
    return start, end


def decode_srt(data: bytes) -> str:
    """Decode SRT bytes: UTF-8 (with or without BOM), UTF-16 with BOM, else GB18030 (common for Chinese)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        line_no = data[: exc.start].count(b"\n") + 1
        raise SubtitleError("bad_encoding", "the file is neither UTF-8 nor GB18030 text", line_no) from exc


def clean_text(text: str) -> str:
    """Strip SRT/ASS formatting tags and control characters; keep line breaks."""
    text = _RE_TAGS.sub("", text)
    return "\n".join(_RE_CONTROL.sub("", ln).strip() for ln in text.split("\n")).strip()


def parse_srt(data: bytes | str, *, overlap: str = "stack", max_cues: int = MAX_CUES) -> list[Cue]:
    """Parse SRT into cues sorted by start time; raise SubtitleError (with a line number) on bad input.

    Tolerates a BOM, CRLF/CR line ends, missing or wrong cue numbers, '.' instead of ',' and a missing
    blank line between cues. Overlapping cues are kept and later shown together (overlap="stack") or
    rejected (overlap="error").
    """
    if overlap not in OVERLAP_POLICIES:
        raise ValueError(f"overlap must be one of {OVERLAP_POLICIES}")
    if isinstance(data, bytes):
        if len(data) > MAX_SRT_BYTES:
            raise SubtitleError("too_large", f"the subtitle file exceeds {MAX_SRT_BYTES // 1024 // 1024} MB")
        data = decode_srt(data)
    elif data.startswith("\ufeff"):
        data = data[1:]
    lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    n = len(lines)
    for line_no, line in enumerate(lines, 1):
        # Refused, not stripped: PostgreSQL cannot store a NUL, and a control character in a subtitle
        # file is a sign of a damaged or binary file that the author should look at.
        control = _RE_CONTROL.search(line)
        if control:
            raise SubtitleError("control_character",
                                f"control character U+{ord(control.group()):04X} is not allowed", line_no)
    cues: list[Cue] = []
    i = 0

    def starts_cue(k: int) -> bool:
        """A new cue begins at line k: "<number>\\n<timing>" or a bare timing line."""
        if k >= n:
            return False
        if _RE_TIMING.match(lines[k]):
            return True
        return bool(_RE_INDEX.match(lines[k])) and k + 1 < n and bool(_RE_TIMING.match(lines[k + 1]))

    while i < n:
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if _RE_INDEX.match(line):
            if i + 1 >= n or "-->" not in lines[i + 1]:
                raise SubtitleError("bad_structure", "expected a timing line after the cue number", i + 2)
            i += 1
            line = lines[i]
        elif "-->" not in line:
            raise SubtitleError(
                "bad_structure", f"expected a cue number or a timing line, found {line.strip()[:80]!r}", i + 1
            )
        timing_line_no = i + 1
        start, end = _parse_timing(line, timing_line_no)
        i += 1
        text_lines: list[str] = []
        while i < n and lines[i].strip() and not starts_cue(i):
            text_lines.append(lines[i])
            i += 1
        text = clean_text("\n".join(text_lines))
        if len(text) > MAX_CUE_CHARS:
            raise SubtitleError(
                "cue_too_long", f"cue text longer than {MAX_CUE_CHARS} characters", timing_line_no
            )
        if not text:
            continue  # an empty cue shows nothing; dropping it is harmless
        cues.append(Cue(len(cues) + 1, start, end, text, timing_line_no))
        if len(cues) > max_cues:
            raise SubtitleError("too_many_cues", f"more than {max_cues} cues", timing_line_no)
    cues.sort(key=lambda c: (c.start_s, c.line_no))
    if overlap == "error":
        for prev, cur in zip(cues, cues[1:], strict=False):
            if cur.start_s < prev.end_s:
                raise SubtitleError(
                    "overlap",
                    f"cue starts at {cur.start_s:.3f} s before the cue at line {prev.line_no} ends "
                    f"({prev.end_s:.3f} s)",
                    cur.line_no,
                )
    return cues


def parse_srt_file(path: str, **kwargs) -> list[Cue]:
    """parse_srt() on a file, refusing oversized files before reading them."""
    if os.path.getsize(path) > MAX_SRT_BYTES:
        raise SubtitleError("too_large", f"the subtitle file exceeds {MAX_SRT_BYTES // 1024 // 1024} MB")
    with open(path, "rb") as fh:
        return parse_srt(fh.read(), **kwargs)


def timeline_segments(cues: list[Cue], *, duration_s: float | None = None) -> list[Segment]:
    """Flatten (possibly overlapping) cues into non-overlapping segments, clipped to [0, duration_s]."""
    events: list[tuple[float, int, int]] = []  # (time, 0=end/1=start, cue position)
    for pos, c in enumerate(cues):
        start, end = c.start_s, c.end_s
        if duration_s is not None:
            if start >= duration_s:
                continue
            end = min(end, duration_s)
        events.append((start, 1, pos))
        events.append((end, 0, pos))
    events.sort()
    segments: list[Segment] = []
    active: dict[int, Cue] = {}
    k = 0
    while k < len(events):
        t = events[k][0]
        while k < len(events) and events[k][0] == t:  # apply every change at this instant first
            _, kind, pos = events[k]
            if kind:
                active[pos] = cues[pos]
            else:
                active.pop(pos, None)
            k += 1
        if not active or k >= len(events):
            continue
        nxt = events[k][0]
        shown = sorted(active.values(), key=lambda c: (c.start_s, c.line_no))[-MAX_SIMULTANEOUS:]
        lines = tuple(shown_line for c in shown for shown_line in c.text.split("\n"))
        if segments and segments[-1].lines == lines and abs(segments[-1].end_s - t) < 1e-9:
            segments[-1] = Segment(segments[-1].start_s, nxt, lines)
        else:
            segments.append(Segment(t, nxt, lines))
    return segments
