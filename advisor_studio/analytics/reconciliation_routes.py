"""Reconciliation pages (admins): upload the account-opening system's CSV for a period, read the matched
and missing accounts with their totals, list past uploads and download the kept file."""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_sqlalchemy.pagination import Pagination

from advisor_studio import audit, storage
from advisor_studio.access import large_upload, require, roles_required
from advisor_studio.accounts.models import User
from advisor_studio.analytics import reconciliation
from advisor_studio.analytics.models import ReconciliationUpload
from advisor_studio.analytics.permissions import can_reconcile
from advisor_studio.analytics.reconciliation_forms import ReconciliationUploadForm
from advisor_studio.errors import DomainError
from advisor_studio.extensions import db
from advisor_studio.web import query_page, stream_object

bp = Blueprint("reconciliation", __name__, url_prefix="/analytics/reconciliation")

LIST_SIZE = 50
LISTS = ("missing_here", "missing_there", "outside_period", "duplicates")
LIST_LABELS = {"missing_here": _l("In their file, not here"), "missing_there": _l("Here, not in their file"),
               "outside_period": _l("Dated outside the period"), "duplicates": _l("Repeated references")}
REASON_LABELS = {
    reconciliation.REASON_UNKNOWN: _l("Never reported here"),
    reconciliation.REASON_NO_OPENING: _l("Known customer, no account opening reported"),
    reconciliation.REASON_OTHER_PERIOD: _l("Account opening reported outside the period"),
    reconciliation.REASON_REJECTED: _l("Opening reversed (account rejected)"),
}
ENCODING_LABELS = {reconciliation.ENC_UTF8: "UTF-8", reconciliation.ENC_UTF8_BOM: _l("UTF-8 with BOM"),
                   reconciliation.ENC_GB18030: "GBK / GB18030"}


class ListPage(Pagination):
    """A page of one stored result list."""

    def _query_items(self) -> list:
        items = self._query_args["items"]
        return items[self._query_offset:self._query_offset + self.per_page]

    def _query_count(self) -> int:
        return len(self._query_args["items"])


def _uploads_page():
    stmt = (sa.select(ReconciliationUpload).options(so.joinedload(ReconciliationUpload.uploaded_by))
            .order_by(ReconciliationUpload.id.desc()))
    return db.paginate(stmt, page=query_page(), per_page=current_app.config.get("PAGE_SIZE", 25), error_out=False)


def _render_index(form, status: int = 200, problems: dict | None = None):
    return render_template("analytics/reconciliation_index.html", form=form, page=_uploads_page(),
                           problems=problems or {},
                           encoding_labels=ENCODING_LABELS,
                           max_rows=current_app.config["RECONCILIATION_MAX_ROWS"],
                           max_mb=current_app.config["RECONCILIATION_MAX_MB"]), status


@bp.route("")
@roles_required("admin")
def index():
    """Past uploads, newest first, and the upload form."""
    require(can_reconcile(current_user))
    return _render_index(ReconciliationUploadForm(formdata=None))


@bp.route("", methods=["POST"])
@large_upload
@roles_required("admin")
def upload():
    """Read, match and keep one CSV; a refused file stores nothing and says why."""
    require(can_reconcile(current_user))
    form = ReconciliationUploadForm()
    if not form.validate_on_submit():
        return _render_index(form, 400)
    file = form.file.data
    try:
        made = reconciliation.create_upload(file.stream, file.filename, period_from=form.period_from.data,
                                            period_to=form.period_to.data, actor=current_user)
    except DomainError as err:
        db.session.rollback()
        for name in ("period_from", "period_to"):
            if name in err.fields:
                getattr(form, name).errors = [err.fields[name]]
        problems = {where: why for where, why in err.fields.items()
                    if where not in ("period_from", "period_to") and why != err.message}
        flash(err.message, "danger")
        return _render_index(form, err.status, problems)
    try:
        db.session.commit()
    except Exception:
        db.session.rollback()
        reconciliation.discard_file(made)
        raise
    flash(_("The file was reconciled and kept as evidence."), "success")
    return redirect(url_for("reconciliation.detail", upload_id=made.id))


@bp.route("/<int:upload_id>")
@roles_required("admin")
def detail(upload_id: int):
    """Totals, and one of the lists (missing here, missing there, outside the period, repeated), paginated."""
    require(can_reconcile(current_user))
    upload = db.get_or_404(ReconciliationUpload, upload_id)
    shown = request.args.get("list", "missing_here")
    if shown not in LISTS:
        shown = "missing_here"
    result = upload.result or {}
    page = ListPage(page=query_page(), per_page=LIST_SIZE, max_per_page=LIST_SIZE, error_out=False,
                    items=result.get(shown) or [])
    advisors = {}
    if shown == "missing_there" and page.items:
        ids = {item[4] for item in page.items if item[4]}
        advisors = {u.id: u for u in db.session.scalars(sa.select(User).where(User.id.in_(ids)))} if ids else {}
    return render_template("analytics/reconciliation_detail.html", upload=upload, totals=result.get("totals", {}),
                           columns=result.get("columns", {}), shown=shown, page=page, lists=LISTS,
                           list_labels=LIST_LABELS, reason_labels=REASON_LABELS, advisors=advisors,
                           encoding_labels=ENCODING_LABELS)


@bp.route("/<int:upload_id>/file")
@roles_required("admin")
def download(upload_id: int):
    """The uploaded bytes, unchanged: re-hashed first, and refused (audited) if they no longer match."""
    require(can_reconcile(current_user))
    upload = db.get_or_404(ReconciliationUpload, upload_id)
    try:
        actual = storage.get_storage().sha256_of(upload.storage_key)
    except storage.StorageError:
        actual = None
    if actual != upload.sha256:
        audit.record_refusal("reconciliation.evidence_mismatch", "reconciliation_upload", upload_id,
                             details={"expected": upload.sha256, "actual": actual})
        abort(409, _("The kept file no longer matches the SHA-256 recorded at upload (or is missing); it is "
                     "not served. The mismatch was written to the audit log."))
    return stream_object(upload.storage_key, filename=upload.filename, content_type="text/csv")
