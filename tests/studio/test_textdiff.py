"""The studio's side-by-side character diff and finding highlighter: correct, escaped, fast."""

from __future__ import annotations

import random

import pytest
from markupsafe import Markup

from advisor_studio.studio.textdiff import char_diff, diff_counts, mark_findings, side_by_side


def _changed(rows) -> list[int]:
    return [i for i, (left, right) in enumerate(rows) if "<del" in left or "<ins" in right or
            (left == "") != (right == "")]


def test_identical_texts_have_no_marks():
    rows = side_by_side("第一行\n第二行", "第一行\n第二行")
    assert rows == [("第一行", "第一行"), ("第二行", "第二行")]
    assert all(isinstance(side, Markup) for row in rows for side in row)


def test_chinese_edit_is_marked_per_character():
    [(left, right)] = side_by_side("分散投资、长期持有、控制回撤", "分散投资、长期坚定持有、控制波动")
    assert left == "分散投资、长期持有、控制<del>回撤</del>"
    assert right == "分散投资、长期<ins>坚定</ins>持有、控制<ins>波动</ins>"


def test_added_and_removed_lines_are_aligned_with_an_empty_side():
    rows = side_by_side("甲\n乙\n丙", "甲\n丙\n丁")
    assert rows[0] == ("甲", "甲")
    assert ("<del>乙</del>", "") in rows
    assert ("", "<ins>丁</ins>") in rows
    assert ("丙", "丙") in rows


def test_replaced_lines_are_paired_and_a_removed_line_break_is_visible():
    rows = side_by_side("开头\n结尾", "开头结尾")
    assert rows[0][1] == "开头结尾"
    assert '<del class="diff-nl">↵</del>' in rows[0][0]


def test_html_in_the_text_is_escaped():
    [(left, right)] = side_by_side("<b>安全</b> & 稳健", "<i>安全</i> & 稳健")
    assert "<b>" not in left and "&lt;" in left and "&amp;" in left
    assert "<del>b</del>" in left and "<ins>i</ins>" in right


def test_empty_texts():
    assert side_by_side("", "") == []
    assert side_by_side("", "新") == [("", "<ins>新</ins>")]
    assert side_by_side("旧", "") == [("<del>旧</del>", "")]
    assert diff_counts("", "abc") == {"deleted": 0, "inserted": 3}


def _chinese(rng: random.Random, n: int) -> str:
    pool = [chr(c) for c in range(0x4E00, 0x4E00 + 2500)]
    weights = [1 / (i + 1) for i in range(len(pool))]
    out = []
    for ch in rng.choices(pool, weights, k=n):
        out.append(ch)
        roll = rng.random()
        if roll < 0.05:
            out.append("，")
        elif roll < 0.08:
            out.append("。")
        elif roll < 0.085:
            out.append("\n")
    return "".join(out)[:n]


def _edit(rng: random.Random, text: str, edits: int) -> str:
    chars = list(text)
    for _ in range(edits):
        i = rng.randrange(len(chars))
        roll = rng.random()
        if roll < 0.33:
            chars[i] = "改"
        elif roll < 0.66:
            del chars[i]
        else:
            chars.insert(i, "增")
    return "".join(chars)


@pytest.mark.parametrize("edits", [0, 1, 25, 400])
def test_pieces_rebuild_both_texts_exactly(edits):
    rng = random.Random(edits)
    old = _chinese(rng, 3000)
    new = _edit(rng, old, edits)
    left, right = char_diff(old, new)
    assert "".join(t for t, _c in left) == old
    assert "".join(t for t, _c in right) == new
    counts = diff_counts(old, new)
    assert counts["deleted"] <= edits and counts["inserted"] <= edits


@pytest.mark.parametrize("edits", [1, 100, 2000, "rewritten"])
def test_twenty_thousand_characters_diff_completely(edits):
    # Speed is measured by benchmarks/bench_text.py; here only the result counts.
    rng = random.Random(7)
    old = _chinese(rng, 20_000)
    new = _chinese(rng, 20_000) if edits == "rewritten" else _edit(rng, old, edits)
    rows = side_by_side(old, new)
    assert rows and _changed(rows)


# --- findings --------------------------------------------------------------------------------------


def _finding(text, start, end, severity="block", rule="forbidden_phrase"):
    return {"start": start, "end": end, "text": text[start:end], "severity": severity, "rule": rule,
            "phrase": text[start:end], "category": "return_promise", "note": ""}


def test_findings_are_marked_by_severity():
    text = "稳赚不赔，翻倍收益"
    html = mark_findings(text, [_finding(text, 0, 4), _finding(text, 5, 7, "warn")])
    assert html.startswith('<mark class="finding-block" data-findings="1"')
    assert ">稳赚不赔</mark>，" in html
    assert '<mark class="finding-warn" data-findings="2"' in html and ">翻倍</mark>收益" in html


def test_overlapping_findings_merge_and_block_wins():
    text = "保证收益翻倍"
    html = mark_findings(text, [_finding(text, 0, 4, "warn"), _finding(text, 2, 6, "block")])
    assert '<mark class="finding-warn" data-findings="1" title="forbidden_phrase: 保证收益">保证</mark>' in html
    assert '<mark class="finding-block" data-findings="1 2"' in html and ">收益</mark>" in html
    assert '<mark class="finding-block" data-findings="2"' in html and ">翻倍</mark>" in html


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
    assert mark_findings(text, [stale, document, outside]) == "分散投资"
