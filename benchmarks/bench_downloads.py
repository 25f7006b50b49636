"""Benchmark partner downloads of a large approved rendition; prints figures only.

A temporary SQLite database is migrated; a 200 MB rendition of random bytes is written to local
storage and approved through the real services (script approval, package, review, decision, which
also assigns it to a partner's channel). A partner link (as the API issues it) is then followed by 8
concurrent clients against gunicorn (one gthread worker with 8 threads, so one process holds every
stream) on loopback. Every client reads the whole file; one of them checks its SHA-256.

Printed: wall time, aggregate throughput (MB/s), and the worker's resident memory above idle: the peak
of VmRSS sampled every 20 ms and the kernel's own high-water mark (VmHWM). Target: under 100 MB above
idle (every stream holds at most two 1 MiB chunks while it is hashed).

Run: .venv/bin/python benchmarks/bench_downloads.py [--quick]   (--quick: 20 MB)
"""

from __future__ import annotations

import hashlib
import http.client
import io
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLIENTS = 8
MB = 1024 * 1024
READ = 256 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(tmp: Path) -> dict[str, str]:
    """The configuration both this process and gunicorn read (config.Config reads the environment)."""
    return {"APP_CONFIG": "test", "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}", "MEDIA_ROOT": str(tmp / "media"),
            "INSTANCE_PATH": str(tmp / "instance"), "RATELIMIT_STORAGE_URI": "memory://",
            "DOWNLOAD_URL_TTL_SECONDS": "3600", "STORAGE_BACKEND": "local"}


def prepare(app, size_mb: int) -> tuple[str, str]:
    """Migrate, approve a package whose rendition is ``size_mb`` of random bytes; return (path, sha256)."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from advisor_studio import storage
    from advisor_studio.accounts.models import User
    from advisor_studio.distribution.models import Assignment
    from advisor_studio.extensions import db
    from advisor_studio.integrity.downloads import Audience, rendition_link
    from advisor_studio.studio import services as studio
    from advisor_studio.studio.models import Package, Script
    from tests.factories import ensure_lexicon, make_channel, make_ready_rendition, make_user
    from tests.studio.test_pages import approved_script, decide_open_review

    with app.app_context():
        logging.disable(logging.INFO)  # Alembic's progress lines are not figures
        upgrade()
        logging.disable(logging.NOTSET)
        ensure_lexicon()
        advisor, officer = make_user("advisor"), make_user("compliance")
        db.session.commit()
        advisor_id, officer_id = advisor.id, officer.id
    script_id = approved_script(app, advisor_id, officer_id)
    with app.app_context():
        author = db.session.get(User, advisor_id)
        channel = make_channel()
        package = studio.create_package(db.session.get(Script, script_id), author, channel_ids=[channel.id])
        rendition = make_ready_rendition(package)
        # The big file is written to disk in chunks, then stored like a render's output (streamed, hashed).
        with tempfile.NamedTemporaryFile(dir=app.config["MEDIA_ROOT"], delete=False) as raw:
            for _ in range(size_mb):
                raw.write(os.urandom(MB))
        try:
            out = storage.get_storage().put_file(raw.name, storage.new_key("renditions", ".mp4"))
        finally:
            os.unlink(raw.name)
        rendition.storage_key, rendition.sha256, rendition.size_bytes = out.key, out.sha256, out.size
        cover = storage.get_storage().put_stream(io.BytesIO(b"\xff\xd8bench cover"), storage.new_key("covers", ".jpg"))
        rendition.cover_key, rendition.cover_sha256 = cover.key, cover.sha256
        studio.set_rendition(package, rendition, author)
        db.session.commit()
        studio.submit_package(package, author)
        db.session.commit()
        package_id, rendition_id = package.id, rendition.id
    decide_open_review(app, officer_id, package_id=package_id)
    with app.app_context():
        from advisor_studio.video.models import Rendition

        assignment = db.session.scalars(sa.select(Assignment).where(Assignment.package_id == package_id)).one()
        assert db.session.get(Package, package_id).status == "approved"
        with app.test_request_context():
            url = rendition_link(db.session.get(Rendition, rendition_id),
                                 Audience(partner_id=assignment.partner_id, assignment_id=assignment.id),
                                 filename="bench.mp4")
        return urlsplit(url).path, out.sha256


def worker_pid(master: int) -> int:
    """The one gunicorn worker forked by ``master``."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise RuntimeError("gunicorn started no worker")


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def get(port: int, path: str, headers: dict | None = None, *, digest=None) -> tuple[int, int]:
    """GET ``path``; return (status, bytes read), feeding ``digest`` when given."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        total = 0
        while chunk := resp.read(READ):
            total += len(chunk)
            if digest is not None:
                digest.update(chunk)
        return resp.status, total
    finally:
        conn.close()


def wait_ready(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("gunicorn exited")
        try:
            if get(port, "/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer /healthz")


def main(argv: list[str]) -> int:
    size_mb = 20 if "--quick" in argv else 200
    tmp = Path(tempfile.mkdtemp(prefix="bench-downloads-"))
    env = environment(tmp)
    os.environ.update(env)
    server = None
    try:
        from advisor_studio import create_app
        from config import TestConfig

        app = create_app(TestConfig())
        started = time.perf_counter()
        path, expected = prepare(app, size_mb)
        print(f"prepared an approved {size_mb} MB rendition in {time.perf_counter() - started:.1f} s")

        port = free_port()
        gunicorn = Path(sys.executable).with_name("gunicorn")
        server = subprocess.Popen(
            [str(gunicorn), "--bind", f"127.0.0.1:{port}", "--workers", "1", "--worker-class", "gthread",
             "--threads", str(CLIENTS), "--timeout", "600", "--log-level", "warning", "wsgi:app"],
            cwd=ROOT, env={**os.environ, **env})
        wait_ready(port, server)
        pid = worker_pid(server.pid)
        # Warm-up: a small range (the first one also verifies the whole file) and a full follow.
        assert get(port, path, {"Range": "bytes=0-1023"}) == (206, 1024)
        assert get(port, path)[0] == 200
        idle = status_kb(pid, "VmRSS")
        idle_hwm = status_kb(pid, "VmHWM")

        peak = [idle]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], status_kb(pid, "VmRSS"))
                time.sleep(0.02)

        results: list[tuple[int, int]] = [(0, 0)] * CLIENTS
        digest = hashlib.sha256()

        def client(i: int) -> None:
            results[i] = get(port, path, digest=digest if i == 0 else None)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
        hwm = status_kb(pid, "VmHWM")

        size = size_mb * MB
        statuses = sorted({status for status, _ in results})
        total = sum(n for _, n in results)
        print(f"clients: {CLIENTS} x {size_mb} MB over gunicorn gthread (1 worker, {CLIENTS} threads), "
              f"statuses {statuses}")
        print(f"all complete: {all(n == size for _, n in results)}; "
              f"sha256 of client 0 matches the approval: {digest.hexdigest() == expected}")
        print(f"wall time: {elapsed:.2f} s; throughput: {total / MB / elapsed:.1f} MB/s aggregate, "
              f"{size / MB / elapsed * 1:.1f} MB/s per client")
        print(f"worker RSS idle: {idle / 1024:.1f} MB; peak sampled: {peak[0] / 1024:.1f} MB "
              f"(+{(peak[0] - idle) / 1024:.1f} MB above idle)")
        print(f"worker VmHWM: {idle_hwm / 1024:.1f} MB before, {hwm / 1024:.1f} MB after "
              f"(+{(hwm - idle) / 1024:.1f} MB above idle RSS); target: under 100 MB above idle")
        return 0
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
