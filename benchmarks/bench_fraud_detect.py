"""Benchmark fraud detection; prints figures only (ratios against a plain query in the same run).

A database is migrated and filled with bulk inserts: 20 advisors with 10 links each, CLICKS clicks
spread evenly over DAYS days from many visitors and networks, 2 % of them followed by a signup (an
ordinary lag of minutes to days), plus planted patterns in the last day: visitor bursts, network
bursts, fast signups and a signup burst. Then, for the beat run (the last two hours) and for one
whole day, it times ``fraud.detect`` (rolled back after each run, so every run does the full work of
a first detection) against the baseline: a plain GROUP BY over exactly the clicks and signups of the
same window (the least any detector must read). Printed: median ms of each and their ratio, and the
flags found per kind (the planted ones must all be there).

Run: .venv/bin/python benchmarks/bench_fraud_detect.py [--clicks N] [--days D]
     [--database-url postgresql+psycopg://.../EMPTY_DB --reset]   (--reset drops that database's schema)
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _setup import bench_app  # noqa: E402  (benchmarks/ is on sys.path when a benchmark runs)

SEED = 20_261_130
RUNS = 5
ADVISORS = 20
LINKS_PER_ADVISOR = 10
PLANTED = {"visitor_burst": 30, "network_burst": 5, "short_lag": 40, "signup_burst": 3}


def build_app(tmp: Path, url: str | None):
    return bench_app(tmp, url)


def fill(app, clicks: int, days: int, end: datetime) -> None:
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from advisor_studio.accounts import services as accounts
    from advisor_studio.extensions import db
    from advisor_studio.referrals import services as referrals
    from advisor_studio.referrals.models import Click, Conversion, Customer

    rng = random.Random(SEED)
    with app.app_context():
        logging.disable(logging.INFO)
        upgrade()
        logging.disable(logging.NOTSET)
        links = []
        for i in range(ADVISORS):
            advisor = accounts.create_user(email=f"a{i}@bench.example.com", password="bench-password-1",
                                           roles=["advisor"], name=f"投顾{i:02d}", sac_number=f"S{9_100_000 + i:013d}",
                                           actor="bench")
            links += [referrals.create_link(owner=advisor, actor=advisor, destination="https://kaihu.example.com/o")
                      for _ in range(LINKS_PER_ADVISOR)]
        db.session.commit()
        owners = {link.id: link.owner_id for link in links}
        link_ids = list(owners)
        start = end - timedelta(days=days)
        step = (end - start) / clicks
        n = [0]

        def click(at, link_id, visitor, prefix, device="mobile"):
            n[0] += 1
            return {"click_id": f"b{n[0]:020d}", "at": at, "day": at.date(), "link_id": link_id,
                    "advisor_id": owners[link_id], "is_bot": False, "is_head": False, "is_duplicate": False,
                    "in_app": "wechat", "device_class": device, "visitor_hash": f"{visitor:032x}"[-32:],
                    "ip_prefix": prefix}

        def net() -> str:
            return f"10.{rng.randrange(256)}.{rng.randrange(256)}.0/24"

        signups: list[tuple[dict, float]] = []
        batch = []
        for i in range(clicks):
            row = click(start + step * i, rng.choice(link_ids), rng.getrandbits(120), net(),
                        rng.choice(("mobile", "mobile", "desktop", "tablet")))
            batch.append(row)
            if rng.random() < 0.02:
                signups.append((row, rng.uniform(120, 3 * 86400)))
            if len(batch) == 10_000:
                db.session.execute(sa.insert(Click), batch)
                batch = []
        last_day = end - timedelta(hours=20)
        for b in range(PLANTED["visitor_burst"]):
            link_id, visitor, at = rng.choice(link_ids), rng.getrandbits(120), last_day + timedelta(minutes=17 * b)
            batch += [click(at + timedelta(seconds=20 * k), link_id, visitor, net()) for k in range(25)]
        for b in range(PLANTED["network_burst"]):
            prefix, at = f"192.0.{b}.0/24", end - timedelta(minutes=30 + 13 * b)
            batch += [click(at + timedelta(seconds=4 * k), rng.choice(link_ids), rng.getrandbits(120), prefix)
                      for k in range(120)]
        for b in range(PLANTED["short_lag"]):
            row = click(end - timedelta(minutes=100 - 2 * b), rng.choice(link_ids), rng.getrandbits(120), net())
            batch.append(row)
            signups.append((row, rng.uniform(1, 8)))
        for b in range(PLANTED["signup_burst"]):
            prefix, at = f"198.51.{b}.0/24", end - timedelta(minutes=90 - 20 * b)
            for k in range(6):
                row = click(at + timedelta(seconds=30 * k), rng.choice(link_ids), rng.getrandbits(120), prefix)
                batch.append(row)
                signups.append((row, 60.0))
        db.session.execute(sa.insert(Click), batch)
        customers, conversions = [], []
        for k, (row, _lag) in enumerate(signups):
            customers.append({"ref_hash": f"{k:064d}", "link_id": row["link_id"], "click_id": row["click_id"],
                              "attributed_at": row["at"], "is_employee": k % 97 == 0})
        db.session.execute(sa.insert(Customer), customers)
        customer_id = dict(db.session.execute(sa.select(Customer.ref_hash, Customer.id)).all())
        for k, (row, lag) in enumerate(signups):
            at = row["at"] + timedelta(seconds=lag)
            conversions.append({"idempotency_key": f"k{k}", "body_sha256": "0" * 64, "response": {}, "event": "signup",
                                "customer_id": customer_id[f"{k:064d}"], "occurred_at": at, "day": at.date(),
                                "currency": "CNY", "is_employee": k % 97 == 0, "link_id": row["link_id"],
                                "advisor_id": row["advisor_id"]})
        for chunk in range(0, len(conversions), 10_000):
            db.session.execute(sa.insert(Conversion), conversions[chunk:chunk + 10_000])
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("VACUUM ANALYZE"))


def baseline(start: datetime, end: datetime) -> None:
    """The plain GROUP BY: every click and signup of the window read once, counted per visitor and network."""
    import sqlalchemy as sa

    from advisor_studio.extensions import db
    from advisor_studio.referrals.models import Click, Conversion

    scan = start - timedelta(minutes=10)
    window = [Click.day.between(scan.date(), end.date()), Click.at >= scan, Click.at < end]
    db.session.execute(sa.select(Click.link_id, Click.visitor_hash, sa.func.count()).where(*window)
                       .group_by(Click.link_id, Click.visitor_hash)).all()
    db.session.execute(sa.select(Click.ip_prefix, sa.func.count()).where(*window).group_by(Click.ip_prefix)).all()
    db.session.execute(sa.select(Conversion.advisor_id, sa.func.count()).where(
        Conversion.day.between(scan.date(), end.date()), Conversion.occurred_at >= scan, Conversion.occurred_at < end)
        .group_by(Conversion.advisor_id)).all()


def timed(fn, *args) -> float:
    from advisor_studio.extensions import db

    started = time.perf_counter()
    fn(*args)
    elapsed = (time.perf_counter() - started) * 1000
    db.session.rollback()
    return elapsed


def measure(app, label: str, start: datetime, end: datetime, *, commit: bool = False) -> None:
    """Time a first detection over [start, end) (each run rolled back); with ``commit`` keep the last one."""
    from advisor_studio.analytics import fraud
    from advisor_studio.extensions import db

    with app.app_context():
        timed(fraud.detect, start, end)  # warm the caches for both
        detect_ms = statistics.median(timed(fraud.detect, start, end) for _ in range(RUNS))
        base_ms = statistics.median(timed(baseline, start, end) for _ in range(RUNS))
        result = fraud.detect(start, end)
        db.session.commit() if commit else db.session.rollback()
    found = ", ".join(f"{k}={v}" for k, v in sorted(result.raised.items()))
    print(f"{label:<28} {detect_ms:>10.1f} {base_ms:>12.1f} {detect_ms / base_ms:>7.1f}x   {found}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clicks", type=int, default=300_000)
    parser.add_argument("--days", type=int, default=6)
    parser.add_argument("--database-url")
    parser.add_argument("--reset", action="store_true", help="drop the schema of --database-url first")
    parser.add_argument("--quick", action="store_true", help="30,000 clicks (what `make bench` runs)")
    args = parser.parse_args()
    if args.quick:
        args.clicks = min(args.clicks, 30_000)
    if args.database_url and args.reset:
        import sqlalchemy as sa

        engine = sa.create_engine(args.database_url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()
    end = datetime(2026, 11, 20, 12, tzinfo=UTC)
    with tempfile.TemporaryDirectory(prefix="bench-fraud-") as tmp:
        app = build_app(Path(tmp), args.database_url)
        started = time.perf_counter()
        fill(app, args.clicks, args.days, end)
        with app.app_context():
            from advisor_studio.extensions import db

            dialect = db.engine.dialect.name
        print(f"setup ({dialect}): {args.clicks:,} clicks over {args.days} days + planted patterns, "
              f"{time.perf_counter() - started:.1f} s; planted: {PLANTED}")
        print(f"{'window':<28} {'detect ms':>10} {'baseline ms':>12} {'ratio':>8}   flags raised")
        measure(app, "beat run (last 2 hours)", end - timedelta(hours=2), end, commit=True)
        # The steady state: the next beat run finds the same patterns already flagged.
        measure(app, "beat run again (all known)", end - timedelta(hours=2), end)
        day = datetime.combine((end - timedelta(days=1)).date(), datetime.min.time(), UTC)
        measure(app, "one whole day", day, day + timedelta(days=1))
        with app.app_context():
            from advisor_studio.extensions import db

            db.engine.dispose()


if __name__ == "__main__":
    main()
