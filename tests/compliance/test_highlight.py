"""The one highlighter of pre-check findings (compliance.highlight), used by the review page, the
lexicon try-out page and the studio's findings report: offsets, severities, overlaps, escaping."""

from __future__ import annotations

import re

from advisor_studio.compliance.highlight import mark_findings, usable_findings


def _plain(html: str) -> str:
    return re.sub(r"</?(del|ins)>", "", str(html)).replace("&lt;", "<").replace("&gt;", ">").replace(
        "&#34;", '"').replace("&#39;", "'").replace("&amp;", "&")


def test_highlight_marks_findings_with_offsets_and_escapes_everything():
    text = "a<b>稳赚不赔，买入600519"
    findings = [
        {"start": 4, "end": 8, "text": "稳赚不赔", "rule": "forbidden_phrase", "category": "return_promise",
         "severity": "block", "note": 'no "promises" <here>'},
        {"start": 4, "end": 6, "text": "稳赚", "rule": "x", "severity": "warn"},
        {"start": 11, "end": 17, "text": "600519", "rule": "stock_call", "severity": "warn"},
    ]
    html = str(mark_findings(text, findings))
    assert '<span data-o="0">a&lt;b&gt;</span>' in html
    assert '<mark class="finding finding-block" data-o="4"' in html
    assert '<mark class="finding finding-warn" data-o="11"' in html
    assert "&lt;here&gt;" in html and "<here>" not in html
    # every piece's data-o is its offset in the text, so the page can map a selection back
    for offset, piece in re.findall(r'data-o="(\d+)"[^>]*>([^<]*)<', html):
        assert text[int(offset):].startswith(_plain(piece))


def test_findings_that_no_longer_match_the_text_are_not_highlighted():
    text = "稳健投资"
    findings = [{"start": 0, "end": 2, "text": "稳赚"}, {"start": 3, "end": 9, "text": "x"},
                {"start": 0, "end": 2, "text": "稳健"}]
    assert usable_findings(text, findings) == [findings[2]]


def test_highlight_of_a_slice_uses_offsets_of_the_whole_text():
    whole = "第一句\n保本理财"
    findings = [{"start": 4, "end": 6, "text": "保本", "severity": "block", "rule": "forbidden_phrase"}]
    html = str(mark_findings("保本理财", findings, base=4))
    assert html.startswith('<mark class="finding finding-block" data-o="4"') and whole[4:6] == "保本"


def _mark(severity: str, offset: int, title: str, numbers: str, text: str) -> str:
    return (f'<mark class="finding finding-{severity}" data-o="{offset}" title="{title}" '
            f'data-findings="{numbers}">{text}</mark>')


def _finding(text, start, end, severity="block", rule="forbidden_phrase"):
    return {"start": start, "end": end, "text": text[start:end], "severity": severity, "rule": rule,
            "phrase": text[start:end], "category": "return_promise", "note": ""}


def test_findings_are_marked_by_severity():
    text = "稳赚不赔，翻倍收益"
    html = mark_findings(text, [_finding(text, 0, 4), _finding(text, 5, 7, "warn")])
    first = _mark("block", 0, "forbidden_phrase: 稳赚不赔", "1", "稳赚不赔")
    assert html.startswith(first + '<span data-o="4">，</span>')
    assert _mark("warn", 5, "forbidden_phrase: 翻倍", "2", "翻倍") + '<span data-o="7">收益</span>' in html


def test_overlapping_findings_merge_and_block_wins():
    text = "保证收益翻倍"
    html = mark_findings(text, [_finding(text, 0, 4, "warn"), _finding(text, 2, 6, "block")])
    assert _mark("warn", 0, "forbidden_phrase: 保证收益", "1", "保证") in html
    assert _mark("block", 2, "forbidden_phrase: 保证收益\nforbidden_phrase: 收益翻倍", "1 2", "收益") in html
    assert _mark("block", 4, "forbidden_phrase: 收益翻倍", "2", "翻倍") in html


def test_finding_text_and_titles_are_escaped():
    text = '<script>"x"</script>稳赚'
    finding = _finding(text, len(text) - 2, len(text))
    finding["phrase"] = '"><img src=x>'
    html = mark_findings(text, [finding])
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img" not in html and "&lt;img" in html


def test_stale_or_positionless_findings_are_not_marked():
    text = "分散投资"
    stale = {"start": 0, "end": 2, "text": "稳赚", "severity": "block", "rule": "forbidden_phrase"}
    document = {"start": 0, "end": 0, "text": "", "severity": "block", "rule": "disclosure_missing"}
    outside = {"start": 2, "end": 99, "text": "", "severity": "warn", "rule": "x"}
    assert mark_findings(text, [stale, document, outside]) == '<span data-o="0">分散投资</span>'
