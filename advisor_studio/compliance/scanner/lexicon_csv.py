"""Lexicon CSV files: parse and validate them, and the bundled default lexicon.

Pure logic: no Flask and no database. A file is accepted whole or not at all: ``load_csv`` returns
either its entries or every bad row with its row number. See docs/notes/scanner.md for the format.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from advisor_studio.compliance.scanner.normalize import normalize_phrase
from advisor_studio.compliance.scanner.rules import (
    ALLOW,
    MAX_NOTE_LENGTH,
    MAX_SUGGESTION_LENGTH,
    AllowEntry,
    LexiconEntry,
    Scanner,
    entry_problem,
)

CSV_COLUMNS = ("phrase", "kind", "severity", "note")
CSV_OPTIONAL_COLUMNS = ("category", "platforms", "group", "suggestion")
# The file stays beside the feature's other data, one folder up from this package.
DEFAULT_LEXICON_PATH = Path(__file__).parent.parent / "default_lexicon.csv"


@dataclass(frozen=True, slots=True)
class CsvError:
    """A rejected CSV row: ``row`` is 1-based and the header is row 1 (0 means the whole file)."""

    row: int
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.reason}"


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
        problem = entry_problem(phrase, kind, severity, category, platforms, group)
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
