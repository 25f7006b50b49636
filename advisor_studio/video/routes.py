"""Upload of source videos (streamed), render progress, retries, previews and the disclaimer template."""

from __future__ import annotations

from urllib.parse import unquote

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import validate_csrf
from wtforms.validators import ValidationError as FormValidationError

from advisor_studio.access import large_upload, login_required, require, roles_required
from advisor_studio.errors import DomainError
from advisor_studio.extensions import db
from advisor_studio.integrity.downloads import serve_rendition_in_app
from advisor_studio.integrity.models import FILE_COVER, FILE_VIDEO
from advisor_studio.studio.models import PACKAGE_EDITABLE, Package
from advisor_studio.video import services
from advisor_studio.video.forms import DisclaimerForm, RetryForm
from advisor_studio.video.models import DisclaimerTemplate, Rendition
from advisor_studio.video.permissions import can_manage_disclaimer, can_upload_video, can_view_rendition

bp = Blueprint("video", __name__)


@bp.app_template_global()
def video_panel_for(package) -> dict:
    """Renditions of a package (newest first) and whether the viewer may upload, for the package page."""
    renditions = db.session.scalars(
        db.select(Rendition).where(Rendition.package_id == package.id).order_by(Rendition.id.desc())
        .options(db.selectinload(Rendition.source))).all()
    return {"renditions": renditions, "can_upload": can_upload_video(current_user, package)
            and package.status in PACKAGE_EDITABLE}


def _wants_json() -> bool:
    return request.headers.get("X-Requested-With") == "XMLHttpRequest" or request.is_json


@bp.route("/studio/packages/<int:package_id>/video", methods=["POST"])
@large_upload
@roles_required("advisor")
def upload(package_id: int):
    package = db.get_or_404(Package, package_id)
    require(can_upload_video(current_user, package))
    if request.files.get("video"):  # a plain form post (no JavaScript): Werkzeug spooled it to disk
        upload_file = request.files["video"]
        stream, filename = upload_file.stream, upload_file.filename or "video"
    else:  # the page's uploader sends the raw bytes, which stream straight into storage
        try:
            validate_csrf(request.headers.get("X-CSRFToken"))
        except FormValidationError:
            return jsonify({"error": {"code": "csrf_failed", "message": _("Reload the page and try again.")}}), 400
        stream, filename = request.stream, unquote(request.headers.get("X-Filename", "video"))
        if not request.content_length and request.headers.get("Transfer-Encoding") != "chunked":
            return jsonify({"error": {"code": "empty", "message": services.reason_text("empty_file")}}), 400
    try:
        source = services.accept_upload(package, current_user, stream, filename)
        rendition = services.request_render(package, source, current_user)
    except DomainError as err:
        db.session.commit()  # keep the audit entry of a refused upload
        if _wants_json():
            return jsonify({"error": {"code": err.code, "message": err.message}}), err.status
        flash(err.message, "danger")
        return redirect(url_for("studio.package", package_id=package.id))
    db.session.commit()
    if _wants_json():
        return jsonify({"source_id": source.id, "rendition_id": rendition.id,
                        "status_url": url_for("video.status", rendition_id=rendition.id)}), 201
    flash(_("Video uploaded. The rendition is being prepared."), "success")
    return redirect(url_for("studio.package", package_id=package.id))


@bp.route("/studio/renditions/<int:rendition_id>/status")
@login_required
def status(rendition_id: int):
    rendition = db.get_or_404(Rendition, rendition_id)
    require(can_view_rendition(current_user, rendition))
    return jsonify({"id": rendition.id, "status": rendition.status, "progress": rendition.progress,
                    "error": rendition.error, "sha256": rendition.sha256,
                    "in_use": rendition.package.rendition_id == rendition.id})


@bp.route("/studio/renditions/<int:rendition_id>/retry", methods=["POST"])
@roles_required("advisor")
def retry(rendition_id: int):
    rendition = db.get_or_404(Rendition, rendition_id)
    require(can_upload_video(current_user, rendition.package))
    if RetryForm().validate_on_submit():
        try:
            services.retry_render(rendition, current_user)
        except DomainError as err:
            db.session.rollback()
            flash(err.message, "danger")
        else:
            db.session.commit()
            flash(_("The render was queued again."), "info")
    return redirect(url_for("studio.package", package_id=rendition.package_id))


@bp.route("/studio/renditions/<int:rendition_id>/video.mp4", methods=["GET", "HEAD"])
@login_required
def rendition_file(rendition_id: int):
    rendition = db.get_or_404(Rendition, rendition_id)
    require(can_view_rendition(current_user, rendition))
    if not rendition.is_ready:
        return jsonify({"error": {"code": "not_ready", "message": _("The rendition is not finished.")}}), 404
    return serve_rendition_in_app(rendition, current_user, file_kind=FILE_VIDEO)


@bp.route("/studio/renditions/<int:rendition_id>/cover.jpg")
@login_required
def rendition_cover(rendition_id: int):
    rendition = db.get_or_404(Rendition, rendition_id)
    require(can_view_rendition(current_user, rendition))
    if not rendition.cover_key:
        return jsonify({"error": {"code": "not_ready", "message": _("No cover yet.")}}), 404
    return serve_rendition_in_app(rendition, current_user, file_kind=FILE_COVER)


@bp.route("/compliance/disclaimer", methods=["GET", "POST"])
@roles_required("compliance")
def disclaimer():
    require(can_manage_disclaimer(current_user))
    version, text = services.current_disclaimer()
    form = DisclaimerForm(data={"text": text})
    status = 400 if request.method == "POST" else 200
    if form.validate_on_submit():
        try:
            services.set_disclaimer(form.text.data, current_user)
        except DomainError as err:
            db.session.rollback()
            flash(err.message, "danger")
        else:
            db.session.commit()
            flash(_("New disclaimer published. Renders from now on use it."), "success")
            return redirect(url_for("video.disclaimer"))
    history = db.session.scalars(db.select(DisclaimerTemplate).order_by(DisclaimerTemplate.version.desc())
                                 .limit(50)).all()
    return render_template("video/disclaimer.html", form=form, version=version, text=text,
                           history=history), status
