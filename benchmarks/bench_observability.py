"""What request ids, the JSON request line and the metrics cost the referral redirect; prints figures only.

One app on a temporary SQLite database serves GET /r/<code> in-process (Flask test client, so the
network and the server are out of the picture and only the app's own work is compared). Rounds
alternate between the app as configured and the same app with the observability hooks removed (the
baseline, measured in the same run); the JSON log lines go to /dev/null through the real formatter.
Printed: requests/s of both per round and the median ratio (observed / bare).

Run:   .venv/bin/python benchmarks/bench_observability.py [--quick]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
      "Mobile/15E148 MicroMessenger/8.0.44(0x18002c2f) NetType/WIFI Language/zh_CN")
HOOKS = ("start_request", "finish_request", "clear_request_id")


def build(tmp: Path):
    import subprocess

    env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp}/bench.db", INSTANCE_PATH=str(tmp / "instance"),
               APP_CONFIG="test")
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env,
                   check=True, capture_output=True)
    from advisor_studio import create_app
    from config import TestConfig

    cfg = TestConfig()
    cfg.SQLALCHEMY_DATABASE_URI = env["DATABASE_URL"]
    cfg.MEDIA_ROOT = str(tmp / "media")
    cfg.CLICK_SPOOL = "file"
    os.environ["INSTANCE_PATH"] = env["INSTANCE_PATH"]
    return create_app(cfg)


def make_code(app) -> str:
    from advisor_studio.accounts import services as accounts
    from advisor_studio.extensions import db
    from advisor_studio.referrals import services as referrals

    with app.app_context():
        owner = accounts.create_user(email="advisor.bench@example.com", password="Quiet-Lantern-Harbor-7",
                                     roles=["advisor"], name="王晓明", sac_number="S0000000000017", actor="bench")
        link = referrals.create_link(owner=owner, destination="https://kaihu.example.com/open", actor=owner)
        db.session.commit()
        return link.code


def strip_hooks(app) -> dict:
    """Remove the observability hooks; return them so they can be put back."""
    removed = {}
    for registry in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        funcs = registry.get(None, [])
        removed[id(registry)] = (registry, list(funcs))
        registry[None] = [f for f in funcs if getattr(f, "__name__", "") not in HOOKS]
    return removed


def restore(removed: dict) -> None:
    for registry, funcs in removed.values():
        registry[None] = funcs


def rate(client, code: str, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        resp = client.get(f"/r/{code}", headers={"User-Agent": UA})
        assert resp.status_code == 302
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds, n = (3, 300) if args.quick else (7, 2000)
    with tempfile.TemporaryDirectory(prefix="bench-obs-") as tmp:
        app = build(Path(tmp))
        code = make_code(app)
        from advisor_studio.observability.logs import configure_logging

        configure_logging("json", "INFO", stream=open(os.devnull, "w"))  # noqa: SIM115 - lives for the run
        logging.getLogger("flask-limiter").setLevel(logging.WARNING)
        client = app.test_client()
        rate(client, code, 50)  # warm the link cache and the spool
        ratios = []
        block = max(n // 10, 20)
        for i in range(rounds):
            # Ten alternating blocks per round: drift in a shared machine's load hits both sides alike.
            times = {"observed": 0.0, "bare": 0.0}
            for _ in range(n // block):
                times["observed"] += block / rate(client, code, block)
                removed = strip_hooks(app)
                times["bare"] += block / rate(client, code, block)
                restore(removed)
            observed, bare = n / times["observed"], n / times["bare"]
            ratios.append(observed / bare)
            print(f"round {i + 1}: observed {observed:8.0f} req/s   bare {bare:8.0f} req/s   "
                  f"ratio {observed / bare:.3f}")
        print(f"median ratio observed/bare: {statistics.median(ratios):.3f} over {rounds} rounds of {n} redirects")


if __name__ == "__main__":
    main()
