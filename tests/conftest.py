"""Shared fixtures: a real database (SQLite or the PostgreSQL in DATABASE_URL), real storage.

The schema always comes from the real migrations: once per session into a template
(SQLite: a file copied for every test; PostgreSQL: tables truncated between tests).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from jinja2 import BytecodeCache
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
EXTERNAL_DB = os.environ.get("DATABASE_URL")
EXTERNAL_BROKER = os.environ.get("CELERY_BROKER_URL")
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def _reuse_url_builders() -> None:
    """Test-only speed-up: reuse Werkzeug's generated URL builders between the suite's apps.

    The suite builds a fresh app for nearly every test (about 2,300 apps a run), and Werkzeug compiles
    two Python functions per URL rule for each (generated from an AST, about 90 % of ``create_app``).
    Such a function depends only on the rule's text, its parsed parts, its defaults and converters, and
    refers to the rule through its ``self`` argument alone, so one compiled function serves every app's
    copy of the same rule. The application itself (one app per process) is unaffected.
    """
    from werkzeug.routing.rules import Rule

    compile_builder = getattr(Rule, "_compile_builder", None)
    if compile_builder is None or getattr(compile_builder, "reused", False):
        return
    cache: dict[tuple, object] = {}

    def cached(self, append_unknown: bool = True):
        converters = tuple(sorted((name, type(conv).__qualname__, repr(sorted(
            (k, v) for k, v in vars(conv).items() if k != "map"))) for name, conv in self._converters.items()))
        defaults = tuple(sorted((str(k), repr(v)) for k, v in (self.defaults or {}).items()))
        key = (self.rule, self.subdomain, self.host, self.map.host_matching, tuple(self._trace), defaults,
               converters, append_unknown)
        builder = cache.get(key)
        if builder is None:
            builder = cache[key] = compile_builder(self, append_unknown)
        return builder

    cached.reused = True
    Rule._compile_builder = cached


_reuse_url_builders()


class _SharedTemplateCode(BytecodeCache):
    """Test-only: compiled templates shared by the suite's apps (one Jinja environment per app).

    Jinja keys each entry by template name and validates it against the source's checksum, so an edited
    template is recompiled; parsing and compiling every template again for each of ~2,300 apps was about
    a seventh of the page tests' time.
    """

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


TEMPLATE_CODE = _SharedTemplateCode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _upgrade(url: str, instance: Path) -> None:
    env = dict(os.environ, DATABASE_URL=url, INSTANCE_PATH=str(instance), APP_CONFIG="test")
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env,
                   check=True, capture_output=True)


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("session")


@pytest.fixture(scope="session")
def migrated_database(session_dir):
    """Apply the migrations once; return how to get a fresh database for one test."""
    if EXTERNAL_DB:
        engine = sa.create_engine(EXTERNAL_DB)
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(sa.text("DROP SCHEMA public CASCADE"))
                conn.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()
        _upgrade(EXTERNAL_DB, session_dir / "instance")
        return {"kind": "external", "url": EXTERNAL_DB}
    template = session_dir / "template.db"
    _upgrade(f"sqlite:///{template}", session_dir / "instance")
    return {"kind": "sqlite", "template": template}


_external_engines: dict[str, sa.Engine] = {}


def _truncate_external(url: str) -> None:
    """Empty every table that holds rows and restart every sequence, for the next test.

    TRUNCATE of all ~70 tables made a new file for each table and index on every test (a tenth of a
    second or more apiece); a test touches a handful. So: one statement finds the tables with rows,
    and those are emptied with DELETE under session_replication_role = replica (no foreign-key or
    immutability triggers, as TRUNCATE skips them too). Every table with rows is emptied, so no row is
    left pointing at a deleted one.
    """
    engine = _external_engines.get(url)
    if engine is None:
        engine = _external_engines[url] = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        tables = [r[0] for r in conn.execute(sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename <> 'alembic_version'"))]
        probe = " UNION ALL ".join(f"(SELECT '{t}' FROM \"{t}\" LIMIT 1)" for t in tables)  # noqa: S608 - names from pg_tables
        used = [r[0] for r in conn.execute(sa.text(probe))] if tables else []
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        for table in used:
            conn.execute(sa.text(f'DELETE FROM "{table}"'))  # noqa: S608 - names from pg_tables
        conn.execute(sa.text("SELECT setval(c.oid, 1, false) FROM pg_class c JOIN pg_namespace n "
                             "ON n.oid = c.relnamespace WHERE c.relkind = 'S' AND n.nspname = 'public'"))
        conn.execute(sa.text("INSERT INTO audit_head (id, seq, last_hash) VALUES (1, 0, :h)"), {"h": "0" * 64})


@pytest.fixture
def database_url(migrated_database, tmp_path) -> str:
    """A migrated, empty database for this test."""
    if migrated_database["kind"] == "external":
        _truncate_external(migrated_database["url"])
        return migrated_database["url"]
    path = tmp_path / "test.db"
    shutil.copyfile(migrated_database["template"], path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on loopback (or the S3_ENDPOINT_URL given), reached over HTTP by boto3."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    if os.environ.get("S3_ENDPOINT_URL"):
        yield os.environ["S3_ENDPOINT_URL"]
        return
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def make_config(database_url: str, tmp_path: Path, **overrides):
    from config import TestConfig

    cfg = TestConfig()
    cfg.SQLALCHEMY_DATABASE_URI = database_url
    cfg.MEDIA_ROOT = str(tmp_path / "media")
    cfg.CELERY_BROKER_URL = EXTERNAL_BROKER or None
    cfg.CELERY_RESULT_BACKEND = None
    cfg.RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    cfg.STORAGE_BACKEND = "local"
    if os.environ.get("S3_ENDPOINT_URL"):
        # `make test` with S3_ENDPOINT_URL runs every test on that S3 server, one bucket per test.
        cfg.STORAGE_BACKEND = "s3"
        cfg.S3_ENDPOINT_URL = os.environ["S3_ENDPOINT_URL"]
        cfg.S3_BUCKET = "t-" + hashlib.sha256(str(tmp_path).encode()).hexdigest()[:20]
        cfg.S3_CREATE_BUCKET = True
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


@pytest.fixture
def instance_path(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "instance"
    path.mkdir()
    monkeypatch.setenv("INSTANCE_PATH", str(path))
    return path


@pytest.fixture
def app_factory(database_url, tmp_path, instance_path):
    """Build apps on this test's database; keyword arguments override config attributes."""
    from advisor_studio import create_app
    from advisor_studio.extensions import db, limiter

    apps = []

    def factory(**overrides):
        app = create_app(make_config(database_url, tmp_path, **overrides))
        app.jinja_env.bytecode_cache = TEMPLATE_CODE
        with app.app_context():
            limiter.reset()  # a Redis limiter store must not carry limits from one test into the next
        apps.append(app)
        return app

    yield factory
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(app_factory):
    return app_factory()


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


def subprocess_env(app, **extra) -> dict:
    """Environment for a CLI or worker process that must see this test's database, broker and storage."""
    cfg = app.config
    env = dict(os.environ, DATABASE_URL=cfg["SQLALCHEMY_DATABASE_URI"], APP_CONFIG="test",
               INSTANCE_PATH=app.instance_path, MEDIA_ROOT=cfg["MEDIA_ROOT"],
               CELERY_BROKER_URL=cfg["CELERY_BROKER_URL"], STORAGE_BACKEND=cfg["STORAGE_BACKEND"],
               S3_BUCKET=cfg["S3_BUCKET"], S3_CREATE_BUCKET="1" if cfg.get("S3_CREATE_BUCKET") else "0")
    if cfg.get("S3_ENDPOINT_URL"):
        env["S3_ENDPOINT_URL"] = cfg["S3_ENDPOINT_URL"]
    env.update(extra)
    return env


def stored_keys(app) -> set[str]:
    """Every key in the app's storage (local folder or S3 bucket)."""
    from advisor_studio import storage

    with app.app_context():
        store = storage.get_storage()
        if isinstance(store, storage.LocalStorage):
            root = store.root
            return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
        pages = store.client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket)
        return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def csrf_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1) or match.group(2)


def post_form(client, url: str, data: dict, *, form_page: str | None = None, **kwargs):
    """GET the page with the form, then POST ``data`` with the page's CSRF token."""
    page = client.get(form_page or url)
    token = csrf_from(page.get_data(as_text=True))
    return client.post(url, data={**data, "csrf_token": token}, **kwargs)


def login(client, email: str, password: str):
    return post_form(client, "/login", {"email": email, "password": password})


@pytest.fixture
def users(app):
    """One committed user per role (plus a second advisor), as plain records keyed by role.

    Plain records, not ORM objects: tests must not hold an app context open around test-client
    requests (Flask would share ``g``, and so the signed-in user, between requests).
    """
    from tests.factories import make_user

    with app.app_context():
        made = {
            "advisor": make_user("advisor"),
            "compliance": make_user("compliance"),
            "mcn": make_user("mcn"),
            "admin": make_user("admin"),
            "advisor2": make_user("advisor"),
        }
        from advisor_studio.extensions import db

        db.session.commit()
        return {key: record_of(user) for key, user in made.items()}


def record_of(user) -> SimpleNamespace:
    return SimpleNamespace(id=user.id, email=user.email, name=user.name, roles=set(user.roles),
                           password=getattr(user, "test_password", None),
                           sac_number=user.advisor_profile.sac_number if user.advisor_profile else None)


def signed_in(app, record) -> object:
    """A test client signed in as ``record``."""
    client = app.test_client()
    resp = login(client, record.email, record.password)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    return client


@contextmanager
def running_worker(app, **extra_env):
    """A real Celery worker process on the app's broker and database (``extra_env`` added to its
    environment); stopped when the block ends. Its output is in ``proc.log_path``."""
    env = subprocess_env(app, **extra_env)
    log = Path(app.instance_path) / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "wsgi:celery_app", "worker", "--queues", "default,render",
             "--concurrency", "1", "--pool", "prefork", "--loglevel", "INFO", "--without-gossip",
             "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    proc.log_path = log
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def worker(app):
    """A real Celery worker process on this test's broker and database; stopped afterwards."""
    with running_worker(app) as proc:
        yield proc


# --- headless Chromium (Debian's package) driven by Playwright against a live server --------------

ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; CI must run the browser tests (.ci/run installs it)")
        pytest.skip("browser tests skipped: Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def live_server(app):
    """Serve the test app on a free loopback port in a thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
