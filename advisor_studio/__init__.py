"""Advisor Studio: compliant short-video content and referral attribution for a brokerage."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask, has_request_context, request, session
from flask_login import current_user

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _instance_secret(app: Flask, filename: str) -> str:
    """Read a secret generated once into the instance folder, creating it on first use."""
    path = Path(app.instance_path) / filename
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def _fill_instance_defaults(app: Flask) -> None:
    cfg = app.config
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if not cfg.get("SECRET_KEY"):
        cfg["SECRET_KEY"] = _instance_secret(app, "secret_key")
    if not cfg.get("CONVERSION_WEBHOOK_SECRET"):
        cfg["CONVERSION_WEBHOOK_SECRET"] = _instance_secret(app, "conversion_webhook_secret")
    if not cfg.get("SQLALCHEMY_DATABASE_URI"):
        cfg["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{Path(app.instance_path) / 'advisor_studio.db'}"
    if not cfg.get("CELERY_BROKER_URL"):
        cfg["CELERY_BROKER_URL"] = "filesystem://"
    if not cfg.get("CELERY_RESULT_BACKEND"):
        from advisor_studio.celery_app import result_backend_url

        cfg["CELERY_RESULT_BACKEND"] = result_backend_url(cfg["SQLALCHEMY_DATABASE_URI"])
    if not cfg.get("MEDIA_ROOT"):
        cfg["MEDIA_ROOT"] = str(PROJECT_ROOT / "media")
    if cfg["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # WAL lets readers proceed while one writer commits; wait instead of failing on a lock.
        options = dict(cfg.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        options.setdefault("connect_args", {"timeout": 30})
        cfg["SQLALCHEMY_ENGINE_OPTIONS"] = options


def _sqlite_pragmas(app: Flask) -> None:
    from sqlalchemy import event

    from advisor_studio.extensions import db

    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return

    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "connect")
    def set_pragmas(dbapi_conn, _record):
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def _security_headers(app: Flask) -> None:
    # Signed file links answer with a redirect to a presigned URL when storage is S3: covers and the
    # in-page player then load from the bucket's origin, which alone is added to the page's sources.
    direct = app.extensions["storage"].direct_origin() if "storage" in app.extensions else None
    files = f" {direct}" if direct else ""
    csp = (
        f"default-src 'self'; img-src 'self' data: blob:{files}; media-src 'self' blob:{files}; style-src 'self'; "
        "script-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )

    @app.after_request
    def add_headers(response):
        response.headers.setdefault("Content-Security-Policy", csp)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if app.config.get("SESSION_COOKIE_SECURE"):
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response


def _select_locale() -> str:
    from flask import current_app

    languages = current_app.config["LANGUAGES"]
    if not has_request_context():  # CLI and tasks speak the default locale
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    lang = request.args.get("lang")
    if lang in languages:
        return lang
    lang = session.get("lang")
    if lang in languages:
        return lang
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def create_app(config=None) -> Flask:
    """Build the application: config, extensions, blueprints, error handlers and CLI."""
    from config import config_from_env

    app = Flask(
        __name__,
        instance_path=os.environ.get("INSTANCE_PATH") or str(PROJECT_ROOT / "instance"),
        template_folder=str(PROJECT_ROOT / "templates"),
    )
    cfg = config if config is not None else config_from_env()
    if isinstance(cfg, dict):
        app.config.from_object(config_from_env())
        app.config.update(cfg)
    else:
        app.config.from_object(cfg)
    _fill_instance_defaults(app)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(Path(__file__).parent / "translations"))

    from advisor_studio import access, errors, storage, web
    from advisor_studio.celery_app import celery_init_app
    from advisor_studio.extensions import babel, bootstrap, csrf, db, limiter, login_manager, migrate

    db.init_app(app)
    _sqlite_pragmas(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"), compare_type=True)
    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.login_message_category = "warning"
    from flask_babel import lazy_gettext as _l

    login_manager.login_message = _l("Please sign in to continue.")
    csrf.init_app(app)
    babel.init_app(app, locale_selector=_select_locale)
    bootstrap.init_app(app)
    app.config["RATELIMIT_STORAGE_URI"] = app.config.get("RATELIMIT_STORAGE_URI", "memory://")
    limiter.init_app(app)
    storage.init_app(app)
    celery_init_app(app)
    errors.init_app(app)
    access.init_app(app)
    from advisor_studio import observability

    observability.init_app(app)  # after access: its request-id hook goes first in line
    web.init_app(app)  # before the blueprints: their <int:...> rules take the bounded converter
    _security_headers(app)

    from advisor_studio.accounts.routes import bp as accounts_bp
    from advisor_studio.analytics.content_routes import bp as content_performance_bp
    from advisor_studio.analytics.fraud_routes import bp as fraud_bp
    from advisor_studio.analytics.reconciliation_routes import bp as reconciliation_bp
    from advisor_studio.analytics.routes import bp as analytics_bp
    from advisor_studio.compliance.routes import bp as compliance_bp
    from advisor_studio.core.routes import bp as core_bp
    from advisor_studio.distribution.routes import bp as distribution_bp
    from advisor_studio.integrity.routes import bp as integrity_bp
    from advisor_studio.notifications.routes import bp as notifications_bp
    from advisor_studio.referrals.api import bp as referrals_api_bp
    from advisor_studio.referrals.qr import bp as referral_qr_bp
    from advisor_studio.referrals.redirect import bp as redirect_bp
    from advisor_studio.referrals.routes import bp as referrals_bp
    from advisor_studio.referrals.sharing_routes import bp as sharing_bp
    from advisor_studio.studio.routes import bp as studio_bp
    from advisor_studio.video.routes import bp as video_bp

    app.register_blueprint(core_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(studio_bp)
    app.register_blueprint(compliance_bp)
    app.register_blueprint(video_bp)
    app.register_blueprint(integrity_bp)
    app.register_blueprint(distribution_bp)
    app.register_blueprint(referrals_bp)
    app.register_blueprint(referral_qr_bp)
    app.register_blueprint(redirect_bp)
    app.register_blueprint(referrals_api_bp)
    app.register_blueprint(sharing_bp)
    app.register_blueprint(fraud_bp)
    app.register_blueprint(content_performance_bp)
    app.register_blueprint(reconciliation_bp)
    app.register_blueprint(analytics_bp)
    app.register_blueprint(notifications_bp)
    from advisor_studio.distribution import api as partner_api

    partner_api.init_app(app)

    _import_models()
    from advisor_studio import cli

    cli.init_app(app)
    from advisor_studio.distribution.cli import partners_cli

    app.cli.add_command(partners_cli)
    from advisor_studio.integrity.cli import integrity_cli

    app.cli.add_command(integrity_cli)
    from advisor_studio.referrals.cli import links_cli

    app.cli.add_command(links_cli)
    from advisor_studio.analytics.fraud_cli import fraud_cli

    app.cli.add_command(fraud_cli)
    from advisor_studio.backup.cli import backup_cli, retention_cli

    app.cli.add_command(backup_cli)
    app.cli.add_command(retention_cli)
    from advisor_studio.analytics.cli import analytics_cli

    app.cli.add_command(analytics_cli)

    @app.context_processor
    def inject_globals():
        from advisor_studio.accounts.forms import ROLE_LABELS

        return {"current_locale": _select_locale(), "languages": app.config["LANGUAGES"],
                "nav": _navigation(current_user), "role_labels": ROLE_LABELS}

    return app


def _import_models() -> None:
    """Import every feature's models so metadata (and Alembic autogenerate) sees all tables."""
    from advisor_studio import (
        audit,  # noqa: F401
        tasks_util,  # noqa: F401  (after-commit task sending)
    )
    from advisor_studio.accounts import models  # noqa: F401
    from advisor_studio.analytics import fraud_tasks  # noqa: F401
    from advisor_studio.analytics import models as analytics_models  # noqa: F401
    from advisor_studio.analytics import tasks as analytics_tasks  # noqa: F401
    from advisor_studio.compliance import models as compliance_models  # noqa: F401
    from advisor_studio.compliance import tasks as compliance_tasks  # noqa: F401
    from advisor_studio.core import tasks  # noqa: F401  (registers the tasks with Celery)
    from advisor_studio.distribution import models as distribution_models  # noqa: F401
    from advisor_studio.distribution import tasks as distribution_tasks  # noqa: F401
    from advisor_studio.integrity import models as integrity_models  # noqa: F401
    from advisor_studio.integrity import tasks as integrity_tasks  # noqa: F401
    from advisor_studio.notifications import models as notifications_models  # noqa: F401
    from advisor_studio.notifications import tasks as notifications_tasks  # noqa: F401
    from advisor_studio.referrals import models as referrals_models  # noqa: F401
    from advisor_studio.referrals import tasks as referrals_tasks  # noqa: F401
    from advisor_studio.studio import models as studio_models  # noqa: F401
    from advisor_studio.video import models as video_models  # noqa: F401
    from advisor_studio.video import tasks as video_tasks  # noqa: F401


def _navigation(user) -> list[dict]:
    """The menu of product.md for the roles the user holds."""
    from advisor_studio.navigation import menu_for

    return menu_for(user)
