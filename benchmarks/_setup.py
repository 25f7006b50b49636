"""What the in-process benchmarks share: an app on a scratch instance, with no broker and an in-memory limiter.

Benchmarks that need a server or a worker (bench_redirect, bench_render) start their own processes instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def bench_app(tmp: Path, database_url: str | None = None, **overrides):
    """The app under TestConfig on ``database_url`` (default: a SQLite file in ``tmp``), media and instance
    under ``tmp``, tasks not queued (no broker), limits counted in memory; ``overrides`` set config keys."""
    os.environ["INSTANCE_PATH"] = str(tmp / "instance")
    from advisor_studio import create_app
    from config import TestConfig

    cfg = TestConfig()
    cfg.SQLALCHEMY_DATABASE_URI = database_url or f"sqlite:///{tmp / 'bench.db'}"
    cfg.MEDIA_ROOT = str(tmp / "media")
    cfg.CELERY_BROKER_URL = None
    cfg.CELERY_RESULT_BACKEND = None
    cfg.RATELIMIT_STORAGE_URI = "memory://"
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return create_app(cfg)


def fresh_schema(app) -> None:
    """Migrate to the head; a PostgreSQL database is emptied first (its public schema is dropped)."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from advisor_studio.extensions import db

    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(sa.text("DROP SCHEMA public CASCADE"))
                conn.execute(sa.text("CREATE SCHEMA public"))
        upgrade(directory=str(ROOT / "migrations"))
