"""Landing page, language switch, /healthz and /readyz, the audit log page and signed file downloads."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import (
    Blueprint,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user

from advisor_studio import storage
from advisor_studio.access import login_required, machine, public, require, roles_required
from advisor_studio.accounts.models import User
from advisor_studio.accounts.permissions import can_read_audit_log
from advisor_studio.audit import AuditEntry
from advisor_studio.extensions import db
from advisor_studio.integrity.downloads import serve_signed
from advisor_studio.web import query_date, query_page, safe_next

bp = Blueprint("core", __name__)


@bp.route("/")
@login_required
def home():
    counts = {}
    grant_requests = []
    if current_user.has_role("admin"):
        from advisor_studio.accounts.queries import pending_grant_requests

        grant_requests = pending_grant_requests()
        counts["users"] = db.session.scalar(sa.select(sa.func.count()).select_from(User))
        counts["active_users"] = db.session.scalar(
            sa.select(sa.func.count()).select_from(User).where(User.active.is_(True))
        )
        from advisor_studio.distribution.webhooks import failed_delivery_count

        counts["webhook_failed"] = failed_delivery_count()
    mcn = None
    if current_user.has_role("mcn") and current_user.partner_id is not None:
        from advisor_studio.distribution.queries import partner_landing

        mcn = partner_landing(current_user.partner_id)
    from advisor_studio.accounts.forms import GrantDecisionForm
    from advisor_studio.compliance.dashboard import landing_data as compliance_landing
    from advisor_studio.studio.dashboard import landing_data as studio_landing

    return render_template("core/home.html", counts=counts, studio=studio_landing(current_user),
                           grant_requests=grant_requests, grant_form=GrantDecisionForm(),
                           compliance=compliance_landing(current_user), mcn=mcn)


@bp.route("/language/<code>", methods=["POST"])
@public
def set_language(code: str):
    if code in current_app.config["LANGUAGES"]:
        session["lang"] = code
    return redirect(safe_next(request.form.get("next")) or url_for("core.home"))


@bp.route("/healthz")
@public
def healthz():
    result = {"status": "ok", "db": "ok", "broker": "ok", "storage": "ok", "integrity": "ok"}
    status = 200
    try:
        db.session.execute(sa.text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure is "down"
        db.session.rollback()
        result["db"] = "down"
    else:
        from advisor_studio.integrity.services import open_alert_count

        # Added field: stored bytes that no longer match their approval; the status code is unchanged.
        if open_alert_count():
            result["integrity"] = "alert"
    if not broker_reachable():
        result["broker"] = "down"
    if not storage.get_storage().healthcheck():
        result["storage"] = "down"
    if result["db"] != "ok" or result["storage"] != "ok":
        result["status"] = "degraded"
        status = 503
    return jsonify(result), status


@bp.route("/readyz")
@public
def readyz():
    """Ready to serve: the schema is at the migration head and storage takes a write."""
    result = {"status": "ok", "db": "ok", "schema": "ok", "storage": "ok"}
    try:
        db.session.execute(sa.text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure is "down"
        db.session.rollback()
        result["db"], result["schema"] = "down", "unknown"
    else:
        try:
            current = set(db.session.scalars(sa.text("SELECT version_num FROM alembic_version")).all())
        except Exception:  # noqa: BLE001 - no alembic_version table: never migrated
            db.session.rollback()
            current = set()
        if current != migration_heads():
            # "behind" also covers a database ahead of this code (a rollback of the release).
            result["schema"] = "behind" if current else "empty"
    if not _storage_writable():
        result["storage"] = "read_only"
    status = 200
    if any(result[k] != "ok" for k in ("db", "schema", "storage")):
        result["status"] = "not_ready"
        status = 503
    resp = jsonify(result)
    resp.headers["Cache-Control"] = "no-store"
    return resp, status


def migration_heads() -> set[str]:
    """The head revision(s) of migrations/, read once per process (the scripts do not change at run time)."""
    heads = current_app.extensions.get("migration_heads")
    if heads is None:
        from alembic.script import ScriptDirectory

        from advisor_studio import PROJECT_ROOT

        heads = frozenset(ScriptDirectory(str(PROJECT_ROOT / "migrations")).get_heads())
        current_app.extensions["migration_heads"] = heads
    return set(heads)


def _storage_writable() -> bool:
    """Write a few bytes under a fresh key and delete them."""
    import io
    import secrets

    key = f"readyz/{secrets.token_hex(16)}.txt"
    store = storage.get_storage()
    try:
        store.put_stream(io.BytesIO(b"ready\n"), key, "text/plain")
    except Exception:  # noqa: BLE001 - read-only, full, unreachable: not ready
        current_app.logger.warning("readyz: storage write failed", exc_info=True)
        return False
    try:
        store.delete_unreferenced(key)
    except Exception:  # noqa: BLE001 - written but not deleted: still writable; the probe key is tiny
        current_app.logger.warning("readyz: could not delete the probe object", exc_info=True)
    return True


def broker_reachable() -> bool:
    """True when the Celery broker accepts a connection within a second."""
    celery = current_app.extensions.get("celery")
    if celery is None:
        return False
    try:
        with celery.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=1)
        return True
    except Exception:  # noqa: BLE001 - unreachable for whatever reason
        return False


# --- audit log --------------------------------------------------------------------------------


@bp.route("/audit")
@roles_required("compliance", "admin")
def audit_log():
    require(can_read_audit_log(current_user))
    args = request.args
    actor = (args.get("actor") or "").strip()[:254]
    action = (args.get("action") or "").strip()[:64]
    object_type = (args.get("object_type") or "").strip()[:64]
    object_id = (args.get("object_id") or "").strip()[:64]
    start, end = query_date("from"), query_date("to")
    stmt = sa.select(AuditEntry).order_by(AuditEntry.seq.desc())
    if actor:
        stmt = stmt.where(AuditEntry.actor_label.ilike(f"%{actor}%"))
    if action:
        stmt = stmt.where(AuditEntry.action.startswith(action))
    if object_type:
        stmt = stmt.where(AuditEntry.object_type == object_type)
    if object_id:
        stmt = stmt.where(AuditEntry.object_id == object_id)
    tz = ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])
    if start:
        stmt = stmt.where(AuditEntry.at >= datetime.combine(start, time.min, tz))
    if end:
        stmt = stmt.where(AuditEntry.at < datetime.combine(end + timedelta(days=1), time.min, tz))
    page = db.paginate(stmt, page=query_page(), per_page=50, error_out=False)
    actions = db.session.scalars(sa.select(AuditEntry.action).distinct().order_by(AuditEntry.action)).all()
    return render_template(
        "core/audit_log.html", page=page, actions=actions,
        filters={"actor": actor, "action": action, "object_type": object_type, "object_id": object_id,
                 "from": args.get("from", ""), "to": args.get("to", "")},
    )


# --- signed downloads -----------------------------------------------------------------------------

@bp.route("/files/<token>", methods=["GET", "HEAD"])
@machine("signed-url")
def storage_download(token: str):
    # Checked on every follow, not only at issue time: approval still live, audience still allowed.
    return serve_signed(token)
