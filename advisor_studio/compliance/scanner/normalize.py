"""Normalized views of a text for the compliance scanner, each with a map back to original offsets.

Pure logic: no Flask and no database.

* The *strict* view (used for lexicon phrases, stock names and trading verbs) applies NFKC,
  traditional-to-simplified conversion (character level, OpenCC tables), lower-casing, and drops
  every character that is not a letter or a digit (whitespace, punctuation, symbols, emoji,
  control, format and zero-width characters, combining marks), so "稳 赚", "稳-赚", "穩賺" and
  "稳\\u200b赚" all read "稳赚". The *soft* view (used for the numeric rules: security codes,
  SAC numbers, percentages) applies the same conversions but keeps case, whitespace and
  punctuation and only drops invisible characters.
* Conversions that change length (a compatibility character such as "ﬁ" or "⑩" expanding to
  several characters) are recorded as segments whose characters all map back to the one
  original character, so offsets stay exact.
* ``normalize_phrase`` is the strict function: lexicon phrases are keyed by it, so a phrase and
  the text it is found in are normalized the same way. See docs/notes/scanner.md.
"""

from __future__ import annotations

import importlib.util
import itertools
import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_EXPANSION = "\uff5a"  # "ｚ": always translated to "z", so in translated text it marks an expansion
_SIGNIFICANT_PUNCT = frozenset("%$.-")  # full-width forms of these are converted in the soft view
_SOFT_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Mn", "Me"})


def _load_t2s() -> dict[str, str]:
    """Return a character-level traditional-to-simplified map built from OpenCC's tables."""
    spec = importlib.util.find_spec("opencc")
    if spec is None or not spec.submodule_search_locations:
        return {}
    folder = Path(next(iter(spec.submodule_search_locations))) / "dictionary"

    def read(name: str) -> dict[str, str]:
        table: dict[str, str] = {}
        path = folder / name
        if not path.is_file():
            return table
        for line in path.read_text(encoding="utf-8").splitlines():
            key, _, values = line.partition("\t")
            value = values.split(" ")[0]
            if len(key) == 1 and len(value) == 1 and key != value:
                table[key] = value
        return table

    chars = read("TSCharacters.txt")
    variants = read("TWVariantsRev.txt") | read("HKVariantsRev.txt")
    t2s = dict(chars)
    for key, standard in variants.items():
        # Only follow a regional variant when it leads to a simplified character.
        if key not in t2s and standard in chars and chars[standard] != key:
            t2s[key] = chars[standard]
    return t2s


def _class_body(code_points: list[int]) -> str:
    """Render sorted code points as a regex character-class body of \\U escapes."""
    ranges: list[tuple[int, int]] = []
    for cp in code_points:
        if ranges and ranges[-1][1] + 1 == cp:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    return "".join(f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges)


@dataclass(frozen=True, slots=True)
class _Tables:
    translate: dict[int, str]
    needs_translate: re.Pattern[str]
    strict_drop: re.Pattern[str]
    soft_drop: re.Pattern[str]
    strict_split: re.Pattern[str]
    soft_split: re.Pattern[str]
    strict_expansions: dict[str, str]
    soft_expansions: dict[str, str]


def _soft_invisible(ch: str) -> bool:
    """Return whether the soft view drops ``ch`` (control, format, unassigned, combining mark)."""
    return unicodedata.category(ch) in _SOFT_INVISIBLE and not ch.isspace()


@cache
def _tables() -> _Tables:
    """Build the per-character tables once per process (a few tenths of a second).

    A "word character" is one for which ``str.isalnum()`` holds (letters and digits, the same set
    as the regex class ``\\w`` minus "_"); everything else is a filler in the strict view.
    """
    t2s = _load_t2s()
    nfkc = unicodedata.normalize
    translate: dict[int, str] = {}
    strict_exp: dict[str, str] = {}
    soft_exp: dict[str, str] = {}
    soft_bmp: list[int] = []
    strict_bmp: list[int] = []
    # Planes 4-13 are unassigned and 15-16 private use: no word characters, nothing to convert.
    for cp in itertools.chain(range(0, 0x40000), range(0xE0000, 0xF0000)):
        ch = chr(cp)
        if not ch.isalnum():
            if cp < 0x10000:
                strict_bmp.append(cp)
                if _soft_invisible(ch):
                    soft_bmp.append(cp)
            mapped = nfkc("NFKC", ch)
            if mapped != ch and mapped in _SIGNIFICANT_PUNCT:
                translate[cp] = mapped  # a filler stays a filler; the soft view wants these signs
            continue
        mapped = nfkc("NFKC", ch)
        mapped = t2s.get(mapped, mapped) if len(mapped) == 1 else "".join(t2s.get(c, c) for c in mapped)
        if mapped == ch and (cp < 0x130 or len(ch.lower()) == 1):
            continue
        if len(mapped) == 1 and len(mapped.lower()) == 1 and mapped.isalnum() and mapped != _EXPANSION:
            translate[cp] = mapped
        else:
            translate[cp] = _EXPANSION
            soft_exp[ch] = "".join(c for c in mapped if not _soft_invisible(c))
            strict_exp[ch] = "".join(c for c in mapped.lower() if c.isalnum())
    if translate.get(ord(_EXPANSION)) == _EXPANSION or ord(_EXPANSION) not in translate:
        raise RuntimeError("the expansion marker must always be translated away")  # pragma: no cover
    marker = re.escape(_EXPANSION)
    # Regex classes with many astral ranges are slow in `re` (they are checked range by range), so
    # any astral character triggers the translation, and the soft view matches every astral
    # character as a candidate and lets _build_view decide in Python (emoji and rare CJK only).
    return _Tables(
        translate=translate,
        needs_translate=re.compile(f"[{_class_body([cp for cp in sorted(translate) if cp < 0x10000])}]"
                                   "|[\\U00010000-\\U0010ffff]"),
        strict_drop=re.compile(rf"[\W_]+|{marker}"),
        soft_drop=re.compile(f"[{_class_body(soft_bmp)}]+|[\\U00010000-\\U0010ffff]|{marker}"),
        # Single-class splitters for the common case (no expansion marker, no astral characters).
        strict_split=re.compile(f"([{_class_body(strict_bmp)}]+)"),
        soft_split=re.compile(f"([{_class_body(soft_bmp)}]+)"),
        strict_expansions=strict_exp,
        soft_expansions=soft_exp,
    )


class View:
    """A normalized text plus a piecewise map from its indexes back to original offsets."""

    __slots__ = ("text", "_norm_starts", "_orig_starts", "_steps")

    def __init__(self, text: str, norm_starts: list[int], orig_starts: list[int], steps: list[int]):
        self.text = text
        self._norm_starts = norm_starts
        self._orig_starts = orig_starts
        self._steps = steps

    def orig(self, i: int) -> int:
        """Return the original offset of the character that produced normalized index ``i``."""
        k = bisect_right(self._norm_starts, i) - 1
        return self._orig_starts[k] + self._steps[k] * (i - self._norm_starts[k])

    def span(self, i: int, j: int) -> tuple[int, int]:
        """Map the normalized slice ``[i, j)`` (non-empty) to its original ``(start, end)``."""
        return self.orig(i), self.orig(j - 1) + 1

    def to_norm(self, offset: int) -> int:
        """Return the first normalized index whose original offset is at least ``offset``."""
        k = bisect_right(self._orig_starts, offset) - 1
        seg_norm = self._norm_starts[k]
        nxt = self._norm_starts[k + 1] if k + 1 < len(self._norm_starts) else len(self.text)
        if self._steps[k]:
            return min(seg_norm + offset - self._orig_starts[k], nxt)
        return seg_norm if offset == self._orig_starts[k] else nxt


def _build_view(base: str, original: str, drop: re.Pattern[str], expansions: dict[str, str],
                keep_astral: bool = False) -> View:
    """Drop what ``drop`` matches in ``base`` (1:1 with ``original``) and expand marked characters.

    With ``keep_astral`` a single astral match is only dropped when it is soft-invisible.
    """
    pieces: list[str] = []
    norm_starts, orig_starts, steps = [0], [0], [1]
    pos = npos = 0
    for match in drop.finditer(base):
        s, e = match.span()
        first = base[s]
        if keep_astral and first > "\uffff" and not _soft_invisible(first):
            continue
        if s > pos:
            pieces.append(base[pos:s])
            npos += s - pos
        if first == _EXPANSION:
            expanded = expansions.get(original[s], "")
            if expanded:
                pieces.append(expanded)
                norm_starts.append(npos)
                orig_starts.append(s)
                steps.append(0)
                npos += len(expanded)
        pos = e
        norm_starts.append(npos)
        orig_starts.append(e)
        steps.append(1)
    if pos == 0 and not pieces:
        return View(base, norm_starts, orig_starts, steps)
    pieces.append(base[pos:])
    return View("".join(pieces), norm_starts, orig_starts, steps)


def _split_view(base: str, splitter: re.Pattern[str]) -> View:
    """Fast path of _build_view when nothing expands: ``splitter`` captures the runs to drop."""
    parts = splitter.split(base)  # kept, dropped, kept, dropped, ..., kept
    if len(parts) == 1:
        return View(base, [0], [0], [1])
    kept = parts[0::2]
    ends = list(itertools.accumulate(map(len, parts)))
    orig_starts = [0, *ends[1::2]]
    norm_starts = [0, *itertools.accumulate(map(len, kept[:-1]))]
    return View("".join(kept), norm_starts, orig_starts, [1] * len(norm_starts))


def _translated(text: str) -> str:
    """Return ``text`` with the 1:1 conversions applied and expansion characters marked."""
    tables = _tables()
    return text.translate(tables.translate) if tables.needs_translate.search(text) else text


def _simple(base: str) -> bool:
    """Return whether ``base`` has no expansion marker and no astral character (the fast path)."""
    return _EXPANSION not in base and (not base or max(base) <= "\uffff")


def _strict_view(text: str, base: str | None = None, simple: bool | None = None) -> View:
    """Return the strict view: converted, lower-cased, letters and digits only."""
    tables = _tables()
    base = _translated(text) if base is None else base
    if _simple(base) if simple is None else simple:
        return _split_view(base.lower(), tables.strict_split)
    return _build_view(base.lower(), text, tables.strict_drop, tables.strict_expansions)


def views(text: str) -> tuple[View, View]:
    """Return the (strict, soft) normalized views of ``text``."""
    tables = _tables()
    base = _translated(text)
    simple = _simple(base)
    if simple:
        soft = _split_view(base, tables.soft_split)
    else:
        soft = _build_view(base, text, tables.soft_drop, tables.soft_expansions, keep_astral=True)
    return _strict_view(text, base, simple), soft


def normalize_phrase(phrase: str) -> str:
    """Return the strict normalized form of ``phrase`` (the key it is matched by)."""
    return _strict_view(phrase).text


def char_class(ch: str) -> str:
    """Return "a" for an ASCII letter, "d" for an ASCII digit, "" otherwise."""
    if ch.isascii():
        if ch.isalpha():
            return "a"
        if ch.isdigit():
            return "d"
    return ""


def strict_view(text: str) -> View:
    """Return the strict normalized view of ``text``: ``.text`` is normalize_phrase(text) and ``.span()``
    maps a slice of it back to offsets in ``text`` (to show where a normalized match came from)."""
    return _strict_view(text)
