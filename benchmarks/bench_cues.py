"""Benchmark the package page's cue table; prints figures only (no targets asserted).

A temporary SQLite database holds one package per size (no subtitles; 100 cues; 450, a 15-minute
video with a cue every 2 s; 1,000; 5,000; 20,000, the SRT parser's limit) made from a three-paragraph
script. Through the Flask test client, signed in as the author, each package is
- shown (GET: every cue as inputs, with the script line it matches),
- saved with the table unchanged and the caption changed (POST: the whole table is sent back, read,
  checked against the stored cues and the SRT file is kept as it is),
- saved with one cue's text edited (POST: the table is checked and written back as SRT),
and each figure is printed beside the same request for the package without subtitles, measured in the
same run (the ratio is what to compare between runs). Request bodies are encoded once, before timing.

Run: .venv/bin/python benchmarks/bench_cues.py [--quick]
"""

from __future__ import annotations

import hashlib
import logging
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_review_queue import build_app, sign_in  # noqa: E402 (the same temporary app and sign-in)

SIZES = (0, 100, 450, 1_000, 5_000, 20_000)
SCRIPT = ("大家好，我是投顾张三，执业证书编号S0000000000001。今天聊聊资产配置：分散投资、长期持有、控制回撤。\n"
          "债券基金波动较小，适合稳健配置。\n定期再平衡，量力而行。投资有风险，入市需谨慎。")
PHRASES = ("分散投资", "长期持有", "债券基金波动较小", "这只股票下周必有行情", "定期再平衡")


def srt_of(n: int) -> str:
    from advisor_studio.video.srt import serialize_srt

    return serialize_srt((i * 0.1, i * 0.1 + 0.08, f"{PHRASES[i % len(PHRASES)]}{i}") for i in range(n))


def fill(app) -> dict[int, int]:
    """One package per size; return {cues: package id}."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from advisor_studio.accounts import services as accounts
    from advisor_studio.extensions import db
    from advisor_studio.studio.models import Package, Script, ScriptRevision

    with app.app_context():
        logging.disable(logging.INFO)  # Alembic's progress lines are not figures
        upgrade()
        logging.disable(logging.NOTSET)
        advisor = accounts.create_user(email="advisor@bench.example.com", password="bench-password-1",
                                       roles=["advisor"], name="投顾张三", sac_number="S0000000000001", actor="bench")
        script = Script(author_id=advisor.id, title="资产配置三原则", body=SCRIPT, caption="", hashtags=[],
                        platforms=["douyin"], status="approved")
        db.session.add(script)
        db.session.flush()
        revision = ScriptRevision(script_id=script.id, number=1, title=script.title, body=SCRIPT, caption="",
                                  hashtags=[], platforms=["douyin"], sha256="0" * 64, created_by_id=advisor.id)
        db.session.add(revision)
        db.session.flush()
        ids = {}
        for n in SIZES:
            srt = srt_of(n) or None
            ids[n] = db.session.scalar(sa.insert(Package).values(
                author_id=advisor.id, script_id=script.id, script_revision_id=revision.id, title=f"{n} 条字幕",
                caption="长期投资", hashtags=[], status="draft", subtitles_srt=srt,
                subtitles_sha256=hashlib.sha256(srt.encode()).hexdigest() if srt else None).returning(Package.id))
        db.session.commit()
    return ids


def form_body(page: str, caption: str, edit: str | None = None) -> tuple[bytes, str]:
    """The package form of ``page`` as the browser posts it (multipart), with the caption changed and,
    with ``edit``, the first cue's text replaced."""
    from html import unescape

    from werkzeug.datastructures import MultiDict
    from werkzeug.test import encode_multipart

    def values(name: str) -> list[str]:
        if name == "cues-text":
            return [unescape(v) for v in re.findall(r'name="cues-text"[^>]*>([^<]*)</textarea>', page)]
        return [unescape(v) for v in re.findall(rf'name="{name}"\s+value="([^"]*)"', page)]

    fields = [("csrf_token", re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)),
              ("title", unescape(re.search(r'name="title"[^>]*value="([^"]*)"', page).group(1))),
              ("caption", caption), ("hashtags", ""), ("cover_time_s", "1.0"),
              ("cues-base", values("cues-base")[0])]
    texts = values("cues-text")
    if edit is not None and texts:
        texts[0] = edit
    for start, end, text in zip(values("cues-start"), values("cues-end"), texts, strict=True):
        fields += [("cues-start", start), ("cues-end", end), ("cues-text", text)]
    boundary, body = encode_multipart(MultiDict(fields))
    return body, f"multipart/form-data; boundary={boundary}"


def timed(fn, repeats: int) -> float:
    """Median milliseconds of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure(client, url: str, cues: int, repeats: int) -> tuple:
    """(page KB, form KB, GET ms, unchanged-table save ms, one-cue edit ms or None)."""
    page = client.get(url).get_data(as_text=True)
    assert page.count('data-testid="cue-row"') == cues + 1, (cues, page.count('data-testid="cue-row"'))
    saves = [form_body(page, f"文案{k}") for k in range(2)]  # alternate, so every save changes something
    turn = [0]

    def get():
        assert client.get(url).status_code == 200

    def post(body: bytes, ctype: str):
        resp = client.post(url, data=body, content_type=ctype)
        assert resp.status_code == 302, (resp.status_code, resp.get_data(as_text=True)[:300])

    def save():
        turn[0] += 1
        post(*saves[turn[0] % 2])

    get_ms, save_ms = timed(get, repeats), timed(save, repeats)  # before the edits, which change the table
    edit_ms = []
    for k in range(repeats if cues else 0):
        # Each edit is made on the page as it is after the previous one (a table made for older
        # subtitles is refused), so the page is read and the form encoded before the clock starts.
        body, ctype = form_body(client.get(url).get_data(as_text=True), "长期投资", edit=f"分散投资{k}")
        started = time.perf_counter()
        post(body, ctype)
        edit_ms.append((time.perf_counter() - started) * 1000)
    return (len(page) // 1024, len(saves[0][0]) // 1024, get_ms, save_ms,
            statistics.median(edit_ms) if edit_ms else None)


def main() -> None:
    quick = "--quick" in sys.argv
    with tempfile.TemporaryDirectory(prefix="bench-cues-") as tmp:
        app = build_app(Path(tmp))
        ids = fill(app)
        client = sign_in(app, "advisor@bench.example.com", "bench-password-1")
        rows = {}
        for n, package_id in ids.items():
            if quick and n > 5_000:
                continue
            rows[n] = measure(client, f"/studio/packages/{package_id}", n,
                              1 if n >= 5_000 else (3 if quick else 7))
        base = rows[0]
        print(f"{'cues':>6} {'page KB':>8} {'form KB':>8} {'GET ms':>9} {'x':>6} {'save ms':>9} {'x':>6}"
              f" {'edit ms':>9} {'x':>6}")
        for n, (page_kb, form_kb, get_ms, post_ms, edit_ms) in rows.items():
            edit = f"{edit_ms:>9.0f} {edit_ms / base[3]:>6.1f}" if edit_ms else f"{'—':>9} {'':>6}"
            print(f"{n:>6} {page_kb:>8} {form_kb:>8} {get_ms:>9.0f} {get_ms / base[2]:>6.1f} {post_ms:>9.0f}"
                  f" {post_ms / base[3]:>6.1f} {edit}")
        print("x: the request's time over the same request for the package without subtitles (first row).")
        with app.app_context():
            from advisor_studio.extensions import db

            db.engine.dispose()


if __name__ == "__main__":
    main()
