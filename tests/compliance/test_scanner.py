"""Behaviour of the compliance scanner: evasions, offsets, rules, lexicon CSV and robustness."""

import random

import pytest

from advisor_studio.compliance.scanner import (
    DEFAULT_LEXICON_PATH,
    AllowEntry,
    LexiconEntry,
    Scanner,
    default_scanner,
    load_csv,
    load_default_lexicon,
    normalize_phrase,
)

DISCLOSURES = "投资有风险，入市需谨慎。以上内容仅供参考，不构成投资建议。"
SAC = "S0570119010001"


@pytest.fixture(scope="module")
def scanner():
    return default_scanner()


def scan(scanner, text, **kwargs):
    """Scan and check the offset invariant that every finding must satisfy."""
    result = scanner.scan(text, **kwargs)
    for finding in result.findings:
        assert text[finding.start:finding.end] == finding.text
        assert 0 <= finding.start <= finding.end <= len(text)
    assert result.blocking == any(f.severity == "block" for f in result.findings)
    return result


def by_rule(result, rule):
    return [f for f in result.findings if f.rule == rule]


def forbidden(result):
    return by_rule(result, "forbidden_phrase")


# -- evasions and offsets ----------------------------------------------------------------------


def test_spaced_out_phrase_is_found_at_original_offsets(scanner):
    text = "这个产品稳 赚不赔哦"
    [finding] = forbidden(scan(scanner, text, check_required=False))
    assert (finding.start, finding.end, finding.text) == (4, 9, "稳 赚不赔")
    assert finding.phrase == "稳赚不赔"
    assert finding.severity == "block"
    assert finding.category == "return_promise"


@pytest.mark.parametrize("filler", [" ", "-", "*", "_", ".", "\u200b", "\u3000", "\ufeff", "😀", "\x07",
                                    "\u0301", "｜", " . ", "\u200d\u200d"])
def test_filler_characters_between_characters_do_not_hide_a_phrase(scanner, filler):
    text = f"今天说说，稳{filler}赚，真的"
    [finding] = forbidden(scan(scanner, text, check_required=False))
    assert finding.text == f"稳{filler}赚"
    assert finding.start == 5
    assert finding.phrase == "稳赚"


def test_full_width_mixed_case_english_phrase_is_found(scanner):
    text = "We offer ＧＵＡＲＡＮＴＥＥＤ ｒｅｔｕｒｎｓ."
    [finding] = forbidden(scan(scanner, text, check_required=False))
    assert finding.text == "ＧＵＡＲＡＮＴＥＥＤ ｒｅｔｕｒｎｓ"
    assert finding.phrase == "guaranteed returns"


def test_upper_case_english_phrase_is_found(scanner):
    text = "Zero fees and NO  RISK!"
    [finding] = forbidden(scan(scanner, text, check_required=False))
    assert (finding.start, finding.end, finding.text) == (14, 22, "NO  RISK")


def test_traditional_characters_are_matched_as_simplified(scanner):
    text = "這檔基金穩賺不賠，還有內幕消息"
    result = scan(scanner, text, check_required=False)
    found = [(f.phrase, f.text) for f in forbidden(result)]
    assert found == [("稳赚不赔", "穩賺不賠"), ("内幕消息", "內幕消息")]


def test_length_changing_conversion_keeps_offsets_exact():
    scanner = Scanner([LexiconEntry("guaranteed profit", "forbidden", "block")])
    text = "½ ㈱ ﬁ: a guaranteed proﬁt İ"
    [finding] = forbidden(scan(scanner, text, check_required=False))
    assert finding.text == "guaranteed proﬁt"
    assert finding.start == text.index("guaranteed")


def test_random_fillers_never_break_offsets(scanner):
    rng = random.Random(7)
    fillers = [" ", "，", "-", "\u200b", "😀", "\x00", "\t", "·", "\u0301", "\ud800", "\U000e0041"]
    for _ in range(200):
        gaps = [rng.choice(["", *fillers]) for _ in range(3)]
        phrase = "稳" + gaps[0] + "赚" + gaps[1] + "不" + gaps[2] + "赔"
        prefix = "".join(rng.choice("今天市场不错，") for _ in range(rng.randint(0, 8)))
        text = prefix + phrase + "。"
        [finding] = forbidden(scan(scanner, text, check_required=False))
        assert (finding.start, finding.end) == (len(prefix), len(prefix) + len(phrase))


def test_english_phrase_respects_word_boundaries(scanner):
    assert forbidden(scan(scanner, "A casino risky bet", check_required=False)) == []
    assert forbidden(scan(scanner, "nonrisk-freedom", check_required=False)) == []
    [finding] = forbidden(scan(scanner, "a no-risk bet", check_required=False))
    assert finding.text == "no-risk"


def test_english_phrase_next_to_chinese_characters_still_matches(scanner):
    [finding] = forbidden(scan(scanner, "其实no risk哦", check_required=False))
    assert finding.text == "no risk"


def test_phrase_with_ascii_letters_stops_at_the_letter_boundary(scanner):
    result = scan(scanner, "加VIP会员", platform="douyin", check_required=False)
    assert forbidden(result) == []
    [finding] = forbidden(scan(scanner, "加V：abc123", platform="douyin", check_required=False))
    assert finding.text == "加V"


def test_normalize_phrase_drops_fillers_and_folds_case_width_and_script():
    assert normalize_phrase("穩-賺 ＡＢ c") == "稳赚abc"
    assert normalize_phrase("!!!") == ""


# -- allow-list and overlaps -------------------------------------------------------------------


def test_allow_list_negation_suppresses_only_the_covered_occurrence(scanner):
    text = "本产品不保本，但那个产品保本"
    [finding] = forbidden(scan(scanner, text, check_required=False))
    assert (finding.text, finding.start) == ("保本", 12)


def test_required_disclosure_does_not_trip_forbidden_words_inside_it():
    scanner = Scanner([LexiconEntry("保本", "forbidden", "block"),
                       LexiconEntry("本产品不保本", "required", "block")])
    result = scan(scanner, "提示：本产品不保本。")
    assert result.findings == ()
    assert not result.blocking


@pytest.mark.parametrize("text", ["无风险利率继续下行", "the risk-free rate fell", "资管新规打破刚兑以后",
                                  "There is no risk-free investment", "本产品不保证收益"])
def test_allow_listed_contexts_are_not_flagged(scanner, text):
    assert forbidden(scan(scanner, text, check_required=False)) == []


@pytest.mark.parametrize("text", ["第一季度营收增长", "最近市场波动较大", "稳健型配置为主",
                                  "我们最好不要追高", "本产品不保本", "这只基金不保证收益",
                                  "估值处于历史低位"])
def test_common_words_are_not_false_positives(scanner, text):
    assert forbidden(scan(scanner, text, check_required=False)) == []


def test_longer_forbidden_phrase_is_reported_once(scanner):
    [finding] = forbidden(scan(scanner, "稳赚不赔", check_required=False))
    assert finding.phrase == "稳赚不赔"


def test_shorter_blocking_phrase_inside_a_warning_phrase_is_still_reported():
    scanner = Scanner([LexiconEntry("保本", "forbidden", "block"),
                       LexiconEntry("保本型", "forbidden", "warn")])
    result = scan(scanner, "保本型产品", check_required=False)
    found = sorted((f.phrase, f.severity) for f in forbidden(result))
    assert found == [("保本", "block"), ("保本型", "warn")]


# -- required disclosures ----------------------------------------------------------------------


def test_missing_required_disclosure_is_a_blocking_finding_at_offset_zero(scanner):
    result = scan(scanner, "今天聊聊市场。", platform="douyin")
    missing = by_rule(result, "disclosure_missing")
    assert {f.phrase for f in missing} == {"投资有风险，入市需谨慎", "以上内容仅供参考，不构成投资建议"}
    assert all((f.start, f.end, f.text, f.severity) == (0, 0, "", "block") for f in missing)
    assert result.blocking


@pytest.mark.parametrize("risk_warning", ["投资有风险，入市需谨慎", "投资有风险 入市需谨慎",
                                          "投资有风险,入市需谨慎", "股市有风险，投资需谨慎",
                                          "投資有風險，入市需謹慎"])
def test_any_wording_of_a_required_group_satisfies_it(scanner, risk_warning):
    text = f"今天聊聊市场。{risk_warning}。仅供参考，不构成任何投资建议。"
    result = scan(scanner, text, platform="douyin")
    assert by_rule(result, "disclosure_missing") == []
    assert not result.blocking


def test_check_required_false_skips_presence_checks(scanner):
    result = scan(scanner, "今天聊聊市场。", advisor_name="张三", sac_number=SAC, check_required=False)
    assert result.findings == ()


def test_platform_scoped_required_text_applies_only_on_that_platform(scanner):
    kuaishou = by_rule(scan(scanner, DISCLOSURES, platform="kuaishou"), "disclosure_missing")
    assert [(f.severity, f.category) for f in kuaishou] == [("warn", "disclosure")]
    assert "合法证券期货经营机构" in kuaishou[0].phrase
    assert len(by_rule(scan(scanner, DISCLOSURES, platform=None), "disclosure_missing")) == 1
    assert by_rule(scan(scanner, DISCLOSURES, platform="douyin"), "disclosure_missing") == []


# -- SAC number and advisor name ---------------------------------------------------------------


@pytest.mark.parametrize("written", [SAC, "S0570 1190 10001", "Ｓ０５７０１１９０１０００１",
                                     "s0570119010001"])
def test_the_advisors_sac_number_satisfies_the_rule(scanner, written):
    result = scan(scanner, f"{DISCLOSURES}执业证书编号：{written}", sac_number=SAC, platform="douyin")
    assert result.findings == ()


def test_missing_sac_number_blocks(scanner):
    [finding] = by_rule(scan(scanner, DISCLOSURES, sac_number=SAC), "sac_missing")
    assert (finding.severity, finding.start, finding.end, finding.text) == ("block", 0, 0, "")


def test_another_advisors_sac_number_is_a_blocking_mismatch(scanner):
    text = f"{DISCLOSURES}编号S1234567890123"
    result = scan(scanner, text, sac_number=SAC, platform="douyin")
    [mismatch] = by_rule(result, "sac_mismatch")
    expected = ("S1234567890123", "block", len(DISCLOSURES) + 2)
    assert (mismatch.text, mismatch.severity, mismatch.start) == expected
    assert len(by_rule(result, "sac_missing")) == 1


def test_malformed_sac_number_warns_and_the_missing_number_blocks(scanner):
    text = f"{DISCLOSURES}编号S123"
    result = scan(scanner, text, sac_number=SAC, platform="douyin")
    [malformed] = by_rule(result, "sac_malformed")
    assert (malformed.text, malformed.severity) == ("S123", "warn")
    assert [f.rule for f in result.findings if f.severity == "block"] == ["sac_missing"]


def test_without_a_sac_argument_only_the_form_is_checked(scanner):
    result = scan(scanner, f"{DISCLOSURES}编号S05701190100012", platform="douyin")
    assert [f.rule for f in result.findings] == ["sac_malformed"]


def test_sac_number_argument_must_be_well_formed(scanner):
    with pytest.raises(ValueError, match="13 digits"):
        scanner.scan("x", sac_number="S123")


def test_advisor_name_must_appear(scanner):
    missing = scan(scanner, DISCLOSURES, advisor_name="张三", platform="douyin")
    assert [(f.rule, f.severity) for f in missing.findings] == [("advisor_name_missing", "block")]
    present = scan(scanner, DISCLOSURES + "主讲：张 三", advisor_name="张三", platform="douyin")
    assert present.findings == ()


# -- stock calls -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("我建议买入600519，长期看好", "买入600519"),
    ("贵州茅台现在可以加仓了", "贵州茅台现在可以加仓"),
    ("00700.HK 可以抄底", "00700.HK 可以抄底"),
    ("腾讯控股0700.HK上车", "腾讯控股0700.HK上车"),
    ("明天卖出 SZ000858", "卖出 SZ000858"),
    ("$AAPL buy now", "$AAPL buy"),
    ("I would buy TSLA today", "buy TSLA"),
    ("买入６００５１９", "买入６００５１９"),
    ("宁德时代，满仓！", "宁德时代，满仓"),
])
def test_security_next_to_a_trading_verb_is_a_blocking_stock_call(scanner, text, expected):
    result = scan(scanner, text, check_required=False)
    [call] = by_rule(result, "stock_call")
    assert (call.text, call.severity, call.category) == (expected, "block", "stock_tip")
    assert result.blocking


@pytest.mark.parametrize("text", [
    "长期持有优质资产，茅台酒很好喝",
    "买入300000元国债逆回购",
    "一季度营收600519万元，建议持有现金",
    "贵州茅台发布年报。明天买入新能源基金",
    "the buyer of AAPL",
    "BUY NOW and HOLD CASH",
    "ETF 定投，长期持有",
    "贵州茅台的品牌故事和历史传承非常悠久可以买入",
])
def test_no_stock_call_without_a_security_near_a_verb(scanner, text):
    assert by_rule(scan(scanner, text, check_required=False), "stock_call") == []


def test_one_verb_with_several_securities_is_one_finding(scanner):
    [call] = by_rule(scan(scanner, "买入600519和000858", check_required=False), "stock_call")
    assert call.text == "买入600519和000858"


# -- return percentages ------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected", "severity"), [
    ("这只产品年化收益率高达15%。", "年化收益率高达15%", "warn"),
    ("回报率 20 %", "回报率 20 %", "warn"),
    ("去年翻了 3 倍", "翻了 3 倍", "warn"),
    ("能拿到30%的收益", "30%的收益", "warn"),
    ("保证年化收益20%", "年化收益20%", "block"),
    ("you will earn 12% a year", "earn 12%", "block"),
    ("年化收益至少百分之八", "年化收益至少百分之八", "block"),
])
def test_return_figure_next_to_a_return_word_is_flagged(scanner, text, expected, severity):
    [finding] = by_rule(scan(scanner, text, check_required=False), "return_percentage")
    assert (finding.text, finding.severity, finding.category) == (expected, severity, "return_promise")


def test_promise_word_in_another_clause_does_not_escalate(scanner):
    result = scan(scanner, "年化收益率15%，我们保证服务质量", check_required=False)
    assert [f.severity for f in by_rule(result, "return_percentage")] == ["warn"]


@pytest.mark.parametrize("text", ["仓位控制在30%以内", "占比30%", "GDP增长5%"])
def test_percentages_without_return_words_are_not_flagged(scanner, text):
    assert by_rule(scan(scanner, text, check_required=False), "return_percentage") == []


# -- platform scoping --------------------------------------------------------------------------


def test_traffic_diversion_applies_only_on_scoped_platforms(scanner):
    text = "想要资料的加微信，然后进群看看"
    for platform in ("douyin", "kuaishou", None):
        found = [f.text for f in forbidden(scan(scanner, text, platform=platform, check_required=False))]
        assert found == ["加微信", "进群"]
    for platform in ("bilibili", "wechat_channels", "xiaohongshu"):
        assert forbidden(scan(scanner, text, platform=platform, check_required=False)) == []


def test_platform_scoped_allow_entry_does_not_apply_when_platform_is_unknown():
    scanner = Scanner([LexiconEntry("保本", "forbidden", "block")],
                      [AllowEntry("不保本", platforms=frozenset({"bilibili"}))])
    assert forbidden(scan(scanner, "不保本", platform="bilibili", check_required=False)) == []
    assert len(forbidden(scan(scanner, "不保本", platform=None, check_required=False))) == 1


def test_unknown_platform_is_rejected(scanner):
    with pytest.raises(ValueError, match="unknown platform"):
        scanner.scan("x", platform="weibo")


# -- CSV ---------------------------------------------------------------------------------------


def test_csv_bad_rows_are_reported_with_row_numbers_and_nothing_is_imported():
    long_phrase = "长" * 201
    text = "\n".join([
        "phrase,kind,severity,note",
        "稳赚,forbidden,block,ok",
        "保本,forbiden,block,typo in kind",
        "零风险,forbidden,fatal,bad severity",
        ",forbidden,block,empty phrase",
        f"{long_phrase},forbidden,warn,too long",
        "稳 赚,forbidden,warn,same phrase as row 2",
        "!!!,forbidden,warn,no letters",
        "必涨,forbidden,block,note,extra",
    ])
    entries, allows, errors = load_csv(text)
    assert (entries, allows) == ([], [])
    assert [e.row for e in errors] == [3, 4, 5, 6, 7, 8, 9]
    reasons = [e.reason for e in errors]
    assert "unknown kind" in reasons[0]
    assert "unknown severity" in reasons[1]
    assert reasons[2] == "empty phrase"
    assert "longer than 200" in reasons[3]
    assert "duplicate of row 2" in reasons[4]
    assert "no letters or digits" in reasons[5]
    assert "5 columns" in reasons[6]
    assert str(errors[0]).startswith("row 3: ")


def test_csv_with_only_the_contract_columns_loads():
    entries, allows, errors = load_csv("phrase,kind,severity,note\n稳赚,forbidden,block,promise\n"
                                       "\"投资有风险，入市需谨慎\",required,block,\n")
    assert errors == [] and allows == []
    assert [(e.phrase, e.kind, e.severity, e.category) for e in entries] == [
        ("稳赚", "forbidden", "block", "general"),
        ("投资有风险，入市需谨慎", "required", "block", "disclosure"),
    ]


def test_csv_extension_columns_allow_rows_groups_and_platforms_are_parsed():
    text = ("phrase,kind,severity,note,category,platforms,group\n"
            "加微信,forbidden,block,diversion,traffic_diversion,douyin|kuaishou,\n"
            "不保本,allow,,negation,,,\n"
            "股市有风险，投资需谨慎,required,block,,disclosure,,risk\n"
            "投资有风险，入市需谨慎,required,block,,disclosure,,risk\n")
    entries, allows, errors = load_csv(text)
    assert errors == []
    assert entries[0].platforms == frozenset({"douyin", "kuaishou"})
    assert entries[0].category == "traffic_diversion"
    assert [a.phrase for a in allows] == ["不保本"]
    assert [e.group for e in entries[1:]] == ["risk", "risk"]


def test_csv_header_must_start_with_the_contract_columns():
    _, _, errors = load_csv("kind,phrase,severity,note\n稳赚,forbidden,block,x\n")
    assert [e.row for e in errors] == [1]
    _, _, errors = load_csv("phrase,kind,severity,note,colour\n稳赚,forbidden,block,x,red\n")
    assert [e.row for e in errors] == [1]


def test_csv_rows_with_bad_platform_or_misplaced_group_are_rejected():
    text = ("phrase,kind,severity,note,category,platforms,group\n"
            "加微信,forbidden,block,,traffic_diversion,weibo,\n"
            "保本,forbidden,block,,return_promise,,g1\n")
    _, _, errors = load_csv(text)
    assert [(e.row, "platform" in e.reason or "group" in e.reason) for e in errors] == [(2, True), (3, True)]


def test_csv_blank_lines_are_skipped_but_keep_row_numbers():
    _, _, errors = load_csv("phrase,kind,severity,note\n\n稳赚,forbidden,nope,x\n")
    assert [e.row for e in errors] == [3]


def test_csv_file_path_with_bom_is_read(tmp_path):
    path = tmp_path / "lexicon.csv"
    path.write_bytes("\ufeffphrase,kind,severity,note\n稳赚,forbidden,block,x\n".encode())
    entries, _, errors = load_csv(path)
    assert errors == [] and [e.phrase for e in entries] == ["稳赚"]
    entries, _, errors = load_csv(str(path))
    assert errors == [] and len(entries) == 1


def test_csv_invalid_utf8_is_reported_with_its_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"phrase,kind,severity,note\n\xff\xfe,forbidden,block,x\n")
    entries, _, errors = load_csv(path)
    assert entries == [] and [e.row for e in errors] == [2] and "UTF-8" in errors[0].reason


def test_default_lexicon_is_valid_and_covers_every_category():
    entries, allows = load_default_lexicon()
    header = DEFAULT_LEXICON_PATH.read_text(encoding="utf-8").splitlines()[0]
    assert header == "phrase,kind,severity,note,category,platforms,group,suggestion"
    assert len([e for e in entries if e.kind == "forbidden"]) >= 80
    assert len(allows) >= 20
    assert {"return_promise", "stock_tip", "insider_info", "superlative", "traffic_diversion",
            "disparagement", "english_promise", "disclosure"} <= {e.category for e in entries}
    required = {e.phrase for e in entries if e.kind == "required"}
    assert {"投资有风险，入市需谨慎", "以上内容仅供参考，不构成投资建议"} <= required


# -- robustness and the Scanner object --------------------------------------------------------


def test_empty_text_reports_only_missing_required_items(scanner):
    result = scan(scanner, "", sac_number=SAC, platform="douyin")
    assert {f.rule for f in result.findings} == {"disclosure_missing", "sac_missing"}
    assert scan(scanner, "", check_required=False).findings == ()


def test_control_characters_and_lone_surrogates_do_not_crash(scanner):
    text = "\x00\x01稳\ud800赚\udfff\x7f\x1b[31m保\u202e本\U0010ffff\ufffe"
    result = scan(scanner, text, check_required=False)
    assert [f.phrase for f in forbidden(result)] == ["稳赚", "保本"]


def test_text_of_only_fillers_has_no_findings(scanner):
    assert scan(scanner, " ，。！\n\t😀😀\u200b", check_required=False).findings == ()


def test_one_megabyte_text_is_scanned_with_exact_offsets(scanner):
    chunk = "今天市场震荡，稳 赚不赔是假话。" + "平" * 84
    text = chunk * 10_000
    assert len(text) == 1_000_000
    result = scan(scanner, text, check_required=False)
    found = forbidden(result)
    assert len(found) == 10_000
    assert found[-1].start == len(text) - len(chunk) + chunk.index("稳")


def test_text_must_be_a_string(scanner):
    with pytest.raises(TypeError):
        scanner.scan(b"bytes")


def test_scanner_is_immutable_and_reusable(scanner):
    with pytest.raises(AttributeError):
        scanner._entries = ()
    first = scanner.scan("稳赚", check_required=False)
    scanner.scan("保本保息，加微信", check_required=False)
    assert scanner.scan("稳赚", check_required=False) == first


def test_invalid_entries_are_rejected():
    with pytest.raises(ValueError, match="no letters or digits"):
        LexiconEntry("!!!", "forbidden", "block")
    with pytest.raises(ValueError, match="unknown severity"):
        LexiconEntry("稳赚", "forbidden", "fatal")
    with pytest.raises(ValueError, match="unknown platform"):
        AllowEntry("不保本", platforms=frozenset({"weibo"}))


def test_result_serializes_to_the_contract_shape(scanner):
    data = scan(scanner, "稳赚", check_required=False).to_dict()
    assert data["blocking"] is True
    assert {"rule", "category", "severity", "start", "end", "text"} <= set(data["findings"][0])
    assert data["findings"][0]["text"] == "稳赚"


def test_findings_are_ordered_by_position(scanner):
    result = scan(scanner, "加微信。稳赚。保本。600519买入", platform="douyin", sac_number=SAC)
    starts = [f.start for f in result.findings]
    assert starts == sorted(starts)


def test_the_scanner_package_still_exports_every_name_of_the_former_single_module():
    import advisor_studio.compliance.scanner as package
    from advisor_studio.compliance.scanner import lexicon_csv, normalize, rules

    former = {
        "ALLOW", "BLOCK", "CSV_COLUMNS", "CSV_OPTIONAL_COLUMNS", "DEFAULT_CATEGORIES", "DEFAULT_LEXICON_PATH",
        "DEFAULT_WINDOW", "FORBIDDEN", "KINDS", "MAX_NOTE_LENGTH", "MAX_PHRASE_LENGTH", "MAX_SUGGESTION_LENGTH",
        "PLATFORMS", "REQUIRED", "SEVERITIES", "STOCK_NAMES", "TICKER_STOPWORDS", "TRADE_VERBS", "WARN",
        "AllowEntry", "CsvError", "Finding", "LexiconEntry", "ScanResult", "Scanner", "default_scanner",
        "load_csv", "load_default_lexicon", "normalize_phrase",
    }
    assert set(package.__all__) == former
    homes = (normalize, rules, lexicon_csv)
    for name in former:
        defined_in = [m for m in homes if name in vars(m) and vars(m)[name] is getattr(package, name)]
        assert defined_in, f"{name} is not the object of one of the concern modules"
    assert DEFAULT_LEXICON_PATH.is_file()
