"""Landing page, language switch, /healthz and /readyz, the audit log page and signed file downloads."""

from __future__ import annotations

import csv
import io
import json
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from advisor_studio import storage
from advisor_studio.access import login_required, machine, public, require, roles_required
from advisor_studio.accounts.models import User
from advisor_studio.accounts.permissions import can_read_audit_log
from advisor_studio.audit import AuditEntry
from advisor_studio.core import audit_view
from advisor_studio.extensions import db
from advisor_studio.integrity.downloads import serve_signed
from advisor_studio.web import csv_cell, query_date, query_page, safe_next

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
    from advisor_studio.compliance.queries import landing_data as compliance_landing
    from advisor_studio.studio.queries import landing_data as studio_landing

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


def _audit_filters() -> tuple[dict, ZoneInfo]:
    args = request.args
    filters = {"actor": (args.get("actor") or "").strip()[:254], "action": (args.get("action") or "").strip()[:64],
               "object_type": (args.get("object_type") or "").strip()[:64],
               "object_id": (args.get("object_id") or "").strip()[:64],
               "from": args.get("from", "")[:10], "to": args.get("to", "")[:10]}
    return filters, ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])


def _audit_query(filters: dict, tz: ZoneInfo):
    return audit_view.entries_query(actor=filters["actor"], action=filters["action"],
                                    object_type=filters["object_type"], object_id=filters["object_id"],
                                    start=query_date("from"), end=query_date("to"), tz=tz)


@bp.route("/audit")
@roles_required("compliance", "admin")
def audit_log():
    """A readable timeline: who did what to which object (linked), when in Beijing time, the details
    as labelled values, the raw entry with its hashes one click away."""
    require(can_read_audit_log(current_user))
    filters, tz = _audit_filters()
    page = db.paginate(_audit_query(filters, tz), page=query_page(), per_page=50, error_out=False)
    codes = db.session.scalars(sa.select(AuditEntry.action).distinct().order_by(AuditEntry.action)).all()
    types = db.session.scalars(sa.select(AuditEntry.object_type).distinct().order_by(AuditEntry.object_type)).all()
    return render_template(
        "core/audit_log.html", page=page, filters=filters, view=audit_view, tz_name=str(tz),
        actions=sorted(((code, audit_view.action_label(code)) for code in codes), key=lambda pair: pair[1]),
        object_types=[(code, audit_view.object_label(code)) for code in types],
    )


@bp.route("/audit/export.csv")
@roles_required("compliance", "admin")
def audit_export():
    """The filtered entries as CSV (UTF-8 with BOM, for Excel), newest first, at most EXPORT_MAX_ROWS."""
    require(can_read_audit_log(current_user))
    filters, tz = _audit_filters()
    stmt = _audit_query(filters, tz).limit(audit_view.EXPORT_MAX_ROWS)
    header = ["seq", _("Time") + f" ({tz})", _("Actor"), _("Action"), "action", _("Object"), "object_type",
              "object_id", _("Details"), "prev_hash", "entry_hash"]

    def rows():
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(header)
        yield "\ufeff" + out.getvalue()
        for entry in db.session.scalars(stmt.execution_options(yield_per=1000)):
            out.seek(0)
            out.truncate()
            writer.writerow([csv_cell(v) for v in (
                entry.seq, entry.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"), entry.actor_label,
                audit_view.action_label(entry.action), entry.action, audit_view.object_label(entry.object_type),
                entry.object_type, entry.object_id,
                json.dumps(entry.details or {}, ensure_ascii=False, sort_keys=True), entry.prev_hash,
                entry.entry_hash)])
            yield out.getvalue()

    return Response(stream_with_context(rows()), content_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="audit-log.csv"', "Cache-Control": "no-store"})


# --- signed downloads -----------------------------------------------------------------------------

@bp.route("/files/<token>", methods=["GET", "HEAD"])
@machine("signed-url")
def storage_download(token: str):
    # Checked on every follow, not only at issue time: approval still live, audience still allowed.
    return serve_signed(token)
