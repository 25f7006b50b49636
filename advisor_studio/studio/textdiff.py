"""The side-by-side character diff of two texts (pure logic, no Flask, no database): the one diff
of the platform. Revisions are the studio's, so the studio owns it; the compliance review page
imports it to show what changed since the previous round. Every piece of text is escaped here
and only our own ``<del>`` and ``<ins>`` tags are added. (Findings are highlighted by
``compliance.highlight``.)

The diff works per character (Chinese has no spaces to split words on) with
``difflib.SequenceMatcher(autojunk=False)``. A plain character SequenceMatcher over two
20,000-character texts takes seconds, so the work is narrowed first: the common prefix and
suffix are cut off, then lines, sentences and clauses are matched as whole tokens, and only
the blocks that still differ are compared character by character. A block that stays too large
even at clause level (a rewritten text) is shown as wholly replaced.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from itertools import zip_longest
from typing import NamedTuple

from markupsafe import Markup, escape

# Character comparison is used directly when len(a) * len(b) is at most this (about 20 ms).
CHAR_DIFF_LIMIT = 400_000
# Line matching is skipped (the texts are one block) when len(lines a) * len(lines b) exceeds this.
LINE_MATCH_LIMIT = 4_000_000
NEWLINE_MARK = "↵"
_SPLITTERS = (
    re.compile(r"[^\n]*\n|[^\n]+"),  # lines
    re.compile(r"[^。！？!?；;…\n]*[。！？!?；;…\n]+|[^。！？!?；;…\n]+"),  # sentences
    re.compile(r"[^，,、：:\s]*[，,、：:\s]+|[^，,、：:\s]+"),  # clauses
)

# One piece of one side: (text, changed).
Piece = tuple[str, bool]


def _common_prefix(a: str, b: str) -> int:
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:  # binary search on slices: C-speed comparisons instead of a Python loop per char
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: str, b: str, limit: int) -> int:
    lo, hi = 0, min(len(a), len(b)) - limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[len(a) - mid:] == b[len(b) - mid:]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _char_blocks(a: str, b: str, level: int) -> list[tuple[str, str, str]]:
    """Opcodes as (tag, old_text, new_text) with tag in equal/delete/insert/replace."""
    if a == b:
        return [("equal", a, b)] if a else []
    if not a:
        return [("insert", "", b)]
    if not b:
        return [("delete", a, "")]
    if len(a) * len(b) <= CHAR_DIFF_LIMIT:
        matcher = SequenceMatcher(None, a, b, autojunk=False)
        return [(tag, a[i1:i2], b[j1:j2]) for tag, i1, i2, j1, j2 in matcher.get_opcodes()]
    for depth in range(level, len(_SPLITTERS)):
        ta, tb = _SPLITTERS[depth].findall(a), _SPLITTERS[depth].findall(b)
        if len(ta) > 1 or len(tb) > 1:
            return _token_blocks(ta, tb, depth + 1)
    return [("replace", a, b)]  # too large to compare character by character: shown as rewritten


def _token_blocks(ta: list[str], tb: list[str], next_level: int) -> list[tuple[str, str, str]]:
    blocks: list[tuple[str, str, str]] = []
    matcher = SequenceMatcher(None, ta, tb, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        old, new = "".join(ta[i1:i2]), "".join(tb[j1:j2])
        if tag == "replace":
            blocks.extend(_diff(old, new, next_level))
        else:
            blocks.append((tag, old, new))
    return blocks


def _diff(a: str, b: str, level: int = 0) -> list[tuple[str, str, str]]:
    head = _common_prefix(a, b)
    tail = _common_suffix(a, b, head)
    blocks: list[tuple[str, str, str]] = []
    if head:
        blocks.append(("equal", a[:head], b[:head]))
    blocks.extend(_char_blocks(a[head:len(a) - tail], b[head:len(b) - tail], level))
    if tail:
        blocks.append(("equal", a[len(a) - tail:], b[len(b) - tail:]))
    return blocks


def char_opcodes(old: str, new: str) -> list[tuple[str, int, int, int, int]]:
    """Opcodes (tag, i1, i2, j1, j2) over the characters of ``old`` and ``new``, as difflib gives them:
    tag is equal / delete / insert / replace and the spans cover both texts exactly, in order."""
    ops: list[tuple[str, int, int, int, int]] = []
    i = j = 0
    for tag, a, b in _diff(old or "", new or ""):
        ops.append((tag, i, i + len(a), j, j + len(b)))
        i, j = i + len(a), j + len(b)
    return ops


def char_diff(old: str, new: str) -> tuple[list[Piece], list[Piece]]:
    """The two sides of a character diff as pieces of (text, changed)."""
    left: list[Piece] = []
    right: list[Piece] = []
    for tag, a, b in _diff(old or "", new or ""):
        if a:
            left.append((a, tag != "equal"))
        if b:
            right.append((b, tag != "equal"))
    return left, right


def _lines(pieces: list[Piece], tag: str) -> list[Markup]:
    """Split pieces into lines of escaped HTML, changed text wrapped in ``tag`` (del or ins)."""
    wrap = Markup("<del>{0}</del>") if tag == "del" else Markup("<ins>{0}</ins>")
    newline = Markup('<del class="diff-nl">{0}</del>') if tag == "del" else Markup('<ins class="diff-nl">{0}</ins>')
    lines: list[Markup] = []
    current: list[Markup] = []
    for text, changed in pieces:
        parts = text.split("\n")
        for n, part in enumerate(parts):
            if part:
                current.append(wrap.format(part) if changed else escape(part))
            if n < len(parts) - 1:  # a line break ends this line; a changed one is made visible
                if changed:
                    current.append(newline.format(NEWLINE_MARK))
                lines.append(Markup("").join(current))
                current = []
    lines.append(Markup("").join(current))
    return lines


class DiffRow(NamedTuple):
    """One line of the side-by-side view: escaped HTML of the old and the new line, and whether
    it belongs to a changed block (a line on one side only, or with deletions or insertions)."""

    left: Markup
    right: Markup
    changed: bool


def _block_rows(old: str, new: str, has_old: bool, has_new: bool) -> list[DiffRow]:
    left, right = char_diff(old, new)
    left_lines = _lines(left, "del") if has_old else []
    right_lines = _lines(right, "ins") if has_new else []
    return [DiffRow(a, b, True) for a, b in zip_longest(left_lines, right_lines, fillvalue=Markup(""))]


def side_by_side(old: str, new: str) -> list[DiffRow]:
    """Rows of old line / new line HTML: deletions in ``<del>``, additions in ``<ins>``.

    Lines are aligned by a line-level match first; inside changed blocks the comparison is per
    character. A side with no counterpart line is an empty Markup. Two texts with very many lines
    each (LINE_MATCH_LIMIT) are compared as one block, which keeps the line match from going
    quadratic on repetitive text.
    """
    old, new = (old or "").replace("\r\n", "\n"), (new or "").replace("\r\n", "\n")
    if not old and not new:
        return []
    ta, tb = old.split("\n"), new.split("\n")
    if old != new and len(ta) * len(tb) > LINE_MATCH_LIMIT:
        return _block_rows(old, new, True, True)
    rows: list[DiffRow] = []
    matcher = SequenceMatcher(None, ta, tb, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            rows.extend(DiffRow(escape(x), escape(x), False) for x in ta[i1:i2])
            continue
        rows.extend(_block_rows("\n".join(ta[i1:i2]), "\n".join(tb[j1:j2]), i2 > i1, j2 > j1))
    return rows


def has_changes(rows: list[DiffRow]) -> bool:
    """True when any row differs."""
    return any(row.changed for row in rows)


def diff_counts(old: str, new: str) -> dict[str, int]:
    """How many characters were deleted and inserted."""
    left, right = char_diff(old or "", new or "")
    return {"deleted": sum(len(t) for t, changed in left if changed),
            "inserted": sum(len(t) for t, changed in right if changed)}
