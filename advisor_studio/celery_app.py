"""Celery wired to Flask (the Flask docs pattern): every task runs inside an app context."""

from __future__ import annotations

from pathlib import Path

from celery import Celery, Task
from flask import Flask


def _filesystem_broker_options(instance_path: str) -> dict:
    root = Path(instance_path) / "celery-broker"
    folders = {name: root / name for name in ("out", "processed", "control")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return {
        # The sender writes where the worker reads: one folder for both directions.
        "data_folder_in": str(folders["out"]),
        "data_folder_out": str(folders["out"]),
        "processed_folder": str(folders["processed"]),
        # Broadcast (remote control) messages; the default would be ./control in the cwd.
        "control_folder": str(folders["control"]),
        "store_processed": False,
    }


def result_backend_url(database_uri: str) -> str:
    """Celery's database result backend on the app's own database."""
    return "db+" + database_uri


def celery_init_app(app: Flask) -> Celery:
    """Create the Celery app from Flask config and store it as ``app.extensions['celery']``."""

    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    broker = app.config["CELERY_BROKER_URL"]
    transport_options: dict = {}
    if broker.startswith("filesystem://"):
        transport_options = _filesystem_broker_options(app.instance_path)
    elif broker.startswith(("redis://", "rediss://")):
        # Longer than the longest allowed task, so a slow render is not redelivered mid-way.
        transport_options = {"visibility_timeout": app.config.get("CELERY_VISIBILITY_TIMEOUT", 4 * 3600)}

    celery = Celery(app.name, task_cls=FlaskTask)
    celery.conf.update(
        broker_url=broker,
        result_backend=app.config["CELERY_RESULT_BACKEND"],
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        task_always_eager=app.config.get("CELERY_TASK_ALWAYS_EAGER", False),
        task_ignore_result=False,
        result_extended=False,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="default",
        task_routes={"advisor_studio.video.tasks.*": {"queue": "render"}},
        timezone="UTC",
        enable_utc=True,
        worker_hijack_root_logger=False,
        worker_soft_shutdown_timeout=float(app.config.get("WORKER_SOFT_SHUTDOWN_SECONDS") or 0),
        database_table_names={"task": "celery_taskmeta", "group": "celery_tasksetmeta"},
        beat_schedule={
            # Approvals past APPROVAL_VALID_DAYS become "expired" (the partner-facing checks also
            # compare expires_at directly, so nothing expired is served between two runs).
            "expire-approvals": {"task": "advisor_studio.compliance.expire_approvals", "schedule": 600.0},
            # Stored approved files are re-hashed, so tampering is found even if nobody downloads them.
            "verify-stored-files": {"task": "advisor_studio.integrity.verify_stored_files",
                                    "schedule": float(app.config.get("INTEGRITY_VERIFY_INTERVAL_SECONDS", 86400))},
            # Anchor the audit chain outside the database, and re-check it against those anchors.
            "audit-checkpoint": {"task": "advisor_studio.core.checkpoint_audit_chain",
                                 "schedule": float(app.config.get("AUDIT_CHECKPOINT_INTERVAL_SECONDS") or 600)},
            # Spooled referral clicks into the clicks table (the redirect never writes the database).
            "drain-clicks": {"task": "advisor_studio.referrals.drain_clicks",
                             "schedule": float(app.config.get("CLICK_DRAIN_INTERVAL_SECONDS") or 1.0),
                             "options": {"expires": 10}},
            # Webhook retries come due by the minute; overdue take-downs are raised in the same sweep.
            # A sweep still queued when the next is due is dropped (expires), so a backlog does not pile up.
            "webhook-sweep": {"task": "advisor_studio.distribution.sweep_webhooks", "schedule": 60.0,
                              "options": {"expires": 55}},
            # Fraud flags over the recent window; a run still queued when the next is due is dropped.
            "detect-fraud": {"task": "advisor_studio.analytics.detect_fraud",
                             "schedule": float(app.config.get("FRAUD_DETECT_INTERVAL_SECONDS") or 300),
                             "options": {"expires": float(app.config.get("FRAUD_DETECT_INTERVAL_SECONDS") or 300)}},
            # New clicks and conversions into the analytics rollups (the pages show "up to 14:05").
            "refresh-rollups": {"task": "advisor_studio.analytics.refresh_rollups",
                                "schedule": float(app.config.get("ANALYTICS_REFRESH_INTERVAL_SECONDS") or 60),
                                "options": {"expires": 55}},
            # Officers are told once about each open review nearing its due time (notifications).
            "notify-reviews-due-soon": {"task": "advisor_studio.notifications.notify_reviews_due_soon",
                                        "schedule": 300.0, "options": {"expires": 290}},
            "audit-verify": {"task": "advisor_studio.core.verify_audit_chain",
                             "schedule": float(app.config.get("AUDIT_VERIFY_INTERVAL_SECONDS") or 86400)},
        },
        beat_schedule_filename=str(Path(app.instance_path) / "celerybeat-schedule"),
    )
    celery.set_default()
    app.extensions["celery"] = celery
    return celery
