"""The pure HTML helpers of the review page: side-by-side character diff and finding highlights."""

from __future__ import annotations

import random
import re

import pytest

from advisor_studio.compliance.diff import char_opcodes, has_changes, highlight, side_by_side, usable_findings

COMMON = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面"


def _plain(html: str) -> str:
    return re.sub(r"</?(del|ins)>", "", str(html)).replace("&lt;", "<").replace("&gt;", ">").replace(
        "&#34;", '"').replace("&#39;", "'").replace("&amp;", "&")


def _text(rng: random.Random, size: int, newlines: bool = True) -> str:
    parts, length = [], 0
    while length < size:
        sentence = "".join(rng.choice(COMMON) for _ in range(rng.randint(8, 30))) + rng.choice("，。！？")
        if newlines and rng.random() < 0.1:
            sentence += "\n"
        parts.append(sentence)
        length += len(sentence)
    return "".join(parts)[:size]


def _edit(rng: random.Random, text: str, edits: int) -> str:
    chars = list(text)
    for _ in range(edits):
        i = rng.randrange(len(chars))
        roll = rng.random()
        if roll < 0.33:
            chars[i] = rng.choice(COMMON)
        elif roll < 0.66:
            del chars[i]
        else:
            chars.insert(i, "新增")
    return "".join(chars)


def _assert_opcodes_rebuild(a: str, b: str) -> None:
    ops = char_opcodes(a, b)
    assert "".join(a[i1:i2] for _t, i1, i2, _j1, _j2 in ops) == a
    assert "".join(b[j1:j2] for _t, _i1, _i2, j1, j2 in ops) == b
    for tag, i1, i2, j1, j2 in ops:
        if tag == "equal":
            assert a[i1:i2] == b[j1:j2]


def test_chinese_is_compared_character_by_character():
    rows = side_by_side("本基金稳健增长", "本基金稳定增长")
    assert len(rows) == 1 and rows[0].changed
    assert str(rows[0].left) == "本基金稳<del>健</del>增长"
    assert str(rows[0].right) == "本基金稳<ins>定</ins>增长"


def test_rows_pair_lines_and_mark_only_changed_ones():
    rows = side_by_side("第一行\n第二行\n第三行", "第一行\n第二段\n第三行\n第四行")
    assert [r.changed for r in rows] == [False, True, False, True]
    assert str(rows[0].left) == str(rows[0].right) == "第一行"
    assert str(rows[3].left) == "" and str(rows[3].right) == "<ins>第四行</ins>"
    assert has_changes(rows) and not has_changes(side_by_side("同样", "同样"))


def test_deleted_lines_leave_the_right_side_empty():
    rows = side_by_side("保留\n删除这一行\n", "保留\n")
    assert any(str(r.left) == "<del>删除这一行</del>" and str(r.right) == "" for r in rows)


def test_user_text_is_escaped_and_only_del_ins_markup_is_added():
    rows = side_by_side('<script>alert("x")</script> & 文字', '<img src=x onerror=1> & 文字')
    html = "".join(str(r.left) + str(r.right) for r in rows)
    assert "<script>" not in html and "<img" not in html
    assert set(re.findall(r"</?([a-z]+)", html)) <= {"del", "ins"}
    assert _plain(rows[0].left) == '<script>alert("x")</script> & 文字'
    assert _plain(rows[0].right) == "<img src=x onerror=1> & 文字"


@pytest.mark.parametrize("newlines", [True, False])
def test_twenty_thousand_characters_diff_exactly(newlines):
    rng = random.Random(7)
    old = _text(rng, 20_000, newlines)
    cases = [_edit(rng, old, 20), _edit(rng, old, 2_000), _text(rng, 20_000, newlines)]
    for new in cases:
        rows = side_by_side(old, new)  # speed: benchmarks/bench_text.py
        _assert_opcodes_rebuild(old, new)
        assert "".join(_plain(r.left) for r in rows).replace("\n", "") == old.replace("\n", "")
        assert "".join(_plain(r.right) for r in rows).replace("\n", "") == new.replace("\n", "")


def test_small_edit_in_a_long_single_line_is_pinpointed():
    rng = random.Random(3)
    old = _text(rng, 20_000, newlines=False)
    new = old[:10_000] + "保本" + old[10_000:]
    rows = side_by_side(old, new)
    assert len(rows) == 1
    assert re.findall(r"<ins>(.*?)</ins>", str(rows[0].right)) == ["保本"]
    assert "<del>" not in str(rows[0].left)


def test_highlight_marks_findings_with_offsets_and_escapes_everything():
    text = "a<b>稳赚不赔，买入600519"
    findings = [
        {"start": 4, "end": 8, "text": "稳赚不赔", "rule": "forbidden_phrase", "category": "return_promise",
         "severity": "block", "note": 'no "promises" <here>'},
        {"start": 4, "end": 6, "text": "稳赚", "rule": "x", "severity": "warn"},
        {"start": 11, "end": 17, "text": "600519", "rule": "stock_call", "severity": "warn"},
    ]
    html = str(highlight(text, findings))
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
    html = str(highlight("保本理财", findings, base=4))
    assert html.startswith('<mark class="finding finding-block" data-o="4"') and whole[4:6] == "保本"
