"""Benchmark webhook delivery: the due-events query over a long history, and sweep throughput to a real
HTTP receiver on loopback with one and with two concurrent sweepers. Prints figures only.

The outbox is filled with bulk inserts (foreign-key checks off for the fill: the rows only need the
shape of real ones): HISTORY delivered events, then PENDING due events spread over ASSETS assets (so the
per-asset order condition has work to do).

Run: .venv/bin/python benchmarks/bench_webhooks.py                    # temporary SQLite
     DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/adv_bench .venv/bin/python benchmarks/bench_webhooks.py
(the PostgreSQL database is emptied and migrated).
"""

from __future__ import annotations

import logging
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _setup import bench_app, fresh_schema  # noqa: E402  (benchmarks/ is on sys.path when a benchmark runs)

HISTORY = 50_000
PENDING = 2_000
ASSETS = 500
RUNS = 15


class Receiver:
    """Answers 200 at once; counts event ids."""

    def __init__(self):
        self.ids: Counter = Counter()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                event_id = body.split(b'"id":"', 1)[1].split(b'"', 1)[0].decode()
                with receiver.lock:
                    receiver.ids[event_id] += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def build_app(tmp: Path):
    return bench_app(tmp, os.environ.get("DATABASE_URL"))


migrate = fresh_schema


def fill(app, url: str, pending: int) -> None:
    """HISTORY delivered events and ``pending`` due ones (ids interleaved over ASSETS assets)."""
    import sqlalchemy as sa

    from advisor_studio.distribution.models import Partner, WebhookEvent
    from advisor_studio.extensions import db

    now = datetime.now(UTC) - timedelta(minutes=1)
    with app.app_context():
        partner = db.session.scalar(sa.select(Partner))
        if partner is None:
            partner = Partner(name="基准MCN", webhook_url=url, webhook_secret="bench-secret")
            db.session.add(partner)
            db.session.flush()
        partner.webhook_url = url
        db.session.commit()
        partner_id = partner.id

        def row(i: int, status: str) -> dict:
            event_id = "evt_" + secrets.token_hex(16)
            asset = i % ASSETS + 1
            return {"event_id": event_id, "partner_id": partner_id, "assignment_id": asset, "type": "asset.assigned",
                    "payload": {"id": event_id, "type": "asset.assigned", "created_at": now.isoformat(),
                                "data": {"asset_id": asset, "status": "ready", "takedown_due_at": None}},
                    "created_at": now, "status": status, "attempts": 1 if status == "delivered" else 0,
                    "next_attempt_at": None if status == "delivered" else now,
                    "delivered_at": now if status == "delivered" else None, "run": 1, "run_started_at": now}

        existing = db.session.scalar(sa.select(sa.func.count(WebhookEvent.id))) or 0
        with db.engine.connect() as conn:
            # No foreign-key checks for the fill (before any write: SQLite ignores the pragma in a transaction).
            if db.engine.dialect.name == "postgresql":
                conn.execute(sa.text("SET session_replication_role = replica"))
            else:
                conn.execute(sa.text("PRAGMA foreign_keys = OFF"))
            if not existing:
                for start in range(0, HISTORY, 5000):
                    conn.execute(sa.insert(WebhookEvent), [row(i, "delivered") for i in range(start, start + 5000)])
            conn.execute(sa.insert(WebhookEvent), [row(i, "pending") for i in range(pending)])
            if db.engine.dialect.name == "postgresql":
                conn.execute(sa.text("SET session_replication_role = DEFAULT"))
            conn.commit()
        db.engine.dispose()  # no pooled connection keeps the checks off


def due_query_ms(app) -> float:
    from advisor_studio.distribution import webhooks
    from advisor_studio.extensions import db

    times = []
    with app.app_context():
        for _ in range(RUNS):
            t0 = time.perf_counter()
            ids = webhooks.due_event_ids(datetime.now(UTC), limit=100)
            times.append((time.perf_counter() - t0) * 1000)
            db.session.rollback()
    assert len(ids) == min(100, ASSETS)  # one per asset: the rest wait for their predecessors
    return statistics.median(times)


def sweep(app, sweepers: int) -> float:
    """Seconds to deliver every pending event with ``sweepers`` concurrent sweeps (repeated until empty)."""
    from advisor_studio.distribution import tasks

    def run():
        with app.app_context():
            while sum(tasks.deliver_due().values()):
                pass

    t0 = time.perf_counter()
    threads = [threading.Thread(target=run) for _ in range(sweepers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - t0


def main() -> None:
    logging.disable(logging.WARNING)
    receiver = Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(Path(tmp))
        migrate(app)
        with app.app_context():
            from advisor_studio.extensions import db

            dialect = db.engine.dialect.name
        print(f"database: {dialect}; history {HISTORY:,} delivered events, {PENDING:,} pending over {ASSETS} assets")
        fill(app, receiver.url, PENDING)
        print(f"due-events query (first 100): median {due_query_ms(app):.1f} ms over {RUNS} runs")
        sweepers_list = (1, 2) if dialect == "postgresql" else (1,)
        for sweepers in sweepers_list:
            if sweepers > 1:
                fill(app, receiver.url, PENDING)
            receiver.ids.clear()
            seconds = sweep(app, sweepers)
            duplicates = sum(n - 1 for n in receiver.ids.values() if n > 1)
            print(f"sweep with {sweepers} sweeper(s): {len(receiver.ids):,} events in {seconds:.1f} s "
                  f"= {len(receiver.ids) / seconds:.0f} events/s; duplicates {duplicates}")
    receiver.server.shutdown()


if __name__ == "__main__":
    main()
