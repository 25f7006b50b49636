"""Compliance scanner for advisor scripts, captions and subtitles.

Pure logic: no Flask and no database. This package keeps the scanner's public names in one place
(``from advisor_studio.compliance.scanner import Scanner``); each concern has its own module:

* ``normalize``: the strict and soft normalized views of a text and their map back to original
  offsets (NFKC, traditional to simplified, case folding, dropped fillers); ``normalize_phrase``.
* ``rules``: lexicon entries and findings, the rule data (stock names, trading verbs, numeric
  patterns) and the ``Scanner``: one Aho-Corasick automaton, matching and every rule.
* ``lexicon_csv``: parsing and validating lexicon CSV files, and the bundled default lexicon.

A ``Scanner`` is compiled once from lexicon entries and is immutable and reusable;
``Scanner.scan()`` returns findings whose ``start``/``end`` are character offsets into the
ORIGINAL text, with ``text == original[start:end]``. See docs/notes/scanner.md.
"""

from advisor_studio.compliance.scanner.lexicon_csv import (
    CSV_COLUMNS,
    CSV_OPTIONAL_COLUMNS,
    DEFAULT_LEXICON_PATH,
    CsvError,
    default_scanner,
    load_csv,
    load_default_lexicon,
)
from advisor_studio.compliance.scanner.normalize import normalize_phrase
from advisor_studio.compliance.scanner.rules import (
    ALLOW,
    BLOCK,
    DEFAULT_CATEGORIES,
    DEFAULT_WINDOW,
    FORBIDDEN,
    KINDS,
    MAX_NOTE_LENGTH,
    MAX_PHRASE_LENGTH,
    MAX_SUGGESTION_LENGTH,
    PLATFORMS,
    REQUIRED,
    SEVERITIES,
    STOCK_NAMES,
    TICKER_STOPWORDS,
    TRADE_VERBS,
    WARN,
    AllowEntry,
    Finding,
    LexiconEntry,
    Scanner,
    ScanResult,
)

__all__ = [
    "ALLOW",
    "BLOCK",
    "CSV_COLUMNS",
    "CSV_OPTIONAL_COLUMNS",
    "DEFAULT_CATEGORIES",
    "DEFAULT_LEXICON_PATH",
    "DEFAULT_WINDOW",
    "FORBIDDEN",
    "KINDS",
    "MAX_NOTE_LENGTH",
    "MAX_PHRASE_LENGTH",
    "MAX_SUGGESTION_LENGTH",
    "PLATFORMS",
    "REQUIRED",
    "SEVERITIES",
    "STOCK_NAMES",
    "TICKER_STOPWORDS",
    "TRADE_VERBS",
    "WARN",
    "AllowEntry",
    "CsvError",
    "Finding",
    "LexiconEntry",
    "ScanResult",
    "Scanner",
    "default_scanner",
    "load_csv",
    "load_default_lexicon",
    "normalize_phrase",
]
