"""Pre-check findings highlighted in a text (pure logic, no Flask): the one highlighter of the
platform. Findings are compliance's, so compliance owns it; the review page, the lexicon try-out
page and the studio's findings report all render through ``mark_findings``.

Every piece of text is escaped here and only our own ``<span>`` and ``<mark>`` tags are added.
Each piece carries ``data-o``, its offset (in code points) in the field's text, so a page's
script can turn a selection back into character offsets (anchored comments) and select a
finding's span again (findings.js); each mark also carries the 1-based numbers of its findings
(``data-findings``) and their titles.
"""

from __future__ import annotations

from markupsafe import Markup

_PLAIN = Markup('<span data-o="{0}">{1}</span>')
_MARK = Markup('<mark class="finding finding-{0}" data-o="{1}" title="{2}" data-findings="{3}">{4}</mark>')


def _valid_span(text: str, finding: dict) -> tuple[int, int] | None:
    start, end = finding.get("start"), finding.get("end")
    if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start < end <= len(text):
        return None
    if finding.get("text") not in (None, "") and text[start:end] != finding["text"]:
        return None  # the finding belongs to another version of the text
    return start, end


def usable_findings(text: str, findings: list[dict]) -> list[dict]:
    """Findings whose span lies in ``text`` and still covers the text it reported (others are listed only)."""
    return [f for f in findings or [] if isinstance(f, dict) and _valid_span(text, f) is not None]


def finding_title(finding: dict) -> str:
    """The hover text of a finding: its localized title (compliance.reasons.with_titles) or, without
    one, rule and phrase, and the lexicon note when there is one."""
    if finding.get("title"):
        return str(finding["title"])
    title = f"{finding.get('rule', '')}: {finding.get('phrase') or finding.get('text', '')}"
    return f"{title} ({finding['note']})" if finding.get("note") else title


def mark_findings(text: str, findings: list[dict], *, base: int | None = None) -> Markup:
    """``text`` as escaped HTML pieces, each finding's span in ``<mark class="finding finding-block|warn">``.

    Without ``base``, ``text`` is the whole text the findings' offsets index, and findings that do
    not lie in it (stale, positionless, outside) are left unmarked. With ``base``, ``text`` is the
    slice of a larger text that starts at ``base`` (one subtitle cue): the caller passes findings
    already checked against the whole text (``usable_findings``), and each is clipped to the slice;
    ``data-o`` is then the offset in the whole text. Overlapping findings are cut into runs; a run
    is "block" when any finding covering it blocks.
    """
    text = text or ""
    offset = 0 if base is None else base
    end_of_text = offset + len(text)
    spans: list[tuple[int, int, int, dict]] = []
    for number, finding in enumerate(findings or [], start=1):
        if base is None:
            span = _valid_span(text, finding) if isinstance(finding, dict) else None
        else:
            start, end = finding.get("start"), finding.get("end")
            span = (max(start, offset), min(end, end_of_text)) if isinstance(start, int) and isinstance(end, int) \
                else None
        if span is not None and span[0] < span[1]:
            spans.append((span[0], span[1], number, finding))
    cuts = sorted({offset, end_of_text, *(s for s, _e, _n, _f in spans), *(e for _s, e, _n, _f in spans)})
    pieces: list[Markup] = []
    for start, end in zip(cuts, cuts[1:], strict=False):
        chunk = text[start - offset:end - offset]
        covering = [(n, f) for s, e, n, f in spans if s <= start and end <= e]
        if not covering:
            pieces.append(_PLAIN.format(start, chunk))
            continue
        severity = "block" if any(f.get("severity") == "block" for _n, f in covering) else "warn"
        title = "\n".join(dict.fromkeys(finding_title(f) for _n, f in covering))
        numbers = " ".join(str(n) for n, _f in covering)
        pieces.append(_MARK.format(severity, start, title, numbers, chunk))
    return Markup("").join(pieces)

