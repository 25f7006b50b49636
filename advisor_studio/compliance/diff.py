"""HTML helpers of the review page (pure logic, no Flask): a side-by-side, character-level diff
of two texts, and the highlighting of scan findings in a text.

Chinese has no spaces between words, so the unit of comparison is the character. A plain
``difflib.SequenceMatcher`` over two 20,000-character texts is quadratic in the worst case, so
the work is bounded in three steps: lines are matched first; inside a changed block of lines
the common prefix and suffix are trimmed; what remains is matched sentence by sentence, and
only pairs of changed sentences small enough (``CHAR_BUDGET``) are compared character by
character. Anything larger is shown as deleted on the left and inserted on the right, which is
still correct, only less precise.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from typing import NamedTuple

from markupsafe import Markup, escape

# len(a) * len(b) above which two strings are not compared character by character.
CHAR_BUDGET = 400_000
# Same bound for the sentence-level and line-level matchers (they compare lists of units).
UNIT_BUDGET = 4_000_000
# Total character comparisons allowed for one pair of texts (keeps a 20,000-character diff well
# under a second even when every sentence changed).
TOTAL_CHAR_BUDGET = 3_000_000

_SENTENCE_RE = re.compile(r"[^。！？!?；;，,\n]*(?:[。！？!?；;，,\n]|$)")

EQUAL, DELETE, INSERT = "equal", "delete", "insert"


class DiffRow(NamedTuple):
    """One line of the side-by-side view: escaped HTML of the old and the new line."""

    left: Markup
    right: Markup
    changed: bool


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_RE.findall(text) if s]


def _matcher_opcodes(a, b) -> list[tuple[str, int, int, int, int]]:
    return SequenceMatcher(None, a, b, autojunk=False).get_opcodes()


def char_opcodes(a: str, b: str) -> list[tuple[str, int, int, int, int]]:
    """Opcodes ('equal' / 'delete' / 'insert' / 'replace', i1, i2, j1, j2) over characters of a and b."""
    ops: list[tuple[str, int, int, int, int]] = []
    _diff_chars(a, b, 0, 0, ops, sentences=True, budget=[TOTAL_CHAR_BUDGET])
    return _merge(ops)


def _diff_chars(a: str, b: str, ia: int, ib: int, ops: list, *, sentences: bool, budget: list[int]) -> None:
    """Append opcodes for a vs b, whose positions start at ia / ib in the whole texts."""
    if a == b:
        if a:
            ops.append((EQUAL, ia, ia + len(a), ib, ib + len(b)))
        return
    # Trim the common prefix and suffix: edits usually touch a small part of a script.
    prefix = 0
    limit = min(len(a), len(b))
    while prefix < limit and a[prefix] == b[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and a[-1 - suffix] == b[-1 - suffix]:
        suffix += 1
    if prefix:
        ops.append((EQUAL, ia, ia + prefix, ib, ib + prefix))
    mid_a = a[prefix:len(a) - suffix]
    mid_b = b[prefix:len(b) - suffix]
    sa, sb = ia + prefix, ib + prefix
    if not mid_a or not mid_b:
        if mid_a:
            ops.append((DELETE, sa, sa + len(mid_a), sb, sb))
        if mid_b:
            ops.append((INSERT, sa, sa, sb, sb + len(mid_b)))
    elif len(mid_a) * len(mid_b) <= min(CHAR_BUDGET, budget[0]):
        budget[0] -= len(mid_a) * len(mid_b)
        for tag, i1, i2, j1, j2 in _matcher_opcodes(mid_a, mid_b):
            ops.append((tag, sa + i1, sa + i2, sb + j1, sb + j2))
    else:
        units_a, units_b = (_sentences(mid_a), _sentences(mid_b)) if sentences else ([], [])
        if sentences and len(units_a) > 1 and len(units_b) > 1 and len(units_a) * len(units_b) <= UNIT_BUDGET:
            _diff_units(units_a, units_b, sa, sb, ops, budget)
        else:
            ops.append((DELETE, sa, sa + len(mid_a), sb, sb))
            ops.append((INSERT, sa + len(mid_a), sa + len(mid_a), sb, sb + len(mid_b)))
    if suffix:
        ops.append((EQUAL, ia + len(a) - suffix, ia + len(a), ib + len(b) - suffix, ib + len(b)))


def _diff_units(units_a: list[str], units_b: list[str], ia: int, ib: int, ops: list, budget: list[int]) -> None:
    """Match whole sentences, then compare the changed runs of sentences character by character."""
    starts_a = _starts(units_a, ia)
    starts_b = _starts(units_b, ib)
    for tag, i1, i2, j1, j2 in _matcher_opcodes(units_a, units_b):
        text_a = "".join(units_a[i1:i2])
        text_b = "".join(units_b[j1:j2])
        pos_a, pos_b = starts_a[i1], starts_b[j1]
        if tag == EQUAL:
            ops.append((EQUAL, pos_a, pos_a + len(text_a), pos_b, pos_b + len(text_b)))
        else:
            _diff_chars(text_a, text_b, pos_a, pos_b, ops, sentences=False, budget=budget)


def _starts(units: list[str], offset: int) -> list[int]:
    starts = [offset]
    for unit in units:
        starts.append(starts[-1] + len(unit))
    return starts


def _merge(ops: list) -> list[tuple[str, int, int, int, int]]:
    """Drop empty opcodes and join neighbours of the same kind."""
    merged: list[list] = []
    for tag, i1, i2, j1, j2 in ops:
        if i1 == i2 and j1 == j2:
            continue
        if merged and merged[-1][0] == tag and merged[-1][2] == i1 and merged[-1][4] == j1:
            merged[-1][2], merged[-1][4] = i2, j2
        else:
            merged.append([tag, i1, i2, j1, j2])
    return [tuple(m) for m in merged]


_WRAP = {"del": Markup("<del>{}</del>"), "ins": Markup("<ins>{}</ins>")}
_PLAIN = Markup('<span data-o="{}">{}</span>')
_MARK = Markup('<mark class="finding finding-{}" data-o="{}" title="{}">{}</mark>')


def _render_side(text: str, spans: list[tuple[int, int, bool]], tag: str) -> list[Markup]:
    """Split a block's (start, end, changed) spans into escaped HTML lines."""
    lines: list[list[Markup]] = [[]]
    for start, end, changed in spans:
        for k, piece in enumerate(text[start:end].split("\n")):
            if k:
                lines.append([])
            if piece:
                lines[-1].append(_WRAP[tag].format(piece) if changed else escape(piece))
    return [Markup("").join(parts) for parts in lines]


def _block_rows(a_lines: list[str], b_lines: list[str]) -> list[DiffRow]:
    """Rows for a changed block of lines, paired in order; the shorter side is padded."""
    a, b = "\n".join(a_lines), "\n".join(b_lines)
    spans_a: list[tuple[int, int, bool]] = []
    spans_b: list[tuple[int, int, bool]] = []
    for tag, i1, i2, j1, j2 in char_opcodes(a, b):
        if i2 > i1:
            spans_a.append((i1, i2, tag != EQUAL))
        if j2 > j1:
            spans_b.append((j1, j2, tag != EQUAL))
    left = _render_side(a, spans_a, "del") if a_lines else []
    right = _render_side(b, spans_b, "ins") if b_lines else []
    empty = Markup("")
    return [DiffRow(left[k] if k < len(left) else empty, right[k] if k < len(right) else empty, True)
            for k in range(max(len(left), len(right)))]


def side_by_side(old: str, new: str) -> list[DiffRow]:
    """Rows of (left_html, right_html, changed): old on the left with <del>, new on the right with <ins>.

    Every piece of text is escaped; the only markup added is ``<del>`` and ``<ins>``.
    """
    old_lines = (old or "").split("\n")
    new_lines = (new or "").split("\n")
    if len(old_lines) * len(new_lines) > UNIT_BUDGET:
        return _block_rows(old_lines, new_lines)
    rows: list[DiffRow] = []
    for tag, i1, i2, j1, j2 in _matcher_opcodes(old_lines, new_lines):
        if tag == EQUAL:
            for line in old_lines[i1:i2]:
                html = escape(line)
                rows.append(DiffRow(html, html, False))
        else:
            rows.extend(_block_rows(old_lines[i1:i2], new_lines[j1:j2]))
    return rows


def has_changes(rows: list[DiffRow]) -> bool:
    """True when any row differs."""
    return any(row.changed for row in rows)


# --- findings ----------------------------------------------------------------------------------


def _finding_title(finding: dict) -> str:
    if finding.get("title"):  # localized by compliance.reasons.with_titles
        return str(finding["title"])
    parts = [str(finding.get(k) or "") for k in ("rule", "category", "severity")]
    explanation = finding.get("note") or finding.get("phrase") or ""
    return " / ".join(p for p in [*parts, str(explanation)] if p)


def usable_findings(text: str, findings: list[dict]) -> list[dict]:
    """Findings whose span lies in ``text`` and still covers the text it reported (others are listed only)."""
    usable = []
    for finding in findings or []:
        start, end = finding.get("start"), finding.get("end")
        if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start < end <= len(text):
            continue
        if "text" in finding and text[start:end] != finding["text"]:
            continue
        usable.append(finding)
    return usable


def highlight(text: str, findings: list[dict], *, base: int = 0) -> Markup:
    """Escaped ``text`` cut into ``<span data-o>`` / ``<mark class="finding-...">`` pieces.

    ``findings`` carry offsets into a larger text of which ``text`` starts at ``base`` (0: the
    text itself); ``data-o`` is each piece's offset in that larger text, so the page's script can
    turn a selection back into character offsets. Blocking findings win over warnings where they
    overlap; a piece covered by several findings names them all in its title.
    """
    end_of_text = base + len(text)
    clipped = []
    for finding in findings or []:
        start, end = max(finding["start"], base), min(finding["end"], end_of_text)
        if start < end:
            clipped.append((start, end, finding))
    cuts = sorted({base, end_of_text, *(s for s, _e, _f in clipped), *(e for _s, e, _f in clipped)})
    pieces: list[Markup] = []
    for p, q in zip(cuts, cuts[1:], strict=False):
        piece = text[p - base:q - base]
        covering = [f for s, e, f in clipped if s <= p and q <= e]
        if not covering:
            pieces.append(_PLAIN.format(p, piece))
            continue
        severity = "block" if any(f.get("severity") == "block" for f in covering) else "warn"
        title = "\n".join(_finding_title(f) for f in covering)
        pieces.append(_MARK.format(severity, p, title, piece))
    return Markup("").join(pieces)
