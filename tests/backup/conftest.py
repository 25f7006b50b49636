"""Backup tests: content made through the services, and fresh restore targets (a new SQLite file, or a new
PostgreSQL database beside the test database, dropped afterwards)."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from advisor_studio.extensions import db
from tests.conftest import EXTERNAL_DB, make_config


def table_counts(app) -> dict[str, int]:
    """Rows per table of the app's database."""
    from advisor_studio.backup.services import live_counts

    with app.app_context():
        return live_counts()


def cli(app, *args: str):
    """Run ``flask <args>`` against ``app`` in-process; the click result."""
    return app.test_cli_runner().invoke(args=[str(a) for a in args])


def reseal(directory: Path, *, snapshot: bool = False) -> None:
    """Rewrite the manifest's seal (and, with ``snapshot``, the snapshot's hash) as a forger would, so a
    test reaches the checks behind the hashes."""
    from advisor_studio.backup.services import MANIFEST, SEAL

    manifest = json.loads((directory / MANIFEST).read_bytes())
    if snapshot:
        data = (directory / manifest["database"]["file"]).read_bytes()
        manifest["database"]["sha256"] = hashlib.sha256(data).hexdigest()
        manifest["database"]["size"] = len(data)
    data = json.dumps(manifest, indent=1, sort_keys=True).encode()
    (directory / MANIFEST).write_bytes(data)
    (directory / SEAL).write_text(f"{hashlib.sha256(data).hexdigest()}  {MANIFEST}\n")


def flip_byte(path: Path, position: int | None = None) -> None:
    """Flip one bit of one byte of ``path`` in place (the middle byte by default)."""
    size = path.stat().st_size
    position = size // 2 if position is None else position
    with open(path, "r+b") as fh:
        fh.seek(position)
        byte = fh.read(1)
        fh.seek(position)
        fh.write(bytes([byte[0] ^ 0x01]))


@pytest.fixture(scope="session")
def pg_targets():
    """Spare PostgreSQL databases beside the test database, made once per session and dropped at its end
    (DROP DATABASE forces a checkpoint of the whole server: slow on a busy one, so not per test)."""
    made: list[str] = []
    yield made
    if made:
        base = sa.make_url(EXTERNAL_DB)
        admin = sa.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in made:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _empty_pg_target(pg_targets: list[str], n: int) -> str:
    """The URL of spare database ``n``, created if new, otherwise emptied (its schema dropped)."""
    base = sa.make_url(EXTERNAL_DB)
    if n == len(pg_targets):
        name = f"{base.database}_r{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        pg_targets.append(name)
    url = base.set(database=pg_targets[n])
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    return url.render_as_string(hide_password=False)


@pytest.fixture
def fresh_target(tmp_path, request):
    """Make apps on new, empty databases (a new SQLite file, or an emptied spare PostgreSQL database) and
    new media roots."""
    apps = []

    def factory(**overrides):
        from advisor_studio import create_app

        n = len(apps)
        if EXTERNAL_DB:
            url = _empty_pg_target(request.getfixturevalue("pg_targets"), n)
        else:
            url = f"sqlite:///{tmp_path / f'restored-{n}.db'}"
        overrides.setdefault("MEDIA_ROOT", str(tmp_path / f"media-restored-{n}"))
        app = create_app(make_config(url, tmp_path, **overrides))
        apps.append(app)
        return app

    yield factory
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def make_content(app) -> SimpleNamespace:
    """Content made through the services: an approved package with a stored rendition and cover, a
    referral link with clicks, conversions through the signed webhook, and the audit entries of it all."""
    from tests.conftest import record_of
    from tests.factories import ensure_lexicon, make_user
    from tests.integrity.conftest import approved_package
    from tests.referrals.convert_helpers import event, make_click, make_link, post_event

    with app.app_context():
        ensure_lexicon()
        people = {"advisor": make_user("advisor"), "compliance": make_user("compliance"),
                  "admin": make_user("admin")}
        db.session.commit()
        people = {k: record_of(u) for k, u in people.items()}
    package = approved_package(app, people, b"\x00\x00\x00\x18ftypmp42 drill video " + uuid.uuid4().bytes)
    code = make_link(app, people["advisor"].id)
    clicks = [make_click(app, code) for _ in range(3)]
    client = app.test_client()
    for n, click_id in enumerate(clicks[:2]):
        ref = f"CUST-DRILL-{n}"
        assert post_event(app, client, event("signup", ref, click_id=click_id)).status_code == 201
        assert post_event(app, client, event("account_opened", ref)).status_code == 201
    return SimpleNamespace(people=people, package=package, code=code, clicks=clicks)
