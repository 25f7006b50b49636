"""Benchmark a reconciliation upload at the row cap; prints figures only.

A temporary SQLite database (or DATABASE_URL) is migrated and filled with N customers whose
account_opened conversions fall in November (a tenth of them rejected afterwards). A CSV of 200,000 rows
(the default cap) in GBK is reconciled through the real service (spool, encoding detection, parsing,
keyed hashing, matching, storing the file, the row and its audit entry).

Baseline, measured in the same run: the irreducible part, reading the same bytes with csv.reader and
hashing every reference with the same HMAC. Printed: both times and their ratio, and the size of the
stored result.

Run: .venv/bin/python benchmarks/bench_reconciliation.py [--quick]   (--quick: 20,000 rows)
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    rows = 20_000 if "--quick" in sys.argv else 200_000
    tmp = Path(tempfile.mkdtemp(prefix="bench-recon-"))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp / 'bench.db'}")
    os.environ.update({"APP_CONFIG": "test", "MEDIA_ROOT": str(tmp / "media"), "INSTANCE_PATH": str(tmp / "inst"),
                       "RATELIMIT_STORAGE_URI": "memory://", "STORAGE_BACKEND": "local"})
    from flask_migrate import upgrade

    from advisor_studio import create_app
    from advisor_studio.analytics import reconciliation
    from advisor_studio.extensions import db
    from advisor_studio.referrals.conversions import _customer_ref_key, customer_ref_hash
    from advisor_studio.referrals.models import Conversion, Customer
    from tests.factories import make_user

    app = create_app()
    with app.app_context():
        upgrade()
        admin = make_user("admin")
        here = rows * 9 // 10  # 90 % of their rows are recorded here; a few more here only
        start = datetime(2026, 11, 1, 2, tzinfo=UTC)
        db.session.execute(sa_insert(Customer), [
            {"ref_hash": customer_ref_hash(f"K{n:08d}"), "is_employee": False, "created_at": start}
            for n in range(here + 1000)])
        ids = dict(db.session.execute(sa_select(Customer.ref_hash, Customer.id)).all())
        events = []
        for n in range(here + 1000):
            when = start + timedelta(seconds=n * 10)
            customer = ids[customer_ref_hash(f"K{n:08d}")]
            events.append({"idempotency_key": f"o{n}", "body_sha256": "0" * 64, "response": {},
                           "event": "account_opened", "customer_id": customer, "occurred_at": when,
                           "day": when.date(), "received_at": when, "currency": "CNY", "is_employee": False})
            if n % 10 == 0:
                events.append({**events[-1], "idempotency_key": f"r{n}", "event": "account_rejected",
                               "occurred_at": when + timedelta(hours=1), "received_at": when})
        db.session.execute(sa_insert(Conversion), events)
        db.session.commit()
        lines = ["客户编号,开户日期,金额"] + [f"K{n:08d},2026-11-{1 + n * 10 // 86400 % 28:02d},1000.00"
                                             for n in range(rows)]
        data = ("\r\n".join(lines) + "\r\n").encode("gbk")

        t0 = time.perf_counter()
        key = _customer_ref_key()
        reader = csv.reader(io.StringIO(data.decode("gbk"), newline=""))
        next(reader)
        hashes = [hmac.new(key, r[0].encode(), hashlib.sha256).hexdigest() for r in reader]
        baseline = time.perf_counter() - t0
        assert len(hashes) == rows

        profiler = None
        if os.environ.get("BENCH_PROFILE"):
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        t0 = time.perf_counter()
        upload = reconciliation.create_upload(io.BytesIO(data), "bench.csv", period_from=datetime(2026, 11, 1).date(),
                                              period_to=datetime(2026, 11, 30).date(), actor=admin)
        db.session.commit()
        elapsed = time.perf_counter() - t0
        if profiler is not None:
            import pstats

            profiler.disable()
            pstats.Stats(profiler).sort_stats(os.environ.get("BENCH_PROFILE", "tottime")).print_stats(25)
        result_bytes = len(json.dumps(upload.result))
        print(f"rows in file: {rows}, openings here: {here + 1000} (every tenth rejected), "
              f"database: {db.engine.dialect.name}")
        print(f"encoding {upload.encoding}: matched {upload.matched}, missing here {upload.missing_here}, "
              f"missing there {upload.missing_there}")
        print(f"baseline (decode + csv.reader + HMAC of every reference): {baseline * 1000:.0f} ms")
        print(f"reconciliation upload (spool, detect, parse, hash, match, store, audit): {elapsed * 1000:.0f} ms")
        print(f"ratio upload / baseline: {elapsed / baseline:.1f}x; stored result {result_bytes / 1024:.0f} KiB")


def sa_insert(model):
    import sqlalchemy as sa

    return sa.insert(model)


def sa_select(*columns):
    import sqlalchemy as sa

    return sa.select(*columns)


if __name__ == "__main__":
    main()
