"""The one side-by-side character diff (studio.textdiff), used by the studio's revision diff and the
compliance review page: correct, escaped, exact on long texts. (Speed: benchmarks/bench_text.py.)"""

from __future__ import annotations

import random
import re

import pytest
from markupsafe import Markup

from advisor_studio.studio.textdiff import DiffRow, char_diff, char_opcodes, diff_counts, has_changes, side_by_side

COMMON = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面"


def _changed(rows) -> list[int]:
    return [i for i, (left, right, _changed) in enumerate(rows) if "<del" in left or "<ins" in right or
            (left == "") != (right == "")]


def _plain(html: str) -> str:
    """The text of one side: our tags dropped (a changed line break's ↵ glyph stands for the line
    break itself, which the callers discount), entities unescaped."""
    html = re.sub(r'<(del|ins) class="diff-nl">↵</\1>', "", str(html))
    return re.sub(r"</?(del|ins)>", "", html).replace("&lt;", "<").replace("&gt;", ">").replace(
        "&#34;", '"').replace("&#39;", "'").replace("&amp;", "&")


def test_identical_texts_have_no_marks():
    rows = side_by_side("第一行\n第二行", "第一行\n第二行")
    assert rows == [DiffRow("第一行", "第一行", False), DiffRow("第二行", "第二行", False)]
    assert all(isinstance(side, Markup) for row in rows for side in (row.left, row.right))


def test_chinese_edit_is_marked_per_character():
    [(left, right, changed)] = side_by_side("分散投资、长期持有、控制回撤", "分散投资、长期坚定持有、控制波动")
    assert changed
    assert left == "分散投资、长期持有、控制<del>回撤</del>"
    assert right == "分散投资、长期<ins>坚定</ins>持有、控制<ins>波动</ins>"


def test_added_and_removed_lines_are_aligned_with_an_empty_side():
    rows = side_by_side("甲\n乙\n丙", "甲\n丙\n丁")
    assert rows[0] == ("甲", "甲", False)
    assert ("<del>乙</del>", "", True) in rows
    assert ("", "<ins>丁</ins>", True) in rows
    assert ("丙", "丙", False) in rows


def test_replaced_lines_are_paired_and_a_removed_line_break_is_visible():
    rows = side_by_side("开头\n结尾", "开头结尾")
    assert rows[0][1] == "开头结尾"
    assert '<del class="diff-nl">↵</del>' in rows[0][0]


def test_html_in_the_text_is_escaped():
    [(left, right, _changed)] = side_by_side("<b>安全</b> & 稳健", "<i>安全</i> & 稳健")
    assert "<b>" not in left and "&lt;" in left and "&amp;" in left
    assert "<del>b</del>" in left and "<ins>i</ins>" in right


def test_empty_texts():
    assert side_by_side("", "") == []
    assert side_by_side("", "新") == [("", "<ins>新</ins>", True)]
    assert side_by_side("旧", "") == [("<del>旧</del>", "", True)]
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


def _edit(rng: random.Random, text: str, edits: int, *, alphabet: str | None = None, insert: str = "增") -> str:
    """``edits`` random edits: a character replaced (by 改, or one drawn from ``alphabet``), deleted,
    or ``insert`` put before it."""
    chars = list(text)
    for _ in range(edits):
        i = rng.randrange(len(chars))
        roll = rng.random()
        if roll < 0.33:
            chars[i] = rng.choice(alphabet) if alphabet else "改"
        elif roll < 0.66:
            del chars[i]
        else:
            chars.insert(i, insert)
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


# --- lines, escaping and exact rebuilds (formerly the review page's own diff) -------------------------


def _text(rng: random.Random, size: int, newlines: bool = True) -> str:
    parts, length = [], 0
    while length < size:
        sentence = "".join(rng.choice(COMMON) for _ in range(rng.randint(8, 30))) + rng.choice("，。！？")
        if newlines and rng.random() < 0.1:
            sentence += "\n"
        parts.append(sentence)
        length += len(sentence)
    return "".join(parts)[:size]


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
    cases = [_edit(rng, old, n, alphabet=COMMON, insert="新增") for n in (20, 2_000)] + [_text(rng, 20_000, newlines)]
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
