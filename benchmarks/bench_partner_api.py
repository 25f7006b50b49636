"""Benchmark the partner asset list (GET /api/v1/partner/assets) with 10,000 assigned assets; prints figures only.

With DATABASE_URL (PostgreSQL) a scratch database is created on that server, migrated, filled with
bulk inserts and dropped at the end; without it a temporary SQLite file is used. Requests go through
the Flask test client with a real API key. It times the first page and a deep page reached by following
the cursor, and prints p50/p95 of each, their ratio (keyset pagination: about 1.0) and SQL statements
per page.

Run: DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres .venv/bin/python benchmarks/bench_partner_api.py
     .venv/bin/python benchmarks/bench_partner_api.py --quick     # 1,000 assets, fewer runs
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _setup import bench_app  # noqa: E402  (benchmarks/ is on sys.path when a benchmark runs)

PLATFORMS = ("douyin", "kuaishou", "bilibili", "wechat_channels", "xiaohongshu")
PAGE = 20


@contextmanager
def scratch_database(tmp: Path):
    """A fresh database URL: a new database on DATABASE_URL's server, else a SQLite file."""
    url = os.environ.get("DATABASE_URL")
    if not url or not url.startswith("postgresql"):
        yield f"sqlite:///{tmp / 'bench.db'}", "SQLite"
        return
    import sqlalchemy as sa

    name = f"adv_bench_api_{os.getpid()}"
    server = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.engine.make_url(url).set(database=name).render_as_string(hide_password=False), "PostgreSQL"
    finally:
        with server.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


def build_app(tmp: Path, url: str):
    return bench_app(tmp, url, PARTNER_API_RATE_LIMIT="1000000 per minute")  # measuring the list, not the limiter


def fill(app, assets: int) -> str:
    """Bulk-insert approved packages on 5 channels each (5 assets a package); return an API key."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from advisor_studio.accounts import services as accounts
    from advisor_studio.compliance.models import Approval, Review
    from advisor_studio.dbtypes import utcnow
    from advisor_studio.distribution import services as distribution
    from advisor_studio.distribution.models import Assignment, Channel
    from advisor_studio.extensions import db
    from advisor_studio.studio.models import Package, Script, ScriptRevision, package_channels
    from advisor_studio.video.models import Rendition, SourceVideo

    with app.app_context():
        logging.disable(logging.INFO)  # Alembic's progress lines are not figures
        upgrade()
        logging.disable(logging.NOTSET)
        officer = accounts.create_user(email="officer@bench.example.com", password="bench-password-1",
                                       roles=["compliance"], name="合规专员", actor="bench")
        advisor = accounts.create_user(email="advisor@bench.example.com", password="bench-password-1",
                                       roles=["advisor"], name="投顾", sac_number="S9000000000001", actor="bench")
        partner, key = distribution.create_partner("星河MCN", [f"{p}:@bench-{p}" for p in PLATFORMS], actor="bench")
        channels = db.session.scalars(sa.select(Channel).where(Channel.partner_id == partner.id)).all()
        script = Script(author_id=advisor.id, title="资产配置三原则", body="分散投资、长期持有。", caption="",
                        hashtags=[], platforms=["douyin"], status="approved")
        db.session.add(script)
        db.session.flush()
        revision = ScriptRevision(script_id=script.id, number=1, title=script.title, body=script.body, caption="",
                                  hashtags=[], platforms=["douyin"], sha256="0" * 64, created_by_id=advisor.id)
        db.session.add(revision)
        db.session.flush()
        now = utcnow()
        packages_n = assets // len(channels)
        base = 1_000_000  # explicit ids far from anything create_user made
        rows: dict[str, list[dict]] = {k: [] for k in ("pkg", "link", "src", "ren", "rev", "apr", "asg")}
        for k in range(packages_n):
            pid = base + k
            approved = now - timedelta(minutes=packages_n - k)
            sha = f"{pid:064x}"
            manifest = {"stage": "package", "package_id": pid, "title": f"作品 {k:05d}", "caption": "长期投资",
                        "hashtags": ["理财"], "rendition_id": pid, "rendition_sha256": sha, "cover_sha256": None,
                        "lexicon_version": 1, "channel_ids": sorted(c.id for c in channels)}
            rows["pkg"].append({"id": pid, "author_id": advisor.id, "script_id": script.id,
                                "script_revision_id": revision.id, "title": manifest["title"], "caption": "长期投资",
                                "hashtags": ["理财"], "status": "approved", "created_at": approved,
                                "updated_at": approved})
            rows["link"] += [{"package_id": pid, "channel_id": c.id} for c in channels]
            rows["src"].append({"id": pid, "package_id": pid, "uploaded_by_id": advisor.id,
                                "storage_key": f"sources/{pid}.mp4", "sha256": sha, "size_bytes": 1000,
                                "original_name": "clip.mp4", "probe": {}, "duration_s": 30.0})
            rows["ren"].append({"id": pid, "package_id": pid, "source_id": pid, "status": "ready", "progress": 100.0,
                                "recipe": {"request": {"disclaimer": "投资有风险，入市需谨慎。"}}, "recipe_hash": sha,
                                "storage_key": f"renditions/{pid}.mp4", "sha256": sha, "size_bytes": 5_000_000,
                                "duration_s": 30.0, "width": 1080, "height": 1920})
            rows["rev"].append({"id": pid, "stage": "package", "script_id": script.id,
                                "script_revision_id": revision.id, "package_id": pid, "author_id": advisor.id,
                                "submitted_at": approved, "due_at": approved, "priority": 0, "manifest": manifest,
                                "manifest_sha256": sha, "decision": "approve", "decided_by_id": officer.id,
                                "decided_at": approved})
            rows["apr"].append({"id": pid, "review_id": pid, "stage": "package", "script_revision_id": revision.id,
                                "package_id": pid, "manifest": manifest, "manifest_sha256": sha,
                                "approved_by_id": officer.id, "approved_at": approved,
                                "expires_at": now + timedelta(days=90)})
            rows["asg"] += [{"approval_id": pid, "package_id": pid, "channel_id": c.id, "partner_id": partner.id,
                             "status": "ready", "created_at": approved, "status_changed_at": approved}
                            for c in channels]
        for table, key_ in ((Package, "pkg"), (package_channels, "link"), (SourceVideo, "src"), (Rendition, "ren"),
                            (Review, "rev"), (Approval, "apr"), (Assignment, "asg")):
            db.session.execute(sa.insert(table), rows[key_])
        db.session.execute(sa.update(Package).where(Package.id >= base).values(rendition_id=Package.id))
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE")  # as autovacuum would have done on a live database
        if os.environ.get("BENCH_EXPLAIN"):
            explain(app, partner.id)
        return key


def explain(app, partner_id: int) -> None:
    """Print the plan of the list query for the first page and a deep one (BENCH_EXPLAIN=1)."""
    import sqlalchemy as sa

    from advisor_studio.distribution.models import Assignment
    from advisor_studio.extensions import db

    top = db.session.scalar(sa.select(sa.func.max(Assignment.id)))
    for before in (None, top - 1000):
        stmt = sa.select(Assignment.id).where(Assignment.partner_id == partner_id)
        if before:
            stmt = stmt.where(Assignment.id < before)
        sql = stmt.order_by(Assignment.id.desc()).limit(21).compile(db.engine, compile_kwargs={"literal_binds": True})
        for row in db.session.execute(sa.text(f"EXPLAIN ANALYZE {sql}")):
            print("   ", row[0])


def timings(client, urls: list[str], headers: dict, runs: int) -> list[tuple[float, float, dict]]:
    """(p50 ms, p95 ms, last body) per URL; the URLs take turns so load from elsewhere hits them alike."""
    samples: list[list[float]] = [[] for _ in urls]
    bodies: list = [None for _ in urls]
    for _ in range(runs):
        for i, url in enumerate(urls):
            started = time.perf_counter()
            resp = client.get(url, headers=headers)
            samples[i].append((time.perf_counter() - started) * 1000)
            assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
            bodies[i] = resp.get_json()
    result = []
    for got, body in zip(samples, bodies, strict=True):
        got.sort()
        result.append((statistics.median(got), got[max(0, int(len(got) * 0.95) - 1)], body))
    return result


def statements(app, client, url: str, headers: dict) -> int:
    from sqlalchemy import event

    from advisor_studio.extensions import db

    with app.app_context():
        engine = db.engine
    count = [0]

    def record(*_args):
        count[0] += 1

    event.listen(engine, "before_cursor_execute", record)
    client.get(url, headers=headers)
    event.remove(engine, "before_cursor_execute", record)
    return count[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 assets, 10 pages deep, 20 runs")
    args = parser.parse_args()
    assets, depth, runs = (1_000, 10, 20) if args.quick else (10_000, 50, 100)
    with tempfile.TemporaryDirectory(prefix="bench-partner-api-") as tmp, scratch_database(Path(tmp)) as (url, kind):
        app = build_app(Path(tmp), url)
        started = time.perf_counter()
        key = fill(app, assets)
        print(f"{kind}: {assets} assigned assets inserted in {time.perf_counter() - started:.1f} s")
        client = app.test_client()
        headers = {"Authorization": f"Bearer {key}"}
        first_url = f"/api/v1/partner/assets?limit={PAGE}"
        client.get(first_url, headers=headers)  # warm-up (and the key's last-used write)
        body = client.get(first_url, headers=headers).get_json()
        for _ in range(depth - 1):
            body = client.get(f"{first_url}&cursor={body['next_cursor']}", headers=headers).get_json()
        deep_url = f"{first_url}&cursor={body['next_cursor']}"
        (first_p50, first_p95, first), (deep_p50, deep_p95, deep) = timings(client, [first_url, deep_url], headers,
                                                                            runs)
        print(f"{'page':<28} {'items':>5} {'queries':>8} {'p50 ms':>8} {'p95 ms':>8}")
        print(f"{'first page':<28} {len(first['items']):>5} {statements(app, client, first_url, headers):>8} "
              f"{first_p50:>8.1f} {first_p95:>8.1f}")
        print(f"{f'page {depth + 1} (by cursor)':<28} {len(deep['items']):>5} "
              f"{statements(app, client, deep_url, headers):>8} {deep_p50:>8.1f} {deep_p95:>8.1f}")
        print(f"ratio deep/first: p50 {deep_p50 / first_p50:.2f}, p95 {deep_p95 / first_p95:.2f}")
        with app.app_context():
            from advisor_studio.extensions import db

            db.session.remove()
            db.engine.dispose()


if __name__ == "__main__":
    main()
