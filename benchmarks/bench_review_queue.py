"""Benchmark the compliance review queue page over 10,000 open package reviews; prints figures only.

A temporary SQLite database is migrated, filled with bulk inserts (advisors, scripts, 10,000
packages on channels, 10,000 open reviews, some claimed), and the queue page is rendered through
the Flask test client as a signed-in compliance officer. For each page it prints the number of
SQL statements and the median milliseconds per render.

Run: .venv/bin/python benchmarks/bench_review_queue.py
"""

from __future__ import annotations

import logging
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _setup import bench_app  # noqa: E402  (benchmarks/ is on sys.path when a benchmark runs)

PACKAGES = 10_000
ADVISORS = 20
RUNS = 15
SEED = 20_261_125
PLATFORMS = ("douyin", "kuaishou", "bilibili", "wechat_channels", "xiaohongshu")


def build_app(tmp: Path):
    return bench_app(tmp)


def fill(app) -> tuple[str, str]:
    """Bulk-insert the queue; return the officer's email and password."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from advisor_studio.accounts import services as accounts
    from advisor_studio.compliance.models import Review
    from advisor_studio.dbtypes import utcnow
    from advisor_studio.distribution.models import Channel, Partner
    from advisor_studio.extensions import db
    from advisor_studio.studio.models import Package, Script, ScriptRevision, package_channels

    rng = random.Random(SEED)
    with app.app_context():
        logging.disable(logging.INFO)  # Alembic's progress lines are not figures
        upgrade()
        logging.disable(logging.NOTSET)
        officer = accounts.create_user(email="officer@bench.example.com", password="bench-password-1",
                                       roles=["compliance"], name="合规专员", actor="bench")
        advisors = [accounts.create_user(email=f"advisor{i}@bench.example.com", password="bench-password-1",
                                         roles=["advisor"], name=f"投顾{i:02d}", sac_number=f"S{9_000_000 + i:013d}",
                                         actor="bench") for i in range(ADVISORS)]
        partner = Partner(name="星河MCN")
        db.session.add(partner)
        db.session.flush()
        channels = [Channel(partner_id=partner.id, platform=p, handle=f"bench-{p}") for p in PLATFORMS]
        db.session.add_all(channels)
        db.session.flush()
        now = utcnow()
        revisions = []
        for advisor in advisors:
            script = Script(author_id=advisor.id, title="资产配置三原则", body="分散投资、长期持有。", caption="",
                            hashtags=[], platforms=["douyin"], status="approved")
            db.session.add(script)
            db.session.flush()
            revision = ScriptRevision(script_id=script.id, number=1, title=script.title, body=script.body,
                                      caption="", hashtags=[], platforms=["douyin"], sha256="0" * 64,
                                      created_by_id=advisor.id)
            db.session.add(revision)
            db.session.flush()
            revisions.append((advisor.id, script.id, revision.id))
        first_id = (db.session.scalar(sa.select(sa.func.max(Package.id))) or 0) + 1
        packages, links, reviews = [], [], []
        for k in range(PACKAGES):
            author_id, script_id, revision_id = revisions[k % ADVISORS]
            package_id = first_id + k
            submitted = now - timedelta(minutes=rng.randint(0, 7 * 24 * 60))
            packages.append({"id": package_id, "author_id": author_id, "script_id": script_id,
                             "script_revision_id": revision_id, "title": f"作品包 {k:05d}", "caption": "长期投资",
                             "hashtags": ["理财"], "status": "submitted", "priority": rng.choice((0, 0, 0, 1)),
                             "created_at": submitted, "updated_at": submitted})
            for channel in rng.sample(channels, rng.randint(1, 3)):
                links.append({"package_id": package_id, "channel_id": channel.id})
            claimed = rng.random() < 0.1
            reviews.append({"stage": "package", "script_id": script_id, "script_revision_id": revision_id,
                            "package_id": package_id, "author_id": author_id, "submitted_at": submitted,
                            "due_at": submitted + timedelta(hours=48), "priority": packages[-1]["priority"],
                            "manifest": {"stage": "package", "package_id": package_id, "lexicon_version": 1},
                            "manifest_sha256": f"{package_id:064x}",
                            "claimed_by_id": officer.id if claimed else None,
                            "claimed_until": now + timedelta(minutes=30) if claimed else None})
        db.session.execute(sa.insert(Package), packages)
        db.session.execute(sa.insert(package_channels), links)
        db.session.execute(sa.insert(Review), reviews)
        db.session.commit()
    return "officer@bench.example.com", "bench-password-1"


def sign_in(app, email: str, password: str):
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)
    resp = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert resp.status_code == 302, resp.status_code
    return client


def measure(app, client, url: str) -> tuple[int, float, int]:
    """(statements per render, median ms per render, rows shown)."""
    from sqlalchemy import event

    from advisor_studio.extensions import db

    with app.app_context():
        engine = db.engine
    count = [0]

    def record(*_args):
        count[0] += 1

    resp = client.get(url)  # warm-up
    assert resp.status_code == 200, resp.status_code
    rows = resp.get_data(as_text=True).count('data-testid="queue-row"')
    event.listen(engine, "before_cursor_execute", record)
    client.get(url)
    event.remove(engine, "before_cursor_execute", record)
    timings = []
    for _ in range(RUNS):
        started = time.perf_counter()
        client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
    return count[0], statistics.median(timings), rows


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-queue-") as tmp:
        app = build_app(Path(tmp))
        started = time.perf_counter()
        email, password = fill(app)
        print(f"setup: {PACKAGES} packages + open reviews inserted in {time.perf_counter() - started:.1f} s")
        client = sign_in(app, email, password)
        print(f"{'page':<44} {'rows':>5} {'queries':>8} {'ms/render':>10}")
        for label, url in [
            ("page 1, 25 per page", "/compliance/queue?per_page=25"),
            ("page 1, 50 per page", "/compliance/queue?per_page=50"),
            ("page 200, 50 per page (last)", "/compliance/queue?per_page=50&page=200"),
            ("page 1, 100 per page", "/compliance/queue?per_page=100"),
            ("page 1, 50 per page, platform=bilibili", "/compliance/queue?per_page=50&platform=bilibili"),
            ("page 1, 50 per page, overdue only", "/compliance/queue?per_page=50&overdue=1"),
            ("landing page (compliance section)", "/"),
        ]:
            queries, ms, rows = measure(app, client, url)
            shown = "" if url == "/" else rows
            print(f"{label:<44} {shown!s:>5} {queries:>8} {ms:>10.1f}")
        with app.app_context():
            from advisor_studio.extensions import db

            db.engine.dispose()


if __name__ == "__main__":
    main()
