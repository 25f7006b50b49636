"""/readyz: 200 at the migration head with writable storage, 503 naming what is not ready."""

from __future__ import annotations

import sqlalchemy as sa

from advisor_studio.extensions import db
from tests.conftest import stored_keys


def test_ready_at_the_migration_head_with_writable_storage(app, client):
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.json == {"status": "ok", "db": "ok", "schema": "ok", "storage": "ok"}
    assert resp.headers["Cache-Control"] == "no-store"
    assert not [k for k in stored_keys(app) if k.startswith("readyz/")]  # the probe cleans up after itself


def test_not_ready_when_the_schema_is_not_at_the_head(app, client):
    with app.app_context():
        head = db.session.scalar(sa.text("SELECT version_num FROM alembic_version"))
        db.session.execute(sa.text("UPDATE alembic_version SET version_num = 'abc123older'"))
        db.session.commit()
    try:
        resp = client.get("/readyz")
        assert resp.status_code == 503
        assert resp.json == {"status": "not_ready", "db": "ok", "schema": "behind", "storage": "ok"}
        assert client.get("/healthz").status_code == 200  # liveness is unchanged: do not restart it
    finally:
        with app.app_context():
            db.session.execute(sa.text("UPDATE alembic_version SET version_num = :h"), {"h": head})
            db.session.commit()
    assert client.get("/readyz").status_code == 200


def test_not_ready_when_storage_cannot_be_written(app_factory, tmp_path):
    import shutil
    from pathlib import Path

    app = app_factory(STORAGE_BACKEND="local", MEDIA_ROOT=str(tmp_path / "media-ro"))
    root = Path(app.config["MEDIA_ROOT"])
    shutil.rmtree(root)
    root.write_text("a file where the media folder should be (a lost mount, as seen by root)")
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.json == {"status": "not_ready", "db": "ok", "schema": "ok", "storage": "read_only"}


def test_not_ready_when_the_database_is_down(app_factory, tmp_path):
    app = app_factory(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/missing-dir/none.db")
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.json["db"] == "down" and resp.json["schema"] == "unknown" and resp.json["status"] == "not_ready"


def test_the_migration_head_is_read_once_per_process(app, client):
    client.get("/readyz")
    heads = app.extensions["migration_heads"]
    assert len(heads) == 1
    client.get("/readyz")
    assert app.extensions["migration_heads"] is heads
