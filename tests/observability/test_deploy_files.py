"""The reviewed deployment files agree with each other and with the app's settings."""

from __future__ import annotations

import configparser
import re
import runpy
import subprocess
import sys

import pytest

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
UNITS = ["advisor-web.service", "advisor-worker.service", "advisor-render.service", "advisor-beat.service"]


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    text = (DEPLOY / name).read_text().replace("\\\n", " ")
    parser.read_string(text)
    return parser


def seconds(value: str) -> int:
    return int(value.removesuffix("s"))


@pytest.mark.parametrize("name", UNITS)
def test_units_stop_the_main_process_first_and_kill_only_leftovers(name):
    service = unit(name)["Service"]
    # mixed: TERM to the main process alone (it shuts its children down), KILL to the rest at the timeout.
    assert service["KillMode"] == "mixed"
    assert service["KillSignal"] == "SIGTERM"
    assert 0 < seconds(service["TimeoutStopSec"])
    assert service["EnvironmentFile"] == "/etc/advisor-studio/advisor-studio.env"


def test_beat_runs_alone_and_workers_take_one_queue_each():
    assert "-B" not in unit("advisor-worker.service")["Service"]["ExecStart"].split()
    assert "--queues default" in unit("advisor-worker.service")["Service"]["ExecStart"]
    render = unit("advisor-render.service")["Service"]
    assert "--queues render" in render["ExecStart"] and "--concurrency 1" in render["ExecStart"]
    assert "celery -A wsgi:celery_app beat" in unit("advisor-beat.service")["Service"]["ExecStart"]


def test_render_worker_stop_is_bounded_by_its_soft_shutdown():
    render = unit("advisor-render.service")["Service"]
    # configparser keeps only the last Environment= line: read them from the file.
    env = dict(re.findall(r"^Environment=(\w+)=(\S+)$", (DEPLOY / "advisor-render.service").read_text(), re.M))
    assert env["REMAP_SIGTERM"] == "SIGQUIT"
    assert float(env["WORKER_SOFT_SHUTDOWN_SECONDS"]) + 10 < seconds(render["TimeoutStopSec"])


def test_web_stop_timeout_outlasts_gunicorns_graceful_timeout(monkeypatch):
    monkeypatch.delenv("GRACEFUL_TIMEOUT", raising=False)
    monkeypatch.delenv("MAX_UPLOAD_MB", raising=False)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/tmp/advisor-studio-test-metrics")
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    # The largest upload (2048 MB) at 1 MB/s, plus a minute.
    assert conf["graceful_timeout"] == 2048 + 60
    assert seconds(unit("advisor-web.service")["Service"]["TimeoutStopSec"]) > conf["graceful_timeout"]
    assert conf["accesslog"] is None  # the app writes the structured access line
    monkeypatch.setenv("WEB_CONCURRENCY", "2")
    monkeypatch.setenv("MAX_UPLOAD_MB", "512")
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert conf["workers"] == 2 and conf["graceful_timeout"] == 512 + 60
    monkeypatch.setenv("WEB_CONCURRENCY", "two")
    with pytest.raises(RuntimeError, match="WEB_CONCURRENCY"):
        runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_gunicorn_accepts_its_config():
    result = subprocess.run([sys.executable, "-m", "gunicorn", "--check-config", "-c", "gunicorn.conf.py", "wsgi:app"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


def test_nginx_upload_limit_matches_max_upload_mb_and_request_ids_pass_through():
    from config import Config

    site = (DEPLOY / "nginx-advisor-studio.conf").read_text()
    env = (DEPLOY / "advisor-studio.env.example").read_text()
    max_upload = int(re.search(r"^MAX_UPLOAD_MB=(\d+)$", env, re.M).group(1))
    assert max_upload == Config().MAX_UPLOAD_MB
    limits = re.findall(r"client_max_body_size (\d+)m;", site)
    assert f"{max_upload}" in limits and str(Config().FORM_MAX_MB) in limits
    assert "proxy_set_header X-Request-ID $advisor_request_id;" in site
    assert "add_header X-Request-ID" in site
    # The proxy replaces X-Forwarded-For, so TRUSTED_PROXY_COUNT=1 gives the client's real address.
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in site
    assert re.search(r"^TRUSTED_PROXY_COUNT=1$", env, re.M)
    assert "ssl_certificate" in site and "listen 443 ssl" in site
