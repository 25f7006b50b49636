"""The render unit's stop (deploy/advisor-render.service): one SIGTERM to the main process, a render
in progress is put back on the queue within the soft-shutdown time, nothing is left half-made, and
the next worker finishes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from advisor_studio.extensions import db
from advisor_studio.studio.models import Package
from advisor_studio.video.models import Rendition
from tests.conftest import EXTERNAL_BROKER, ROOT, signed_in, subprocess_env
from tests.observability.test_shutdown import _alive, _children
from tests.video.test_pipeline import _wait_for, _xhr_upload, make_clip, make_package

pytestmark = [
    pytest.mark.timeout(400),
    pytest.mark.skipif(not (EXTERNAL_BROKER or "").startswith("redis"),
                       reason="the render unit runs on the production broker (Redis), which requeues on cancel"),
]


def _render_worker(app, log: Path) -> subprocess.Popen:
    """A render worker started exactly as the unit starts it (its own session, like its own cgroup)."""
    env = subprocess_env(app, REMAP_SIGTERM="SIGQUIT", WORKER_SOFT_SHUTDOWN_SECONDS="2")
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "wsgi:celery_app", "worker", "--queues", "render",
             "--concurrency", "1", "--prefetch-multiplier", "1", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "--loglevel", "INFO"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def test_sigterm_to_the_render_worker_requeues_the_render_promptly_and_the_next_worker_finishes_it(
        app_factory, users, tmp_path):
    app = app_factory(RENDER_PRESET="medium")  # slow enough to still be encoding when the stop comes
    package_id = make_package(app, users)
    log = tmp_path / "render-worker.log"
    worker = _render_worker(app, log)
    worker.log_path = log
    try:
        clip = make_clip(tmp_path / "clip.mp4", seconds=20.0, size="720x1280")
        resp = _xhr_upload(signed_in(app, users["advisor"]), package_id, clip)
        assert resp.status_code == 201, resp.get_data(as_text=True)
        rid = resp.json["rendition_id"]
        _wait_for(app, rid, {"running"}, timeout=120, worker=worker)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with app.app_context():
                if db.session.get(Rendition, rid).progress > 0:
                    break
            time.sleep(0.2)
        processes = _children(worker.pid) | {worker.pid}
        stop_at = time.monotonic()
        os.kill(worker.pid, signal.SIGTERM)  # KillMode=mixed: the main process only
        worker.wait(timeout=30)
        while any(_alive(p) for p in processes) and time.monotonic() - stop_at < 30:
            time.sleep(0.2)
        took = time.monotonic() - stop_at
        assert not any(_alive(p) for p in processes), "pool or ffmpeg processes outlived the worker"
        assert took < 15, f"the render worker took {took:.1f}s to stop"
        with app.app_context():
            rendition = db.session.get(Rendition, rid)
            assert rendition.status != "ready" and rendition.storage_key is None and rendition.sha256 is None
            assert db.session.get(Package, package_id).rendition_id is None
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    second = _render_worker(app, log)
    second.log_path = log
    try:
        done = _wait_for(app, rid, {"ready", "failed"}, timeout=300, worker=second)
        assert done.status == "ready", done.error
    finally:
        second.terminate()
        try:
            second.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(second.pid, signal.SIGKILL)
    print(f"render worker stopped {took:.1f}s after SIGTERM; the render was finished by the next worker")
