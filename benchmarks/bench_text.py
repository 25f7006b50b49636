"""Benchmark the text diff (studio.textdiff, the one diff of the studio and the review page) and the
SRT parser; prints figures only (no targets asserted).

The speed checks that used to sit in tests/studio/test_textdiff.py and tests/video/test_srt.py live
here, as ratios against a baseline run in the same process, so a loaded CI machine cannot fail the
suite and a slow change still shows up in the figures.

- Diffs: 20,000 Chinese characters with 1 / 100 / 2,000 edits and a full rewrite, against a plain
  difflib.SequenceMatcher(autojunk=False).get_opcodes() over the same pair of character sequences.
- SRT: a 10,000-line file, parse_srt + timeline_segments against a plain regex pass over the same
  text that only finds the timecode lines (a floor for any parser).

Run: .venv/bin/python benchmarks/bench_text.py [--quick]
"""

from __future__ import annotations

import difflib
import random
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from advisor_studio.studio import textdiff  # noqa: E402
from advisor_studio.video.srt import parse_srt, timeline_segments  # noqa: E402

# The same generated texts as the diff tests, so the figures describe what the tests check.
from tests.studio.test_textdiff import _chinese as chinese  # noqa: E402
from tests.studio.test_textdiff import _edit as edit  # noqa: E402

CHARS = 20_000
SRT_CUES = 2_500  # 4 lines a cue: 10,000 lines
TIMECODE_RE = re.compile(r"^\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}$", re.M)


def big_srt(cues: int) -> str:
    def tc(seconds: int, ms: int) -> str:
        return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d},{ms:03d}"

    return "\n".join(f"{i + 1}\n{tc(i * 2, 0)} --> {tc(i * 2 + 1, 500)}\n第{i + 1}句字幕\n" for i in range(cues))


def best_of(fn, repeats: int) -> float:
    """The fastest of ``repeats`` runs, in seconds (the least disturbed by other load)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    quick = "--quick" in sys.argv
    repeats = 2 if quick else 5
    rng = random.Random(7)
    old = chinese(rng, CHARS)
    cases = {"1 edit": edit(rng, old, 1), "100 edits": edit(rng, old, 100),
             "2000 edits": edit(rng, old, 2000), "rewritten": chinese(rng, CHARS)}
    print(f"text diff, {CHARS} characters, best of {repeats} (speed-up = difflib opcodes / ours; difflib run once)")
    for name, new in cases.items():
        base = best_of(lambda n=new: difflib.SequenceMatcher(None, old, n, autojunk=False).get_opcodes(), 1)
        ours = best_of(lambda n=new: textdiff.side_by_side(old, n), repeats)
        print(f"  {name:>11}: difflib {base * 1000:8.1f} ms | side_by_side {ours * 1000:8.1f} ms "
              f"({base / ours:6.0f}x faster)")

    text = big_srt(SRT_CUES)
    base = best_of(lambda: TIMECODE_RE.findall(text), repeats)
    full = best_of(lambda: timeline_segments(parse_srt(text)), repeats)
    lines = text.count("\n") + 1
    print(f"SRT, {lines} lines, best of {repeats}: regex floor {base * 1000:.1f} ms | parse_srt + "
          f"timeline_segments {full * 1000:.1f} ms ({full / base:.1f}x the floor)")
    samples = [best_of(lambda: parse_srt(text), 1) for _ in range(repeats)]
    print(f"  parse_srt alone: median {statistics.median(samples) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
