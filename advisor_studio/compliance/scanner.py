"""Compliance scanner for advisor scripts, captions and subtitles.

Pure logic: no Flask and no database. A ``Scanner`` is compiled once from lexicon entries and is
immutable and reusable; ``Scanner.scan()`` returns findings whose ``start``/``end`` are character
offsets into the ORIGINAL text, with ``text == original[start:end]``.

How matching works:

* Two normalized views of the text are built, each with a map back to original offsets.
  The *strict* view (used for lexicon phrases, stock names and trading verbs) applies NFKC,
  traditional-to-simplified conversion (character level, OpenCC tables), lower-casing, and drops
  every character that is not a letter or a digit (whitespace, punctuation, symbols, emoji,
  control, format and zero-width characters, combining marks), so "稳 赚", "稳-赚", "穩賺" and
  "稳\\u200b赚" all read "稳赚". The *soft* view (used for the numeric rules: security codes,
  SAC numbers, percentages) applies the same conversions but keeps case, whitespace and
  punctuation and only drops invisible characters.
* Conversions that change length (a compatibility character such as "ﬁ" or "⑩" expanding to
  several characters) are recorded as segments whose characters all map back to the one
  original character, so offsets stay exact.
* Phrases are normalized with the same strict function and compiled into one Aho-Corasick
  automaton (pyahocorasick) that reports overlapping matches in a single pass.
* Phrases whose normalized form starts (ends) with an ASCII letter or digit must not continue a
  word in the original text: the visible character before (after) the match must not be of the
  same class, so "no risk" does not fire inside "casino risky" and "buy" not inside "buyer".
* A forbidden match is dropped when an allow-list match (or a required-phrase match) covers it,
  e.g. "不保本" covers "保本". A forbidden match is also dropped when a longer forbidden match of
  at least the same severity covers it ("稳赚不赔" reports once, not also "稳赚").

Rules besides phrases (rule ids in ``Finding.rule``): ``forbidden_phrase``, ``disclosure_missing``
(a required group with no wording present; start=end=0, text=""), ``sac_missing``,
``sac_mismatch``, ``sac_malformed``, ``advisor_name_missing``, ``stock_call`` (a security code,
ticker or well-known name within ``window`` strict characters of a buy/sell/hold verb, in the same
sentence) and ``return_percentage`` (a percentage or multiple next to a return word; blocking when
a promise word is in the same clause). See docs/notes/scanner.md.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import itertools
import os
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import ahocorasick

from advisor_studio.platforms import PLATFORMS as _PLATFORMS

PLATFORMS = frozenset(_PLATFORMS)  # the one list (advisor_studio.platforms), as a set for membership
BLOCK = "block"
WARN = "warn"
SEVERITIES = (BLOCK, WARN)
FORBIDDEN = "forbidden"
REQUIRED = "required"
ALLOW = "allow"
KINDS = (FORBIDDEN, REQUIRED)
DEFAULT_CATEGORIES = {FORBIDDEN: "general", REQUIRED: "disclosure"}
MAX_PHRASE_LENGTH = 200
MAX_NOTE_LENGTH = 500
MAX_SUGGESTION_LENGTH = 500
DEFAULT_WINDOW = 12
CSV_COLUMNS = ("phrase", "kind", "severity", "note")
CSV_OPTIONAL_COLUMNS = ("category", "platforms", "group", "suggestion")
DEFAULT_LEXICON_PATH = Path(__file__).with_name("default_lexicon.csv")

_CATEGORY_RE = re.compile(r"[a-z][a-z0-9_]{0,39}")
_GROUP_RE = re.compile(r"[A-Za-z0-9_.\-]{1,60}")

# ---------------------------------------------------------------------------------------------
# Data model
# ---------------------------------------------------------------------------------------------


def _entry_problem(phrase: str, kind: str, severity: str, category: str, platforms: Iterable[str],
                   group: str) -> str | None:
    """Return why a lexicon entry is invalid, or None when it is fine."""
    if not phrase or not phrase.strip():
        return "empty phrase"
    if len(phrase) > MAX_PHRASE_LENGTH:
        return f"phrase longer than {MAX_PHRASE_LENGTH} characters ({len(phrase)})"
    if kind not in KINDS and kind != ALLOW:
        return f"unknown kind {kind!r} (expected forbidden, required or allow)"
    if kind != ALLOW and severity not in SEVERITIES:
        return f"unknown severity {severity!r} (expected block or warn)"
    if kind == ALLOW and severity and severity not in SEVERITIES:
        return f"unknown severity {severity!r} (expected block, warn or empty for allow)"
    if category and not _CATEGORY_RE.fullmatch(category):
        return f"bad category {category!r} (lower-case letters, digits and _)"
    unknown = sorted(set(platforms) - PLATFORMS)
    if unknown:
        return f"unknown platform {unknown[0]!r} (expected one of {', '.join(sorted(PLATFORMS))})"
    if group and kind != REQUIRED:
        return "group is only allowed on required rows"
    if group and not _GROUP_RE.fullmatch(group):
        return f"bad group {group!r} (letters, digits, _ . -)"
    if not normalize_phrase(phrase):
        return "phrase has no letters or digits after normalization"
    return None


@dataclass(frozen=True, slots=True)
class LexiconEntry:
    """A forbidden or required phrase; empty ``platforms`` means every platform."""

    phrase: str
    kind: str
    severity: str
    category: str = ""
    note: str = ""
    platforms: frozenset[str] = frozenset()
    group: str = ""
    suggestion: str = ""  # a compliant rewording shown with the finding, if there is one

    def __post_init__(self) -> None:
        object.__setattr__(self, "platforms", frozenset(self.platforms))
        problem = _entry_problem(self.phrase, self.kind, self.severity, self.category, self.platforms,
                                 self.group)
        if problem is None and len(self.suggestion) > MAX_SUGGESTION_LENGTH:
            problem = f"suggestion longer than {MAX_SUGGESTION_LENGTH} characters"
        if problem is None and self.kind == ALLOW:
            problem = "kind allow belongs in an AllowEntry"
        if problem:
            raise ValueError(f"invalid lexicon entry {self.phrase!r}: {problem}")
        if not self.category:
            object.__setattr__(self, "category", DEFAULT_CATEGORIES[self.kind])

    def applies_to(self, platform: str | None) -> bool:
        """Return whether this entry is in force for ``platform`` (None means all platforms)."""
        return platform is None or not self.platforms or platform in self.platforms


@dataclass(frozen=True, slots=True)
class AllowEntry:
    """An exception context: forbidden matches lying inside an occurrence of it are ignored."""

    phrase: str
    note: str = ""
    platforms: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "platforms", frozenset(self.platforms))
        problem = _entry_problem(self.phrase, ALLOW, "", "", self.platforms, "")
        if problem:
            raise ValueError(f"invalid allow entry {self.phrase!r}: {problem}")

    def applies_to(self, platform: str | None) -> bool:
        """Return whether this exception holds on ``platform``; scoped ones never hold for None."""
        return not self.platforms or platform in self.platforms


@dataclass(frozen=True, slots=True)
class Finding:
    """One lexicon or rule hit; ``start``/``end`` index the original text and ``text`` is that slice."""

    rule: str
    category: str
    severity: str
    start: int
    end: int
    text: str
    phrase: str = ""
    note: str = ""
    # Why it was found, as a reason code and its parameters: pages render the sentence (and the
    # rule it cites) in the reader's language at display time, so stored findings follow a switch
    # of language. ``note`` stays as a plain fallback (the lexicon's note for phrase findings).
    code: str = ""
    params: tuple[tuple[str, str | tuple[str, ...]], ...] = ()
    suggestion: str = ""

    def to_dict(self) -> dict[str, object]:
        """Return the JSON shape of the contract plus ``phrase``, ``note``, ``code``, ``params``, ``suggestion``."""
        return {"rule": self.rule, "category": self.category, "severity": self.severity,
                "start": self.start, "end": self.end, "text": self.text, "phrase": self.phrase,
                "note": self.note, "code": self.code,
                "params": {k: list(v) if isinstance(v, tuple) else v for k, v in self.params},
                "suggestion": self.suggestion}


@dataclass(frozen=True, slots=True)
class ScanResult:
    """All findings of one scan, ordered by position; ``blocking`` is true when any finding blocks."""

    findings: tuple[Finding, ...]
    blocking: bool

    def to_dict(self) -> dict[str, object]:
        """Return ``{"blocking": bool, "findings": [...]}`` ready for JSON."""
        return {"blocking": self.blocking, "findings": [f.to_dict() for f in self.findings]}


@dataclass(frozen=True, slots=True)
class CsvError:
    """A rejected CSV row: ``row`` is 1-based and the header is row 1 (0 means the whole file)."""

    row: int
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.reason}"


# ---------------------------------------------------------------------------------------------
# Normalization
# ---------------------------------------------------------------------------------------------

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


class _View:
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
                keep_astral: bool = False) -> _View:
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
        return _View(base, norm_starts, orig_starts, steps)
    pieces.append(base[pos:])
    return _View("".join(pieces), norm_starts, orig_starts, steps)


def _split_view(base: str, splitter: re.Pattern[str]) -> _View:
    """Fast path of _build_view when nothing expands: ``splitter`` captures the runs to drop."""
    parts = splitter.split(base)  # kept, dropped, kept, dropped, ..., kept
    if len(parts) == 1:
        return _View(base, [0], [0], [1])
    kept = parts[0::2]
    ends = list(itertools.accumulate(map(len, parts)))
    orig_starts = [0, *ends[1::2]]
    norm_starts = [0, *itertools.accumulate(map(len, kept[:-1]))]
    return _View("".join(kept), norm_starts, orig_starts, [1] * len(norm_starts))


def _translated(text: str) -> str:
    """Return ``text`` with the 1:1 conversions applied and expansion characters marked."""
    tables = _tables()
    return text.translate(tables.translate) if tables.needs_translate.search(text) else text


def _simple(base: str) -> bool:
    """Return whether ``base`` has no expansion marker and no astral character (the fast path)."""
    return _EXPANSION not in base and (not base or max(base) <= "\uffff")


def _strict_view(text: str, base: str | None = None, simple: bool | None = None) -> _View:
    """Return the strict view: converted, lower-cased, letters and digits only."""
    tables = _tables()
    base = _translated(text) if base is None else base
    if _simple(base) if simple is None else simple:
        return _split_view(base.lower(), tables.strict_split)
    return _build_view(base.lower(), text, tables.strict_drop, tables.strict_expansions)


def _views(text: str) -> tuple[_View, _View]:
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


def _char_class(ch: str) -> str:
    """Return "a" for an ASCII letter, "d" for an ASCII digit, "" otherwise."""
    if ch.isascii():
        if ch.isalpha():
            return "a"
        if ch.isdigit():
            return "d"
    return ""


# ---------------------------------------------------------------------------------------------
# Rule data
# ---------------------------------------------------------------------------------------------

# Well-known listed companies (A-share, Hong Kong, US) whose name next to a trading verb is a call.
STOCK_NAMES: tuple[str, ...] = (
    "贵州茅台", "茅台", "五粮液", "宁德时代", "比亚迪", "中国平安", "招商银行", "工商银行", "建设银行",
    "农业银行", "中信证券", "东方财富", "长江电力", "中国神华", "中国石油", "中国石化", "中国移动",
    "紫金矿业", "隆基绿能", "迈瑞医疗", "恒瑞医药", "药明康德", "海康威视", "美的集团", "格力电器",
    "伊利股份", "立讯精密", "京东方", "中芯国际", "万科", "腾讯控股", "腾讯", "阿里巴巴", "美团",
    "小米集团", "京东集团", "拼多多", "特斯拉", "英伟达", "苹果公司", "Tesla", "Nvidia",
)
# Buy, sell and hold verbs (and close synonyms) that turn a security mention into a call.
TRADE_VERBS: tuple[str, ...] = (
    "买入", "买进", "卖出", "抛售", "持有", "加仓", "减仓", "抄底", "建仓", "清仓", "满仓", "重仓",
    "补仓", "上车", "低吸", "追涨", "梭哈", "止盈", "止损", "做多", "做空", "buy", "sell", "hold",
)
# Upper-case words that are not tickers when they stand next to a verb.
TICKER_STOPWORDS = frozenset(
    "A I AI AM PM OK NO YES IT IS TO IN ON AT OR IF SO GO BE DO WE MY ME UP US UK EU HK SH SZ BJ THE AND "
    "FOR YOU NOT ALL NEW NOW TOP BEST FREE HOT BIG BUY SELL HOLD ETF ETFS LOF FOF REIT REITS QQ VX WX CEO "
    "CFO CTO IPO GDP CPI PPI PMI SAC MCN APP USD CNY RMB HKD PE PB ROE ROI EPS MACD KDJ RSI BOLL FOMC FED "
    "VIP FAQ DIY PDF URL ID TV CSRC SEC FINRA KOL TM ASAP CASH GOLD OIL BOND BONDS FUND FUNDS STOCK STOCKS "
    "MORE LESS LOW HIGH DIP RALLY TODAY".split()
)

# A six-digit number followed by a unit is an amount or a date, not a security code.
_NOT_A_CODE = (r"(?!\s*(?:元|块|万|亿|千|百|%|人|次|年|月|日|号|个|位|天|手|份|米|吨|美元|港元"
               r"|股(?![价票东])))")
# Each numeric pattern starts with a lookahead on its possible first characters: `re` then skips
# other positions quickly (about ten times faster on Chinese prose than a leading lookbehind).
_SECURITY_RE = re.compile(
    r"(?=[0-9A-Za-z$])(?:(?P<code>"
    r"(?<![0-9A-Za-z])(?i:(?:sh|sz|bj)\.?)?"
    r"(?<![0-9])(?:00[0-3]|30[01]|60[0-5]|68[89]|8[3-9][0-9]|43[0-9]|92[0-9])[0-9]{3}(?![0-9])"
    r"(?:\.(?i:sh|sz|bj)(?![A-Za-z]))?" + _NOT_A_CODE + "|"
    r"(?<![0-9A-Za-z])(?i:hk)\.?[0-9]{4,5}(?![0-9])|"
    r"(?<![0-9.])[0-9]{4,5}\.(?i:hk)(?![A-Za-z])|"
    r"(?<![0-9.])0[0-9]{4}(?![0-9])" + _NOT_A_CODE + "|"
    r"(?<![A-Za-z0-9$])\$[A-Za-z]{1,5}(?![A-Za-z]))"
    r"|(?P<bare>(?<![A-Za-z0-9])[A-Z]{2,5}(?:\.(?:US|O|N))?(?![A-Za-z0-9])))"
)
_SAC_WELL_FORMED_RE = re.compile(r"(?=[Ss])(?<![A-Za-z0-9])[Ss](?:[ \-]?[0-9]){13}(?![0-9])")
_SAC_LIKE_RE = re.compile(r"(?=S)(?<![A-Za-z0-9])S[0-9]{3,}(?![0-9])")
_SAC_ARGUMENT_RE = re.compile(r"S[0-9]{13}")

_NUMBER_UNIT_RE = re.compile(
    r"(?=[0-9零〇一二两三四五六七八九十百千])(?:"
    r"(?:(?<![0-9.])[0-9]+(?:\.[0-9]+)?|[零〇一二两三四五六七八九十百千]+)\s*"
    r"(?:%|个百分点|个点|倍|(?i:percent|pct)(?![A-Za-z]))"
    r"|百分之[零〇一二两三四五六七八九十百点0-9.]+)"
)
_RETURN_BEFORE_RE = re.compile(
    r"收益率?|回报率?|年化|利润|盈利|获利|赚了?|翻了?|"
    r"(?<![A-Za-z])(?i:returns?|yields?|gains?|profits?|earn(?:ed|s)?)(?![A-Za-z])"
)
_RETURN_AFTER_RE = re.compile(
    r"\s*(?:的)?\s*(?:年化)?\s*(?:收益|回报|利润|(?i:returns?|yields?|gains?|profits?)(?![A-Za-z]))"
)
_PROMISE_RE = re.compile(
    r"保证|承诺|确保|稳赚|稳拿|稳获|必然|必定|一定|肯定|至少|保底|百分百|包赚|"
    r"(?i:guarantee[sd]?|will\s+(?:earn|make|get)|at\s+least)"
)
_SENTENCE_END_RE = re.compile(r"[。！？!?；;\n]")
_CLAUSE_OR_COMMA_RE = re.compile(r"[。！？!?；;\n，,、]")
_RETURN_LOOKBEHIND = 12
_PROMISE_LOOKBEHIND = 24
_PROMISE_LOOKAHEAD = 8
_BARE_TICKER_GAP = 2


# ---------------------------------------------------------------------------------------------
# Scanner
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Key:
    length: int
    left: str
    right: str
    forbidden: tuple[int, ...] = ()
    required: tuple[int, ...] = ()
    allow: tuple[int, ...] = ()
    verb: bool = False
    security: bool = False


@dataclass(frozen=True, slots=True)
class _RequiredGroup:
    name: str
    members: tuple[int, ...]


@dataclass(slots=True)
class _Hits:
    forbidden: list[tuple[int, int, int]] = field(default_factory=list)
    covers: list[tuple[int, int]] = field(default_factory=list)
    required: set[int] = field(default_factory=set)
    verbs: list[tuple[int, int]] = field(default_factory=list)
    securities: list[tuple[int, int]] = field(default_factory=list)


class Scanner:
    """Lexicon plus rules compiled once; immutable, reusable and safe to share between threads."""

    __slots__ = ("_entries", "_allows", "_keys", "_automaton", "_groups", "_window")

    def __init__(self, entries: Iterable[LexiconEntry], allows: Iterable[AllowEntry] = (), *,
                 stock_names: Iterable[str] = STOCK_NAMES, trade_verbs: Iterable[str] = TRADE_VERBS,
                 window: int = DEFAULT_WINDOW) -> None:
        entries = tuple(entries)
        allows = tuple(allows)
        for entry in entries:
            if not isinstance(entry, LexiconEntry):
                raise TypeError(f"expected LexiconEntry, got {type(entry).__name__}")
        for allow in allows:
            if not isinstance(allow, AllowEntry):
                raise TypeError(f"expected AllowEntry, got {type(allow).__name__}")
        buckets: dict[str, dict[str, object]] = {}

        def bucket(phrase: str) -> dict[str, object]:
            key = normalize_phrase(phrase)
            if not key:
                raise ValueError(f"phrase {phrase!r} has no letters or digits after normalization")
            return buckets.setdefault(key, {"forbidden": [], "required": [], "allow": []})

        for index, entry in enumerate(entries):
            bucket(entry.phrase)[entry.kind].append(index)
        for index, allow in enumerate(allows):
            bucket(allow.phrase)["allow"].append(index)
        for verb in trade_verbs:
            bucket(verb)["verb"] = True
        for name in stock_names:
            bucket(name)["security"] = True

        keys: list[_Key] = []
        automaton = ahocorasick.Automaton(ahocorasick.STORE_ANY, ahocorasick.KEY_STRING)
        for number, (norm, b) in enumerate(buckets.items()):
            keys.append(_Key(len(norm), _char_class(norm[0]), _char_class(norm[-1]),
                             tuple(b["forbidden"]), tuple(b["required"]), tuple(b["allow"]),
                             bool(b.get("verb")), bool(b.get("security"))))
            automaton.add_word(norm, number)
        automaton.make_automaton()

        groups: dict[str, list[int]] = {}
        for index, entry in enumerate(entries):
            if entry.kind == REQUIRED:
                name = entry.group or f"phrase:{normalize_phrase(entry.phrase)}"
                groups.setdefault(name, []).append(index)

        object.__setattr__(self, "_entries", entries)
        object.__setattr__(self, "_allows", allows)
        object.__setattr__(self, "_keys", tuple(keys))
        object.__setattr__(self, "_automaton", automaton)
        object.__setattr__(self, "_groups", tuple(_RequiredGroup(n, tuple(m)) for n, m in groups.items()))
        object.__setattr__(self, "_window", int(window))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Scanner is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Scanner is immutable")

    @property
    def entries(self) -> tuple[LexiconEntry, ...]:
        """Return the forbidden and required entries the scanner was built from."""
        return self._entries

    @property
    def allows(self) -> tuple[AllowEntry, ...]:
        """Return the allow-list entries the scanner was built from."""
        return self._allows

    def scan(self, text: str, *, platform: str | None = None, advisor_name: str | None = None,
             sac_number: str | None = None, check_required: bool = True) -> ScanResult:
        """Scan ``text`` and return its findings; ``platform=None`` applies every entry (strictest)."""
        if not isinstance(text, str):
            raise TypeError("text must be a str")
        if platform is not None and platform not in PLATFORMS:
            raise ValueError(f"unknown platform {platform!r}")
        expected_sac = None
        if sac_number is not None and sac_number.strip():
            expected_sac = unicodedata.normalize("NFKC", sac_number).strip().upper()
            if not _SAC_ARGUMENT_RE.fullmatch(expected_sac):
                raise ValueError(f"sac_number {sac_number!r} is not S followed by 13 digits")

        strict, soft = _views(text)
        hits = self._match(strict, soft, platform)
        findings = self._phrase_findings(text, strict, hits)
        if check_required:
            findings.extend(self._missing_required(hits, platform))
        findings.extend(_sac_findings(text, soft, expected_sac, check_required))
        if advisor_name is not None and check_required:
            name = normalize_phrase(advisor_name)
            if name and name not in strict.text:
                findings.append(Finding("advisor_name_missing", "identification", BLOCK, 0, 0, "",
                                        note=f"advisor name {advisor_name.strip()!r} does not appear",
                                        code="advisor_name_missing",
                                        params=(("name", advisor_name.strip()),)))
        if hits.verbs:
            findings.extend(self._stock_calls(text, strict, soft, hits))
        findings.extend(_return_percentages(text, soft))

        unique = {(f.rule, f.start, f.end, f.category, f.severity, f.phrase): f for f in findings}
        ordered = tuple(sorted(unique.values(), key=lambda f: (f.start, f.end, f.rule, f.phrase)))
        return ScanResult(ordered, any(f.severity == BLOCK for f in ordered))

    # -- phrase matching -----------------------------------------------------------------------

    def _match(self, strict: _View, soft: _View, platform: str | None) -> _Hits:
        hits = _Hits()
        entries, allows, keys = self._entries, self._allows, self._keys
        for end, number in self._automaton.iter(strict.text):
            key = keys[number]
            j = end + 1
            i = j - key.length
            if (key.left or key.right) and not _on_word_boundary(strict, soft, i, j, key):
                continue
            for index in key.forbidden:
                if entries[index].applies_to(platform):
                    hits.forbidden.append((i, j, index))
            for index in key.required:
                if entries[index].applies_to(platform):
                    hits.required.add(index)
                    hits.covers.append((i, j))
            if key.allow and any(allows[index].applies_to(platform) for index in key.allow):
                hits.covers.append((i, j))
            if key.verb:
                hits.verbs.append((i, j))
            if key.security:
                hits.securities.append((i, j))
        return hits

    def _phrase_findings(self, text: str, strict: _View, hits: _Hits) -> list[Finding]:
        covered = _coverage(hits.covers)
        forbidden = [hit for hit in hits.forbidden if not covered(hit[0], hit[1])]
        findings = []
        for i, j, index in _drop_contained(forbidden, self._entries):
            entry = self._entries[index]
            start, end = strict.span(i, j)
            findings.append(Finding("forbidden_phrase", entry.category, entry.severity, start, end,
                                    text[start:end], entry.phrase, entry.note, code="lexicon_note",
                                    suggestion=entry.suggestion))
        return findings

    def _missing_required(self, hits: _Hits, platform: str | None) -> list[Finding]:
        findings = []
        for group in self._groups:
            members = [index for index in group.members if self._entries[index].applies_to(platform)]
            if not members or any(index in hits.required for index in members):
                continue
            first = self._entries[members[0]]
            severity = BLOCK if any(self._entries[m].severity == BLOCK for m in members) else WARN
            wordings = tuple(self._entries[m].phrase for m in members)
            note = f"missing required text; any of: {' | '.join(wordings)}"
            findings.append(Finding("disclosure_missing", first.category, severity, 0, 0, "", first.phrase,
                                    note, code="required_missing",
                                    params=(("wordings", wordings), ("basis", first.note)),
                                    suggestion=first.suggestion or first.phrase))
        return findings

    # -- stock calls ---------------------------------------------------------------------------

    def _stock_calls(self, text: str, strict: _View, soft: _View, hits: _Hits) -> list[Finding]:
        covered = _coverage(hits.covers)
        # Mentions as (strict start, strict end, allowed gap, original start, original end).
        mentions: list[tuple[int, int, int, int, int]] = []
        reach = -1
        for i, j in sorted(hits.securities, key=lambda h: (h[0], -h[1])):
            # A name inside a longer name ("茅台" in "贵州茅台") is the same mention; an allow-list
            # phrase around it ("茅台酒") means it is not a security here.
            if j > reach and not covered(i, j):
                mentions.append((i, j, self._window, *strict.span(i, j)))
                reach = j
        for match in _SECURITY_RE.finditer(soft.text):
            if match.lastgroup == "bare":
                if match.group().split(".")[0] in TICKER_STOPWORDS:
                    continue
                limit = _BARE_TICKER_GAP
            else:
                limit = self._window
            start, end = soft.span(*match.span())
            i, j = strict.to_norm(start), strict.to_norm(end)
            if j > i:
                mentions.append((i, j, limit, start, end))

        verbs = sorted(hits.verbs)
        verb_starts = [v[0] for v in verbs]
        calls: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for i, j, limit, start, end in mentions:
            # Verbs are short, so only those starting near the mention can be within the window.
            lo = bisect_right(verb_starts, i - limit - 16)
            hi = bisect_right(verb_starts, j + limit)
            best = None
            for vi, vj in verbs[lo:hi]:
                gap = max(vi - j, i - vj, 0)
                if gap > limit or (best is not None and gap >= best[0]):
                    continue
                vs, ve = strict.span(vi, vj)
                if _SENTENCE_END_RE.search(text, min(end, ve), max(start, vs)):
                    continue
                best = (gap, vi, vj)
            if best is not None:
                calls.setdefault((best[1], best[2]), []).append((start, end))
        findings = []
        for (vi, vj), spans in calls.items():
            vs, ve = strict.span(vi, vj)
            start = min(vs, *(s for s, _ in spans))
            end = max(ve, *(e for _, e in spans))
            named = tuple(dict.fromkeys(text[s:e] for s, e in spans))
            findings.append(Finding("stock_call", "stock_tip", BLOCK, start, end, text[start:end],
                                    note=f"{', '.join(map(repr, named))} next to {text[vs:ve]!r}: a call to "
                                         "trade a specific security in public content",
                                    code="stock_call", params=(("securities", named), ("verb", text[vs:ve]))))
        return findings


def _coverage(covers: list[tuple[int, int]]):
    """Return a predicate telling whether [i, j) lies inside one of ``covers``."""
    if not covers:
        return lambda i, j: False
    ordered = sorted(covers)
    starts = [a for a, _ in ordered]
    reach = list(itertools.accumulate((b for _, b in ordered), max))

    def covered(i: int, j: int) -> bool:
        k = bisect_right(starts, i) - 1
        return k >= 0 and reach[k] >= j

    return covered


def _on_word_boundary(strict: _View, soft: _View, i: int, j: int, key: _Key) -> bool:
    """Return whether an ASCII-edged match does not continue a word of the original text."""
    start, end = strict.span(i, j)
    if key.left:
        k = soft.to_norm(start)
        if k > 0 and _char_class(soft.text[k - 1]) == key.left:
            return False
    if key.right:
        k = soft.to_norm(end)
        if k < len(soft.text) and _char_class(soft.text[k]) == key.right:
            return False
    return True


def _drop_contained(hits: list[tuple[int, int, int]], entries: Sequence[LexiconEntry]):
    """Drop matches covered by a longer match of at least the same severity."""
    hits = sorted(hits, key=lambda h: (h[0], -h[1], h[2]))
    kept = []
    reach_any = reach_block = -1
    for (_, j), group in itertools.groupby(hits, key=lambda h: (h[0], h[1])):
        group = list(group)
        for hit in group:
            blocking = entries[hit[2]].severity == BLOCK
            if (reach_block if blocking else reach_any) >= j:
                continue
            kept.append(hit)
        reach_any = max(reach_any, j)
        if any(entries[h[2]].severity == BLOCK for h in group):
            reach_block = max(reach_block, j)
    return kept


def _sac_findings(text: str, soft: _View, expected: str | None, check_required: bool) -> list[Finding]:
    """Check SAC registration numbers: malformed (warn), another advisor's (block), missing (block)."""
    findings = []
    found_expected = False
    well_formed_spans = []
    for match in _SAC_WELL_FORMED_RE.finditer(soft.text):
        well_formed_spans.append(match.span())
        number = "S" + "".join(c for c in match.group() if c.isdigit())
        if expected is None or number == expected:
            found_expected = True
            continue
        start, end = soft.span(*match.span())
        findings.append(Finding("sac_mismatch", "identification", BLOCK, start, end, text[start:end],
                                note=f"SAC number {number} is not the advisor's {expected}",
                                code="sac_mismatch", params=(("found", number), ("expected", expected))))
    for match in _SAC_LIKE_RE.finditer(soft.text):
        if any(a <= match.start() < b for a, b in well_formed_spans):
            continue
        start, end = soft.span(*match.span())
        findings.append(Finding("sac_malformed", "identification", WARN, start, end, text[start:end],
                                note="looks like a SAC number but is not S followed by 13 digits",
                                code="sac_malformed"))
    if expected is not None and check_required and not found_expected:
        findings.append(Finding("sac_missing", "identification", BLOCK, 0, 0, "",
                                note=f"the advisor's SAC number {expected} does not appear",
                                code="sac_missing", params=(("expected", expected),)))
    return findings


def _return_percentages(text: str, soft: _View) -> list[Finding]:
    """Flag percentages or multiples next to return words; block when a promise word is near."""
    findings = []
    body = soft.text
    for match in _NUMBER_UNIT_RE.finditer(body):
        s, e = match.span()
        clause = s - _PROMISE_LOOKBEHIND
        for end_mark in _SENTENCE_END_RE.finditer(body, max(0, clause), s):
            clause = end_mark.end()
        clause = max(0, clause)
        lookbehind = max(clause, s - _RETURN_LOOKBEHIND)
        word = _RETURN_BEFORE_RE.search(body, lookbehind, s)
        if word is not None:
            span = (word.start(), e)
        else:
            after = _RETURN_AFTER_RE.match(body, e)
            if after is None:
                continue
            span = (s, after.end())
        # Promise words count in the clause before the figure and up to the next punctuation after it.
        stop = _CLAUSE_OR_COMMA_RE.search(body, span[1], span[1] + _PROMISE_LOOKAHEAD)
        promise = _PROMISE_RE.search(body, clause, stop.start() if stop else span[1] + _PROMISE_LOOKAHEAD)
        start, end = soft.span(*span)
        severity = BLOCK if promise else WARN
        note = "return figure" + (f" with promise word {promise.group()!r}" if promise else "")
        findings.append(Finding("return_percentage", "return_promise", severity, start, end,
                                text[start:end], note=note,
                                code="return_figure_promise" if promise else "return_figure",
                                params=(("promise", promise.group()),) if promise else ()))
    return findings


# ---------------------------------------------------------------------------------------------
# CSV lexicon files
# ---------------------------------------------------------------------------------------------


def _read_source(path_or_text: str | os.PathLike[str] | bytes) -> tuple[str | None, CsvError | None]:
    if isinstance(path_or_text, bytes):
        raw = path_or_text
    elif isinstance(path_or_text, os.PathLike) or (
            "\n" not in path_or_text and "," not in path_or_text and os.path.isfile(path_or_text)):
        try:
            raw = Path(path_or_text).read_bytes()
        except OSError as exc:
            return None, CsvError(0, f"cannot read file: {exc.strerror or exc}")
    else:
        return path_or_text.removeprefix("\ufeff"), None
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        return None, CsvError(line, f"not valid UTF-8 (byte {exc.start})")


def load_csv(path_or_text: str | os.PathLike[str] | bytes
             ) -> tuple[list[LexiconEntry], list[AllowEntry], list[CsvError]]:
    """Parse a lexicon CSV; on any bad row return no entries and every error with its row number."""
    source, error = _read_source(path_or_text)
    if error is not None or source is None:
        return [], [], [error or CsvError(0, "empty input")]
    try:
        rows = list(csv.reader(io.StringIO(source, newline=""), strict=True))
    except csv.Error as exc:
        return [], [], [CsvError(0, f"malformed CSV: {exc}")]
    if not rows:
        return [], [], [CsvError(1, "missing header row")]
    header = [cell.strip().lower() for cell in rows[0]]
    if tuple(header[:4]) != CSV_COLUMNS:
        return [], [], [CsvError(1, f"header must start with {','.join(CSV_COLUMNS)}")]
    extra = header[4:]
    for name in extra:
        if name not in CSV_OPTIONAL_COLUMNS or extra.count(name) > 1:
            return [], [], [CsvError(1, f"unknown or repeated column {name!r}")]

    entries: list[LexiconEntry] = []
    allows: list[AllowEntry] = []
    errors: list[CsvError] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            errors.append(CsvError(number, f"{len(row)} columns but the header has {len(header)}"))
            continue
        cells = dict(zip(header, (cell.strip() for cell in row), strict=False))
        phrase = cells.get("phrase", "")
        kind = cells.get("kind", "").lower()
        severity = cells.get("severity", "").lower()
        note = cells.get("note", "")
        category = cells.get("category", "").lower()
        group = cells.get("group", "")
        suggestion = cells.get("suggestion", "")  # absent in lexicons written before the column
        platforms = frozenset(p.strip().lower() for p in cells.get("platforms", "").split("|") if p.strip())
        problem = _entry_problem(phrase, kind, severity, category, platforms, group)
        if problem is None and len(note) > MAX_NOTE_LENGTH:
            problem = f"note longer than {MAX_NOTE_LENGTH} characters"
        if problem is None and len(suggestion) > MAX_SUGGESTION_LENGTH:
            problem = f"suggestion longer than {MAX_SUGGESTION_LENGTH} characters"
        if problem is None and kind == ALLOW and suggestion:
            problem = "suggestion is not used on allow rows"
        if problem is None and kind == ALLOW and category:
            problem = "category is not used on allow rows"
        if problem is None:
            key = normalize_phrase(phrase)
            if key in seen:
                problem = f"duplicate of row {seen[key]} (same phrase after normalization)"
            else:
                seen[key] = number
        if problem:
            errors.append(CsvError(number, problem))
        elif kind == ALLOW:
            allows.append(AllowEntry(phrase, note, platforms))
        else:
            entries.append(LexiconEntry(phrase, kind, severity, category, note, platforms, group, suggestion))
    if errors:
        return [], [], errors
    return entries, allows, errors


def load_default_lexicon() -> tuple[list[LexiconEntry], list[AllowEntry]]:
    """Return the entries and allow-list of the bundled ``default_lexicon.csv`` (parsed once per edit)."""
    stat = DEFAULT_LEXICON_PATH.stat()
    entries, allows, errors = _parsed_default(stat.st_mtime_ns, stat.st_size)
    if errors:
        raise ValueError("default lexicon is invalid: " + "; ".join(str(e) for e in errors))
    return list(entries), list(allows)


@cache
def _parsed_default(_mtime_ns: int, _size: int) -> tuple[tuple, tuple, tuple]:
    entries, allows, errors = load_csv(DEFAULT_LEXICON_PATH)
    return tuple(entries), tuple(allows), tuple(errors)


@cache
def default_scanner() -> Scanner:
    """Return a shared Scanner built from the bundled default lexicon."""
    entries, allows = load_default_lexicon()
    return Scanner(entries, allows)
