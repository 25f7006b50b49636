"""Where a subtitle cue's words are in the approved script: the script line shown next to each cue on
the package page, and the "not in the script" flag compliance sees (one rule for both)."""

from __future__ import annotations

from advisor_studio.studio.cuematch import MATCH, MISSING, NO_WORDS, match_cues

SCRIPT = ("大家好，我是王晓明，执业证书编号S0000000000000。\n"
          "今天聊聊资产配置的基本思路：分散投资、长期持有、控制回撤。\n"
          "投资有风险，入市需谨慎。\n"
          "以上内容仅供参考，不构成投资建议。")


def test_each_cue_is_found_on_its_script_line_with_the_words_around_it():
    [first, second] = match_cues(["大家好，我是王晓明", "分散投资，长期持有"], SCRIPT)
    assert (first.status, first.first_line, first.last_line) == (MATCH, 1, 1)
    assert (first.before, first.hit) == ("", "大家好，我是王晓明")
    # Punctuation differs from the script's ("，" for "、"): the words are what count, as for the lexicon.
    assert (second.status, second.first_line, second.hit) == (MATCH, 2, "分散投资、长期持有")
    assert second.before == "今天聊聊资产配置的基本思路：" and second.after == "、控制回撤。"


def test_a_long_line_is_shown_around_the_match_only():
    [match] = match_cues(["控制回撤"], SCRIPT)
    assert match.before == "…" + "今天聊聊资产配置的基本思路：分散投资、长期持有、"[-18:]
    assert (match.hit, match.after) == ("控制回撤", "。")


def test_a_cue_running_over_a_line_break_names_both_lines():
    [match] = match_cues(["控制回撤。投资有风险"], SCRIPT)
    assert (match.status, match.first_line, match.last_line) == (MATCH, 2, 3)


def test_words_not_in_the_script_are_flagged_and_punctuation_alone_is_not():
    missing, blank = match_cues(["这只股票下周必有行情", "……！"], SCRIPT)
    assert missing.status == MISSING and missing.first_line == 0
    assert blank.status == NO_WORDS


def test_a_phrase_said_twice_is_shown_where_the_video_has_reached():
    script = "第一段：长期持有。\n中间的话。\n第三段：长期持有。"
    matches = match_cues(["第一段", "长期持有", "中间的话", "第三段", "长期持有"], script)
    assert [m.first_line for m in matches] == [1, 1, 2, 3, 3]
    # Back to the start when nothing later matches.
    assert match_cues(["第三段", "第一段"], script)[1].first_line == 1
