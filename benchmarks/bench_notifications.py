"""Benchmark notifications at volume; prints figures (ratios against baselines measured in the same run).

A fresh database (a temporary SQLite file, or the empty database named by BENCH_DATABASE_URL, e.g. a
PostgreSQL one made for the run) is migrated and filled with 200,000 notifications over 500 users; the
user measured has 20,000, of which 50 are unread. Figures:

- the bell: the unread COUNT on the partial index, against a bare `SELECT 1` round trip, and against the
  same COUNT once the partial index is dropped (what the index buys);
- the /notifications page and the /account/password page (same layout, no list) rendered through the test
  client, median milliseconds and their ratio;
- one page of rows as the page reads them (ids from the index, then rows) against whole rows ordered by
  id (which PostgreSQL may answer by walking the primary key backwards past everyone else's rows);
- notify() to 40 officers (a submission) against notify() to one user (a decision), each rolled back.

Run: .venv/bin/python benchmarks/bench_notifications.py
     BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/adv_bench .venv/bin/python benchmarks/...
"""

from __future__ import annotations

import logging
import os
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

USERS = 500
TOTAL = 200_000
MINE = 20_000
MINE_UNREAD = 50
OFFICERS = 40
RUNS = 200
PAGE_RUNS = 40
SEED = 20_261_130


def build_app(tmp: Path):
    return bench_app(tmp, os.environ.get("BENCH_DATABASE_URL"))


def fill(app) -> tuple[int, list[int]]:
    """Users and notifications by bulk insert; return the measured user's id and the officers' ids."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from advisor_studio.accounts.models import User, UserRole
    from advisor_studio.dbtypes import utcnow
    from advisor_studio.extensions import db
    from advisor_studio.notifications.models import Notification

    rng = random.Random(SEED)
    with app.app_context():
        logging.disable(logging.INFO)
        upgrade()
        logging.disable(logging.NOTSET)
        if db.session.scalar(sa.select(sa.func.count()).select_from(User)):
            raise SystemExit("BENCH_DATABASE_URL must name an empty database")
        from advisor_studio.accounts import services as accounts

        me = accounts.create_user(email="me@bench.example.com", password="bench-password-1", roles=["advisor"],
                                  name="投顾", sac_number="S0000000900001", actor="bench")
        db.session.flush()
        hashed = me.password_hash
        db.session.execute(sa.insert(User), [{"email": f"u{i}@bench.example.com", "name": f"用户{i}",
                                              "password_hash": hashed, "session_token": f"t{i}"}
                                             for i in range(USERS - 1)])
        others = list(db.session.scalars(sa.select(User.id).where(User.id != me.id).order_by(User.id)))
        officers = others[:OFFICERS]
        db.session.execute(sa.insert(UserRole), [{"user_id": uid, "role": "compliance"} for uid in officers])
        now = utcnow()
        rows = []
        for n in range(TOTAL):
            mine = n < MINE
            params = {"stage": "script", "title": f"脚本{n}", "author": "投顾", "due_at": now.isoformat()}
            rows.append({"recipient_id": me.id if mine else rng.choice(others), "kind": "review_due",
                         "object_type": "review", "object_id": n + 1, "params": params,
                         "created_at": now - timedelta(seconds=TOTAL - n),
                         "read_at": None if ((n >= MINE - MINE_UNREAD) if mine else rng.random() < 0.05) else now})
            if len(rows) == 10_000:
                db.session.execute(sa.insert(Notification), rows)
                rows = []
        if rows:
            db.session.execute(sa.insert(Notification), rows)
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE notifications")
        else:
            db.session.execute(sa.text("ANALYZE"))
            db.session.commit()
        return me.id, officers


def median_ms(fn, runs: int = RUNS) -> float:
    for _ in range(5):
        fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def sign_in(app):
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    resp = client.post("/login", data={"email": "me@bench.example.com", "password": "bench-password-1",
                                       "csrf_token": token})
    assert resp.status_code == 302, resp.status_code
    return client


def main() -> None:
    import sqlalchemy as sa

    from advisor_studio.extensions import db
    from advisor_studio.notifications import queries, services

    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(Path(tmp))
        started = time.perf_counter()
        me, officers = fill(app)
        with app.app_context():
            dialect = db.engine.dialect.name
        print(f"database: {dialect}; {TOTAL} notifications over {USERS} users inserted in "
              f"{time.perf_counter() - started:.1f} s; the user measured has {MINE}, {MINE_UNREAD} unread")

        with app.app_context():
            assert queries.unread_count(me) == MINE_UNREAD
            base = median_ms(lambda: db.session.execute(sa.text("SELECT 1")).scalar())
            bell = median_ms(lambda: queries.unread_count(me))
            db.session.execute(sa.text("DROP INDEX ix_notifications_unread"))
            db.session.commit()
            no_index = median_ms(lambda: queries.unread_count(me), runs=40)
            db.session.execute(sa.text("CREATE INDEX ix_notifications_unread ON notifications (recipient_id) "
                                       "WHERE read_at IS NULL"))
            db.session.commit()
        print(f"bell COUNT: {bell:.3f} ms = {bell / base:.1f} x a SELECT 1 round trip ({base:.3f} ms); "
              f"without the partial index {no_index:.3f} ms ({no_index / bell:.1f} x slower)")

        with app.app_context():
            from advisor_studio.notifications.models import Notification

            whole = (sa.select(Notification).where(Notification.recipient_id == me)
                     .order_by(Notification.id.desc()).limit(25))
            ids = (sa.select(Notification.id).where(Notification.recipient_id == me)
                   .order_by(Notification.id.desc()).limit(25))

            def ids_then_rows():
                wanted = db.session.scalars(ids).all()
                return db.session.scalars(sa.select(Notification).where(Notification.id.in_(wanted))).all()

            naive = median_ms(lambda: db.session.scalars(whole).all(), runs=40)
            by_ids = median_ms(ids_then_rows, runs=40)
        print(f"page 1 rows: ids from the index, then the rows: {by_ids:.2f} ms; whole rows "
              f"ORDER BY id DESC LIMIT 25: {naive:.2f} ms ({naive / by_ids:.1f} x)")

        client = sign_in(app)
        page = median_ms(lambda: client.get("/notifications"), runs=PAGE_RUNS)
        plain = median_ms(lambda: client.get("/account/password"), runs=PAGE_RUNS)
        print(f"/notifications page 1 of {MINE // app.config['PAGE_SIZE']}: {page:.1f} ms; /account/password "
              f"(same layout and bell, no list): {plain:.1f} ms; ratio {page / plain:.2f}")

        with app.app_context():
            def fan_out(recipients):
                def run():
                    services.notify("review_due", recipients, object_type="review", object_id=1,
                                    params={"stage": "script", "title": "脚本", "author": "投顾",
                                            "due_at": "2026-12-01T00:00:00+00:00"})
                    db.session.rollback()
                return run

            one = median_ms(fan_out([me]), runs=100)
            many = median_ms(fan_out(officers), runs=100)
        print(f"notify(): one recipient {one:.2f} ms, {OFFICERS} recipients {many:.2f} ms "
              f"({many / one:.1f} x one, {many / OFFICERS:.3f} ms a row)")


if __name__ == "__main__":
    main()
