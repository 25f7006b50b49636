"""Benchmark GET /r/<code> against a bare Flask route returning the same 302; prints figures only.

One gunicorn (the repository's gunicorn.conf.py, 2 workers) serves the real app plus a bare route
``/bare/<code>`` that returns the same 302 (same Location shape, same Cache-Control) without looking
anything up or recording anything. The same load generator (wrk if installed, else Python threads)
hits both in alternating rounds on the same server, while a drain process moves spooled clicks into the
database every second, as celery beat would. Printed: requests/s of both per round, the median ratio, and two
reconciliations: 302s counted by wrk vs clicks stored (wrk abandons the requests in flight when it
stops, so stored may exceed counted by at most the connections, never fall short), and an exact one:
N requests each read to the end, their click ids all stored once.

Run:   .venv/bin/python benchmarks/bench_redirect.py [--quick]                (SQLite in a temp dir)
       DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/adv_bench \\
       .venv/bin/python benchmarks/bench_redirect.py --reset-database [--quick]  (emptied first!)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import insert as sa_insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
      "Mobile/15E148 MicroMessenger/8.0.44(0x18002c2f) NetType/WIFI Language/zh_CN")
WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) redirects = 0; others = 0 end
function response(status, headers, body)
  if status == 302 then redirects = redirects + 1 else others = others + 1 end
end
function done(summary, latency, requests)
  local r, o = 0, 0
  for _, t in ipairs(threads) do r = r + t:get("redirects"); o = o + t:get("others") end
  io.write(string.format("COUNTS %d %d\\n", r, o))
end
"""


def bench_app():
    """The real app plus the bare baseline route (gunicorn 'bench_redirect:bench_app()')."""
    from flask import Response

    from advisor_studio import create_app
    from advisor_studio.access import public

    app = create_app()
    location = os.environ["BENCH_LOCATION"]

    @app.route("/bare/<code>", methods=["GET", "HEAD"])
    @public
    def bare(code):
        resp = Response(status=302)
        resp.headers["Location"] = location
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.route("/insert/<code>", methods=["GET", "HEAD"])
    @public
    def insert_each(code):
        """Option A for comparison: the same redirect with one INSERT (and commit) per request."""
        from flask import current_app, request

        from advisor_studio.dbtypes import utcnow
        from advisor_studio.extensions import db
        from advisor_studio.referrals import clicks, redirect
        from advisor_studio.referrals.models import Click

        link = redirect._cached_link(code)
        click_id = clicks.new_click_id()
        row = clicks.click_row(link=link, approval_id=None, click_id=click_id, at=utcnow(),
                               address=request.remote_addr, ua=request.headers.get("User-Agent", ""),
                               is_head=False, is_duplicate=False, secret=current_app.config["SECRET_KEY"])
        db.session.execute(sa_insert(Click), [clicks._parse(json.dumps(row).encode())])
        db.session.commit()
        resp = Response(status=302)
        before, after = link["location"]
        resp.headers["Location"] = before + click_id + after
        resp.headers["Cache-Control"] = "no-store"
        return resp

    return app


def _env(tmp: Path, database_url: str) -> dict:
    env = dict(os.environ, APP_CONFIG="default", SECRET_KEY="bench-secret-key-" + "x" * 32,
               DATABASE_URL=database_url, INSTANCE_PATH=str(tmp / "instance"), MEDIA_ROOT=str(tmp / "media"),
               RATELIMIT_STORAGE_URI="memory://", PYTHONPATH=str(ROOT))
    env.pop("CELERY_RESULT_BACKEND", None)
    return env


def prepare(tmp: Path, env: dict, reset: bool) -> tuple[str, str, str]:
    """Migrate, create an advisor and two links; return (code, insert-route code, bare location)."""
    import sqlalchemy as sa

    url = env["DATABASE_URL"]
    if url.startswith("postgresql"):
        if not reset:
            sys.exit("DATABASE_URL names PostgreSQL: pass --reset-database (it empties that database)")
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env,
                   check=True, capture_output=True)
    os.environ.update(env)
    from advisor_studio import create_app
    from advisor_studio.accounts import services as accounts
    from advisor_studio.extensions import db
    from advisor_studio.referrals import services as referrals

    app = create_app()
    with app.app_context():
        advisor = accounts.create_user(email="advisor@bench.example.com", password="bench-password-1",
                                       roles=["advisor"], name="投顾", sac_number="S0000009000001", actor="bench")
        link = referrals.create_link(owner=advisor, destination="https://kaihu.example.com/open?src=bench",
                                     actor=advisor, utm={"utm_source": "wechat", "utm_medium": "group"},
                                     campaign="bench")
        other = referrals.create_link(owner=advisor, destination="https://kaihu.example.com/open?src=bench",
                                      actor=advisor, utm={"utm_source": "wechat", "utm_medium": "group"},
                                      campaign="bench")
        db.session.commit()
        code, other_code = link.code, other.code
        location = referrals.destination_with(link, "A" * 22)
        db.engine.dispose()
    return code, other_code, location


def start_server(env: dict, port: int, workers: int, threads: int, log: Path) -> subprocess.Popen:
    """gunicorn with the repository's gunicorn.conf.py, as deployed (gthread workers, the app's JSON access
    line per request), but with worker recycling off: a worker replaced mid-round would lose its warm
    caches and its CPU figures. The log goes to a file, as journald would take it."""
    import requests

    server_env = dict(env, WEB_CONCURRENCY=str(workers), GUNICORN_THREADS=str(threads), GUNICORN_MAX_REQUESTS="0",
                      BIND=f"127.0.0.1:{port}")
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
             "--pythonpath", str(ROOT / "benchmarks"), "--backlog", "2048", "bench_redirect:bench_app()"],
            cwd=ROOT, env=server_env, start_new_session=True, stdout=out, stderr=out)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/bare/x", timeout=10, allow_redirects=False)
            return proc
        except requests.RequestException:
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    sys.exit("gunicorn did not start")


def drain_forever() -> None:
    """A long-lived process draining every second, as the celery beat task in a worker does."""
    from advisor_studio import create_app
    from advisor_studio.referrals import clicks

    app = create_app()
    with app.app_context():
        while True:
            clicks.drain(app)
            time.sleep(1.0)


def start_drainer(env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--drain-forever"], cwd=ROOT, env=env,
                            start_new_session=True)


def server_cpu_seconds(master_pid: int) -> float:
    """User + system CPU of the gunicorn master and its workers so far (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    pids = [master_pid]
    try:
        for task in Path(f"/proc/{master_pid}/task").iterdir():
            pids += [int(p) for p in (task / "children").read_text().split()]
    except OSError:
        return 0.0
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def load_wrk(url: str, seconds: float, connections: int, script: Path) -> tuple[float, int, int]:
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script),
                          "-H", f"User-Agent: {UA}", url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    redirects, others = map(int, re.search(r"COUNTS (\d+) (\d+)", out).groups())
    return rps, redirects, others


def load_python(url: str, seconds: float, connections: int, _script=None) -> tuple[float, int, int]:
    import requests

    stop = time.monotonic() + seconds
    counts = {"r": 0, "o": 0}
    lock = threading.Lock()

    def worker():
        session = requests.Session()
        while time.monotonic() < stop:
            resp = session.get(url, headers={"User-Agent": UA}, allow_redirects=False, timeout=30)
            with lock:
                counts["r" if resp.status_code == 302 else "o"] += 1

    start = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    return (counts["r"] + counts["o"]) / elapsed, counts["r"], counts["o"]


def stored_clicks(env: dict, code: str) -> set[str]:
    """The click ids stored for the link ``code`` after a drain."""
    import sqlalchemy as sa

    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "links", "drain"], cwd=ROOT, env=env,
                   check=True, capture_output=True)
    engine = sa.create_engine(env["DATABASE_URL"])
    with engine.connect() as conn:
        ids = {row[0] for row in conn.execute(sa.text(
            "SELECT click_id FROM clicks JOIN referral_links l ON l.id = clicks.link_id WHERE l.code = :c"),
            {"c": code})}
    engine.dispose()
    return ids


def exact_reconciliation(base: str, code: str, n: int, env: dict) -> tuple[int, int, int]:
    """(302s, their click ids found stored once, clicks stored beyond them) for n fully read requests."""
    import requests

    before = stored_clicks(env, code)

    def one(_i):
        resp = requests.get(f"{base}/r/{code}", headers={"User-Agent": UA}, allow_redirects=False, timeout=30)
        return parse_qs(urlsplit(resp.headers["Location"]).query)["click_id"][0] if resp.status_code == 302 else None

    with ThreadPoolExecutor(max_workers=16) as pool:
        given = [cid for cid in pool.map(one, range(n)) if cid]
    new = stored_clicks(env, code) - before
    return len(given), len(set(given) & new), len(new - set(given))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short rounds")
    parser.add_argument("--reset-database", action="store_true", help="empty the PostgreSQL DATABASE_URL first")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (GUNICORN_THREADS)")
    parser.add_argument("--python-load", action="store_true", help="use the Python load generator even with wrk")
    parser.add_argument("--no-drain", action="store_true",
                        help="no drain during the load (it runs once at the end): shows what draining costs")
    parser.add_argument("--no-insert", action="store_true", help="skip the one-INSERT-per-request comparison")
    parser.add_argument("--drain-forever", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drain_forever:
        drain_forever()
        return
    rounds = args.rounds or (2 if args.quick else 8)
    seconds = args.seconds or (3 if args.quick else 5)
    exact_n = 300 if args.quick else 2000

    tmp = Path(tempfile.mkdtemp(prefix="bench-redirect-"))
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp / 'bench.db'}"
    env = _env(tmp, database_url)
    code, insert_code, location = prepare(tmp, env, args.reset_database)
    env["BENCH_LOCATION"] = location
    from sqlalchemy.engine import make_url

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    wrk = shutil.which("wrk") and not args.python_load
    load = load_wrk if wrk else load_python
    script = tmp / "count.lua"
    script.write_text(WRK_SCRIPT)
    spool = "redis" if (env.get("CELERY_BROKER_URL") or "").startswith("redis") else "file"
    print(f"database {make_url(database_url).get_backend_name()}, spool {spool}, "
          f"drain {'at the end only' if args.no_drain else 'every second during the load'}, "
          f"gunicorn {args.workers} workers x {args.threads} threads (gunicorn.conf.py), "
          f"load {'wrk' if wrk else 'python threads'} "
          f"{args.connections} connections, "
          f"{rounds} rounds x {seconds:g} s per route, cpus {os.cpu_count()}")
    server = start_server(env, port, args.workers, args.threads, tmp / "server.log")
    drainer = None if args.no_drain else start_drainer(env)
    try:
        load(f"{base}/bare/{code}", 1, args.connections, script)  # warm-up: imports, caches, connections
        _rps, warm_redirects, _ = load(f"{base}/r/{code}", 1, args.connections, script)
        counted = warm_redirects
        if not args.no_insert:
            load(f"{base}/insert/{insert_code}", 1, args.connections, script)
        ratios, bare_rates, redirect_rates, insert_ratios, others = [], [], [], [], 0
        cpu_ratios = []

        def measured(url):
            cpu = server_cpu_seconds(server.pid)
            rate, ok, other = load(url, seconds, args.connections, script)
            return rate, ok, other, (server_cpu_seconds(server.pid) - cpu) / max(1, ok + other)

        for i in range(rounds):
            bare, _b, bare_other, bare_cpu = measured(f"{base}/bare/{code}")
            rate, redirects, other, redirect_cpu = measured(f"{base}/r/{code}")
            if bare_cpu and redirect_cpu:
                cpu_ratios.append(bare_cpu / redirect_cpu)
            insert_rate, insert_other = 0.0, 0
            if not args.no_insert:
                insert_rate, _i, insert_other = load(f"{base}/insert/{insert_code}", seconds, args.connections,
                                                     script)
            counted += redirects
            others += other + bare_other + insert_other
            bare_rates.append(bare)
            redirect_rates.append(rate)
            ratios.append(rate / bare)
            insert_ratios.append(insert_rate / bare)
            print(f"round {i + 1}: bare {bare:7.0f} req/s   /r/<code> {rate:7.0f} req/s   ratio {rate / bare:.3f}"
                  f"   server CPU per request {bare_cpu * 1e6:5.0f} / {redirect_cpu * 1e6:5.0f} us"
                  + ("" if args.no_insert else
                     f"   (one INSERT per request: {insert_rate:7.0f} req/s, ratio {insert_rate / bare:.3f})"))
        if drainer is not None:
            os.killpg(drainer.pid, signal.SIGTERM)
            drainer.wait(timeout=30)
        stored = len(stored_clicks(env, code))
        print(f"median: bare {statistics.median(bare_rates):.0f} req/s, /r/<code> "
              f"{statistics.median(redirect_rates):.0f} req/s, ratio {statistics.median(ratios):.3f} "
              f"(min {min(ratios):.3f}, max {max(ratios):.3f}); one INSERT per request instead: ratio "
              f"{statistics.median(insert_ratios):.3f}; non-302 answers {others}")
        if cpu_ratios:
            print(f"server CPU per request, bare / redirect (robust to other load on the machine): median "
                  f"{statistics.median(cpu_ratios):.3f} (min {min(cpu_ratios):.3f}, max {max(cpu_ratios):.3f})")
        print(f"reconciliation under load: 302s counted by the load generator {counted}, clicks stored {stored}, "
              f"lost {max(0, counted - stored)}, in flight when the generator stopped {max(0, stored - counted)} "
              f"(at most {args.connections} per run)")
        given, found, extra = exact_reconciliation(base, code, exact_n, env)
        print(f"exact reconciliation: {exact_n} requests, {given} 302s, {found} of their click ids stored, "
              f"{extra} other clicks stored, lost {given - found}")
    finally:
        if drainer is not None and drainer.poll() is None:
            os.killpg(drainer.pid, signal.SIGKILL)
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    main()
