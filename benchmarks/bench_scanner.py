"""Benchmark the compliance scanner against a regex alternation; prints figures only.

Run: .venv/bin/python benchmarks/bench_scanner.py
"""

from __future__ import annotations

import random
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from advisor_studio.compliance.scanner import LexiconEntry, Scanner, load_default_lexicon, normalize  # noqa: E402

LEXICON_SIZE = 10_000
SCRIPT_CHARS = 5_000
HUGE_CHARS = 1_000_000
SEED = 20_241_125
SAC = "S0570119010001"
# Frequent simplified characters; synthetic phrases and filler prose are drawn from them.
COMMON = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面"
    "而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性"
    "好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第"
    "向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管"
    "特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处"
    "府研市场投顾基金股票收益风险配置长期价值指数行业周期"
)


def synthetic_lexicon(rng: random.Random) -> list[LexiconEntry]:
    """Return the default lexicon plus deterministic random phrases, LEXICON_SIZE entries in all."""
    entries, _ = load_default_lexicon()
    seen = {normalize.normalize_phrase(e.phrase) for e in entries}
    while len(entries) < LEXICON_SIZE:
        phrase = "".join(rng.choice(COMMON) for _ in range(rng.randint(3, 6)))
        if phrase not in seen:
            seen.add(phrase)
            entries.append(LexiconEntry(phrase, "forbidden", rng.choice(["block", "warn"]), "synthetic"))
    return entries


def synthetic_script(rng: random.Random, entries: list[LexiconEntry]) -> str:
    """Return a SCRIPT_CHARS-character script: prose, punctuation, a few hits and the disclosures."""
    default_hits = ["稳 赚", "保证收益", "内幕消息", "全网第一", "加微信", "建议买入600519",
                    "年化收益率高达15%"]
    synthetic_hits = [e.phrase for e in rng.sample(entries[-1000:], 5)]
    pieces: list[str] = []
    size = 0
    while size < SCRIPT_CHARS - 120:
        sentence = "".join(rng.choice(COMMON) for _ in range(rng.randint(8, 20)))
        if rng.random() < 0.05:
            sentence += rng.choice(default_hits + synthetic_hits)
        if rng.random() < 0.1:
            sentence += f" ETF {rng.randint(1, 99)}% "
        sentence += rng.choice("，，，。！")
        pieces.append(sentence)
        size += len(sentence)
    tail = f"张三 执业证书编号{SAC}。投资有风险，入市需谨慎。以上内容仅供参考，不构成投资建议。"
    text = "".join(pieces) + tail
    return text[-SCRIPT_CHARS:] if len(text) > SCRIPT_CHARS else text.rjust(SCRIPT_CHARS, "的")


def per_call_ms(func, min_seconds: float = 1.0, max_calls: int = 2000) -> tuple[float, int]:
    """Return the median ms per call over batches, and how many calls ran."""
    func()
    samples: list[float] = []
    calls = 0
    started = time.perf_counter()
    while calls < max_calls and (time.perf_counter() - started < min_seconds or calls < 3):
        t0 = time.perf_counter()
        func()
        samples.append((time.perf_counter() - t0) * 1000)
        calls += 1
    return statistics.median(samples), calls


def main() -> None:
    rng = random.Random(SEED)
    t0 = time.perf_counter()
    normalize._tables()
    tables_ms = (time.perf_counter() - t0) * 1000

    entries = synthetic_lexicon(rng)
    _, allows = load_default_lexicon()
    t0 = time.perf_counter()
    scanner = Scanner(entries, allows)
    build_ms = (time.perf_counter() - t0) * 1000
    script = synthetic_script(rng, entries)

    result = scanner.scan(script, sac_number=SAC, advisor_name="张三")
    scan_ms, scan_calls = per_call_ms(lambda: scanner.scan(script, sac_number=SAC, advisor_name="张三"))
    strict, _soft = normalize.views(script)
    norm_ms, _ = per_call_ms(lambda: normalize.views(script))

    keys = sorted({normalize.normalize_phrase(e.phrase) for e in entries}, key=len, reverse=True)
    t0 = time.perf_counter()
    alternation = re.compile("|".join(map(re.escape, keys)))
    re_build_ms = (time.perf_counter() - t0) * 1000
    re_ms, re_calls = per_call_ms(lambda: list(alternation.finditer(strict.text)), max_calls=50)
    re_hits = len(list(alternation.finditer(strict.text)))
    try:
        import regex
    except ImportError:
        regex = None
    if regex is not None:
        regex_alternation = regex.compile("|".join(map(regex.escape, keys)))
        regex_ms, regex_calls = per_call_ms(
            lambda: list(regex_alternation.finditer(strict.text, overlapped=True)), max_calls=50)

    import ahocorasick

    automaton = ahocorasick.Automaton()
    for number, key in enumerate(keys):
        automaton.add_word(key, number)
    automaton.make_automaton()
    pyac_ms, _ = per_call_ms(lambda: list(automaton.iter(strict.text)))
    pyac_hits = len(list(automaton.iter(strict.text)))
    try:
        import ahocorasick_rs
    except ImportError:
        ahocorasick_rs = None
    if ahocorasick_rs is not None:
        t0 = time.perf_counter()
        rs_automaton = ahocorasick_rs.AhoCorasick(keys)
        rs_build_ms = (time.perf_counter() - t0) * 1000
        rs_ms, _ = per_call_ms(lambda: rs_automaton.find_matches_as_indexes(strict.text, overlapping=True))
        rs_hits = len(rs_automaton.find_matches_as_indexes(strict.text, overlapping=True))
    t0 = time.perf_counter()
    rebuilt = ahocorasick.Automaton()
    for number, key in enumerate(keys):
        rebuilt.add_word(key, number)
    rebuilt.make_automaton()
    pyac_build_ms = (time.perf_counter() - t0) * 1000

    traditional = script.translate(str.maketrans("风险资收益为国门时个来对发会经进实动",
                                                 "風險資收益為國門時個來對發會經進實動"))
    trad_ms, _ = per_call_ms(lambda: scanner.scan(traditional, sac_number=SAC))

    huge = (script * (HUGE_CHARS // len(script) + 1))[:HUGE_CHARS]
    huge_ms, huge_calls = per_call_ms(lambda: scanner.scan(huge, sac_number=SAC), min_seconds=3, max_calls=5)
    huge_findings = len(scanner.scan(huge, sac_number=SAC).findings)
    strict_huge = normalize.views(huge)[0].text
    huge_pyac_ms, _ = per_call_ms(lambda: list(automaton.iter(strict_huge)), min_seconds=1, max_calls=5)
    if ahocorasick_rs is not None:
        huge_rs_ms, _ = per_call_ms(
            lambda: rs_automaton.find_matches_as_indexes(strict_huge, overlapping=True),
            min_seconds=1, max_calls=5)

    print(f"python {sys.version.split()[0]}")
    print(f"lexicon: {len(entries)} entries ({len(keys)} distinct normalized phrases), {len(allows)} allows")
    print(f"script: {len(script)} chars, normalized {len(strict.text)} chars, "
          f"{len(result.findings)} findings, blocking={result.blocking}")
    print(f"unicode tables, first use per process: {tables_ms:.1f} ms")
    print(f"Scanner build (10k entries): {build_ms:.1f} ms; bare pyahocorasick build {pyac_build_ms:.1f} ms")
    print(f"Scanner.scan, 5k chars: {scan_ms:.3f} ms/scan (median of {scan_calls})")
    print(f"  of which normalization (both views): {norm_ms:.3f} ms")
    print(f"Scanner.scan, 5k chars with traditional characters: {trad_ms:.3f} ms/scan")
    print(f"re alternation on normalized text: {re_ms:.3f} ms/scan (median of {re_calls}; "
          f"compile {re_build_ms:.0f} ms; {re_hits} non-overlapping hits)")
    print(f"  ratio re / Scanner.scan: {re_ms / scan_ms:.1f}x")
    if regex is not None:
        print(f"regex alternation (overlapped=True): {regex_ms:.3f} ms/scan (median of {regex_calls})")
        print(f"  ratio regex / Scanner.scan: {regex_ms / scan_ms:.1f}x")
    print(f"pyahocorasick raw match, 5k chars: {pyac_ms:.3f} ms ({pyac_hits} overlapping hits)")
    if ahocorasick_rs is not None:
        print(f"ahocorasick_rs raw match, 5k chars: {rs_ms:.3f} ms ({rs_hits} overlapping hits); "
              f"build {rs_build_ms:.1f} ms")
    print(f"Scanner.scan, 1 MB text: {huge_ms:.1f} ms/scan "
          f"(median of {huge_calls}; {huge_findings} findings)")
    print(f"pyahocorasick raw match, 1 MB: {huge_pyac_ms:.1f} ms")
    if ahocorasick_rs is not None:
        print(f"ahocorasick_rs raw match, 1 MB: {huge_rs_ms:.1f} ms")


if __name__ == "__main__":
    main()
