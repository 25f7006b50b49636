"""Analytics at scale: generate clicks and conversions in PostgreSQL, rebuild the rollups, and time the
funnel queries against a plain GROUP BY on the raw tables in the same run. Prints figures only.

Data: 200 advisors, 3 community groups and 10 links each (2,000 links, 600 groups, 4 campaigns), clicks
spread over 90 days (5 % bots), and one conversion for every 20 clicks (signups, openings, funding with
amounts, first trades, a few rejections and withdrawals) on 1 customer per 2 conversions. The data is
made in steps (``--steps 1,3,10`` million clicks), each added to the last, and measured after each step,
so the trend from 1 M to 10 M clicks is one run.

Measured at each step (median of ``--repeat`` runs after one warm-up; a query whose runs pass BUDGET_S
seconds stops there, after at least 3):
- one advisor's funnel over 90 days: ``queries.funnel(advisor, ...)`` (what the pages, CSV and CLI run),
  against the same figures straight from ``clicks`` and ``conversions`` (with their (advisor, day)
  indexes);
- everyone's funnel over 90 days by community group: ``queries.funnel(None, ..., by="group")`` against
  a GROUP BY group over the raw tables;
- the rollup rebuild of the 90 days after the step (``rollups.rebuild``), the recompute of one day (what
  the refresh does every minute for today), and the row counts of both rollup tables.

Run:   DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/adv_bench_analytics \\
       .venv/bin/python benchmarks/bench_analytics.py --reset-database [--steps 1,3,10] [--quick]
(the database is emptied first; ``--quick``: 0.2 M clicks, one step, for a smoke run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ADVISORS = 200
GROUPS_PER_ADVISOR = 3
LINKS_PER_ADVISOR = 10
DAYS = 90
CAMPAIGNS = ("双十一", "开门红", "春季理财", None)
CLICKS_PER_CONVERSION = 20


def _reset(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


def _migrate(env: dict) -> None:
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env,
                   check=True, capture_output=True)


def _world(db) -> None:
    """Advisors, groups and links (once)."""
    from advisor_studio.referrals.models import CommunityGroup, ReferralLink
    from tests.factories import make_user

    for a in range(ADVISORS):
        advisor = make_user("advisor", email=f"bench-advisor-{a}@example.com", name=f"投顾{a:03d}")
        groups = []
        for g in range(GROUPS_PER_ADVISOR):
            group = CommunityGroup(owner_id=advisor.id, platform="wecom", name=f"投顾{a:03d}的{g + 1}群",
                                   member_count=200)
            db.session.add(group)
            groups.append(group)
        db.session.flush()
        for n in range(LINKS_PER_ADVISOR):
            group = groups[n % GROUPS_PER_ADVISOR] if n < 2 * GROUPS_PER_ADVISOR else None
            db.session.add(ReferralLink(
                code=f"b{a:03d}{n:02d}x", kind="group" if group else "general", owner_id=advisor.id,
                group_id=group.id if group else None, campaign=CAMPAIGNS[n % len(CAMPAIGNS)],
                destination="https://kaihu.example.com/open", utm={}))
        db.session.flush()
    db.session.commit()


def _bulk_load(db) -> None:
    """Skip the foreign-key checks for the rest of this transaction (superuser only): the generated rows
    take their links, advisors and groups from referral_links, and the per-row checks were half the time
    of loading clicks (8 of 17 s per 200 k). The indexes are kept up to date as in production."""
    db.session.execute(sa.text("SET LOCAL session_replication_role = replica"))


def _add_clicks(db, first: int, count: int) -> None:
    """``count`` clicks numbered from ``first``, one INSERT ... SELECT per million (all in SQL)."""
    step = 1_000_000
    for start in range(first, first + count, step):
        end = min(start + step, first + count) - 1
        _bulk_load(db)
        db.session.execute(sa.text("""
            WITH links AS (SELECT row_number() OVER (ORDER BY id) - 1 AS n, id, owner_id, group_id, campaign
                           FROM referral_links),
                 total AS (SELECT count(*) AS c FROM links),
                 g AS (SELECT i, now() - (hashint4(i) & 2147483647)::float8 / 2147483647 * interval '90 days' AS at
                       FROM generate_series(:start, :end) AS i)
            INSERT INTO clicks (click_id, at, day, link_id, advisor_id, group_id, campaign, is_bot, is_head,
                                is_duplicate, in_app, device_class, visitor_hash, ip_prefix)
            SELECT 'bench' || g.i, g.at, (g.at AT TIME ZONE 'Asia/Shanghai')::date, l.id, l.owner_id, l.group_id,
                   l.campaign, g.i % 20 = 0, false, g.i % 7 = 0, 'wechat', CASE WHEN g.i % 20 = 0 THEN 'bot'
                   ELSE 'mobile' END, md5((g.i / 3)::text)::varchar(32), '203.0.' || (g.i % 250) || '.0/24'
            FROM g CROSS JOIN total JOIN links l ON l.n = (hashint4(g.i * 31) & 2147483647) % total.c
        """), {"start": start, "end": end})
        db.session.commit()


def _add_conversions(db, first_click: int, clicks: int) -> None:
    """One conversion per CLICKS_PER_CONVERSION new clicks, on the clicked link, 2 per customer."""
    _bulk_load(db)
    db.session.execute(sa.text("""
        INSERT INTO customers (ref_hash, link_id, click_id, attributed_at, is_employee, created_at)
        SELECT md5('customer' || c.i), cl.link_id, cl.click_id, cl.at, c.i % 200 = 0, cl.at
        FROM generate_series(:first, :last, :per) AS c(i) JOIN clicks cl ON cl.click_id = 'bench' || c.i
    """), {"first": first_click, "last": first_click + clicks - 1, "per": 2 * CLICKS_PER_CONVERSION})
    db.session.execute(sa.text("""
        INSERT INTO conversions (idempotency_key, body_sha256, response, event, customer_id, occurred_at, day,
                                 received_at, amount, currency, is_employee, link_id, advisor_id, group_id, campaign)
        SELECT 'bench-' || cu.id || '-' || e.k, md5(cu.id::text || '-' || e.k::text), '{}'::json,
               (ARRAY['signup', 'account_opened', 'funded', 'first_trade', 'account_rejected',
                      'withdrawal'])[CASE WHEN e.k = 0 THEN 1
                                          WHEN cu.id % 13 = 0 THEN 5 WHEN cu.id % 11 = 0 THEN 6
                                          ELSE 2 + cu.id % 3 END],
               cu.id, cl.at + interval '5 minutes' * (e.k + 1),
               ((cl.at + interval '5 minutes' * (e.k + 1)) AT TIME ZONE 'Asia/Shanghai')::date, now(),
               CASE WHEN e.k = 1 AND cu.id % 13 <> 0 AND (cu.id % 11 = 0 OR cu.id % 3 = 1)
                    THEN 1000 + cu.id % 50000 END, 'CNY', cu.is_employee, cl.link_id, cl.advisor_id,
               cl.group_id, cl.campaign
        FROM customers cu JOIN clicks cl ON cl.click_id = cu.click_id CROSS JOIN (VALUES (0), (1)) AS e(k)
        WHERE cu.ref_hash IN (SELECT md5('customer' || c.i) FROM generate_series(:first, :last, :per) AS c(i))
    """), {"first": first_click, "last": first_click + clicks - 1, "per": 2 * CLICKS_PER_CONVERSION})
    db.session.commit()


BUDGET_S = 90  # a query slower than this over its runs is measured fewer times (never fewer than 3)


def _median_ms(fn, repeat: int) -> float:
    fn()  # warm-up: plans and caches, as a page served a second time
    times = []
    while len(times) < repeat and (len(times) < 3 or sum(times) < BUDGET_S * 1000):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


PLAIN_ONE_ADVISOR = sa.text("""
    SELECT (SELECT count(*) FILTER (WHERE NOT is_bot AND NOT is_head) FROM clicks
             WHERE advisor_id = :a AND day BETWEEN :f AND :t) AS clicks,
           (SELECT count(*) FROM (SELECT DISTINCT link_id, day, visitor_hash FROM clicks
             WHERE advisor_id = :a AND day BETWEEN :f AND :t AND NOT is_bot AND NOT is_head) v) AS visitors,
           (SELECT json_object_agg(event, n) FROM (SELECT event, count(*) AS n FROM conversions
             WHERE advisor_id = :a AND day BETWEEN :f AND :t AND NOT is_employee GROUP BY event) e) AS events
""")

PLAIN_BY_GROUP = sa.text("""
    SELECT c.group_id, c.clicks, c.visitors, e.events FROM
      (SELECT group_id, count(*) AS clicks, count(DISTINCT (link_id, day, visitor_hash)) AS visitors FROM clicks
        WHERE day BETWEEN :f AND :t AND NOT is_bot AND NOT is_head GROUP BY group_id) c
      LEFT JOIN (SELECT group_id, json_object_agg(event, n) AS events FROM
                  (SELECT group_id, event, count(*) AS n FROM conversions
                    WHERE day BETWEEN :f AND :t AND NOT is_employee GROUP BY group_id, event) x
                 GROUP BY group_id) e ON e.group_id IS NOT DISTINCT FROM c.group_id
""")


def measure(app, total_clicks: int, repeat: int) -> dict:
    from advisor_studio.analytics import queries, rollups
    from advisor_studio.dbtypes import business_today
    from advisor_studio.extensions import db

    with app.app_context():
        to = business_today()
        since = to - timedelta(days=DAYS - 1)
        started = time.perf_counter()
        rollups.rebuild(since - timedelta(days=1), to)
        db.session.commit()
        rebuild_s = time.perf_counter() - started
        # What the minute's refresh costs at this size: recomputing one whole day (today).
        started = time.perf_counter()
        rollups.rebuild(to, to)
        db.session.commit()
        day_s = time.perf_counter() - started
        # What autovacuum does within a minute of a rebuild on a server with its defaults (the rebuild
        # deletes every rollup row it replaces); this machine runs PostgreSQL with autovacuum off, and
        # the first 10 M run measured rollup tables holding more dead rows than live ones.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        counts = {name: db.session.scalar(sa.text(f"SELECT count(*) FROM {name}"))
                  for name in ("clicks", "conversions", "analytics_daily", "analytics_advisor_daily")}
        advisor = db.session.scalar(sa.text("SELECT min(id) FROM users WHERE email LIKE 'bench-advisor-%'"))

        def funnel_one():
            queries.funnel(advisor, since, to, compare=False)

        def plain_one():
            db.session.execute(PLAIN_ONE_ADVISOR, {"a": advisor, "f": since, "t": to}).all()

        def funnel_groups():
            queries.funnel(None, since, to, by="group", compare=False)

        def plain_groups():
            db.session.execute(PLAIN_BY_GROUP, {"f": since, "t": to}).all()

        # Sanity: the rollups and the raw tables agree on the advisor's clicks (same question, two ways).
        rolled = queries.funnel(advisor, since, to, compare=False).total.clicks
        raw = db.session.execute(PLAIN_ONE_ADVISOR, {"a": advisor, "f": since, "t": to}).one().clicks
        assert rolled == raw, (rolled, raw)
        result = {
            "clicks": counts["clicks"], "conversions": counts["conversions"], "rollup_rows": counts["analytics_daily"],
            "slice_rows": counts["analytics_advisor_daily"],
            "rebuild_s": rebuild_s, "day_s": day_s,
            "one_ms": _median_ms(funnel_one, repeat), "one_plain_ms": _median_ms(plain_one, repeat),
            "groups_ms": _median_ms(funnel_groups, repeat), "groups_plain_ms": _median_ms(plain_groups, repeat),
        }
        db.session.rollback()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reset-database", action="store_true", help="empty the PostgreSQL DATABASE_URL first")
    parser.add_argument("--steps", default="1,3,10", help="million clicks after each step, e.g. 1,3,10")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="0.2 M clicks, one step")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgresql"):
        sys.exit("DATABASE_URL must name a PostgreSQL database (it is emptied with --reset-database)")
    if not args.reset_database:
        sys.exit("pass --reset-database: the run starts from an empty database")
    steps = [0.2] if args.quick else [float(s) for s in args.steps.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="bench-analytics-"))
    env = dict(os.environ, APP_CONFIG="default", SECRET_KEY="bench-secret-key-" + "x" * 32,
               INSTANCE_PATH=str(tmp / "instance"), MEDIA_ROOT=str(tmp / "media"), RATELIMIT_STORAGE_URI="memory://",
               LOG_LEVEL="WARNING")
    os.environ.update(env)
    _reset(url)
    _migrate(env)
    from advisor_studio import create_app
    from advisor_studio.extensions import db

    app = create_app()
    with app.app_context():
        _world(db)
    print(f"PostgreSQL, {ADVISORS} advisors, {ADVISORS * LINKS_PER_ADVISOR} links, "
          f"{ADVISORS * GROUPS_PER_ADVISOR} groups, {DAYS} days; medians of {args.repeat} runs")
    made = 0
    for step in steps:
        target = int(step * 1_000_000)
        started = time.perf_counter()
        with app.app_context():
            _add_clicks(db, made + 1, target - made)
            _add_conversions(db, made + 1, target - made)
        generate_s = time.perf_counter() - started
        made = target
        r = measure(app, made, args.repeat)
        print(f"\n{r['clicks'] / 1e6:.1f} M clicks, {r['conversions'] / 1e3:.0f} k conversions, "
              f"{r['rollup_rows'] / 1e3:.0f} k rollup rows + {r['slice_rows'] / 1e3:.0f} k advisor slices "
              f"(generated in {generate_s:.0f} s, rollups rebuilt in {r['rebuild_s']:.1f} s, "
              f"one day recomputed in {r['day_s']:.2f} s)")
        print(f"  one advisor, 90 days:   funnel {r['one_ms']:7.1f} ms   plain GROUP BY {r['one_plain_ms']:7.1f} ms"
              f"   ratio {r['one_ms'] / r['one_plain_ms']:.3f}")
        print(f"  everyone by group:      funnel {r['groups_ms']:7.1f} ms   "
              f"plain GROUP BY {r['groups_plain_ms']:7.1f} ms"
              f"   ratio {r['groups_ms'] / r['groups_plain_ms']:.3f}")


if __name__ == "__main__":
    main()
