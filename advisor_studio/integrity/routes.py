"""The compliance integrity page: re-verification runs, alerts, "verify now" and resolving an alert."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from advisor_studio.access import require, roles_required
from advisor_studio.errors import DomainError
from advisor_studio.extensions import db
from advisor_studio.integrity import queries, services
from advisor_studio.integrity.forms import ResolveAlertForm, VerifyNowForm
from advisor_studio.integrity.models import IntegrityAlert
from advisor_studio.integrity.permissions import can_manage_integrity

bp = Blueprint("integrity", __name__, url_prefix="/compliance/integrity")


@bp.route("")
@roles_required("compliance")
def index():
    require(can_manage_integrity(current_user))
    runs = queries.recent_runs()
    return render_template("integrity/index.html", runs=runs, alerts=queries.alerts(),
                           active=any(r.is_active for r in runs), verify_form=VerifyNowForm(),
                           resolve_form=ResolveAlertForm(formdata=None))


@bp.route("/verify", methods=["POST"])
@roles_required("compliance")
def verify_now():
    require(can_manage_integrity(current_user))
    if VerifyNowForm().validate_on_submit():
        run = services.request_run(current_user)
        db.session.commit()
        flash(_("Re-verification %(id)d is queued; progress shows below.", id=run.id), "info")
    return redirect(url_for("integrity.index"))


@bp.route("/alerts/<int:alert_id>/resolve", methods=["POST"])
@roles_required("compliance")
def resolve(alert_id: int):
    alert = db.get_or_404(IntegrityAlert, alert_id)
    require(can_manage_integrity(current_user))
    form = ResolveAlertForm()
    if not form.validate_on_submit():
        flash(_("Say how the file was restored."), "danger")
        return redirect(url_for("integrity.index"))
    try:
        services.resolve_alert(alert, current_user, form.note.data)
    except DomainError as err:
        db.session.rollback()
        flash(err.message, "danger")
    else:
        db.session.commit()
        flash(_("The alert is resolved."), "success")
    return redirect(url_for("integrity.index"))
