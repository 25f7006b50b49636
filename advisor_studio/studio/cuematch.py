"""Where in the approved script each subtitle cue's words are: the one rule behind the "not in the
script" flag compliance sees (services.subtitle_lines_not_in_script) and the script column of the
package page's cue table."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

from advisor_studio.compliance.scanner.normalize import normalize_phrase, strict_view

MATCH = "match"
MISSING = "missing"  # flagged for the reviewer: subtitles should say what the pre-approved script says
NO_WORDS = "no_words"  # punctuation only: nothing to look for, never flagged
CONTEXT_CHARS = 18  # script shown on each side of a match


@dataclass(frozen=True)
class CueMatch:
    """One cue's place in the script; lines are 1-based, the texts are the script's own words."""

    status: str
    first_line: int = 0
    last_line: int = 0
    before: str = ""
    hit: str = ""
    after: str = ""


def match_cues(texts: list[str], script: str) -> list[CueMatch]:
    """For each cue text, where its letters and digits occur in ``script`` (normalized as the lexicon
    normalizes text); the first place after the previous cue's match is preferred, so a phrase said
    twice is shown where the video says it."""
    view = strict_view(script)
    newlines = [i for i, ch in enumerate(script) if ch == "\n"]
    matches: list[CueMatch] = []
    cursor = 0
    for text in texts:
        key = normalize_phrase(text)
        if not key:
            matches.append(CueMatch(NO_WORDS))
            continue
        i = view.text.find(key, cursor)
        if i < 0:
            i = view.text.find(key)
        if i < 0:
            matches.append(CueMatch(MISSING))
            continue
        cursor = i + len(key)
        start, end = view.span(i, i + len(key))
        first, last = bisect_left(newlines, start), bisect_left(newlines, end - 1)  # 0-based line numbers
        line_begin = newlines[first - 1] + 1 if first else 0
        line_end = newlines[last] if last < len(newlines) else len(script)
        before = script[line_begin:start].lstrip()
        after = script[end:line_end].rstrip()
        if len(before) > CONTEXT_CHARS:
            before = "…" + before[-CONTEXT_CHARS:]
        if len(after) > CONTEXT_CHARS:
            after = after[:CONTEXT_CHARS] + "…"
        matches.append(CueMatch(MATCH, first + 1, last + 1, before, script[start:end], after))
    return matches
