"""Compliance pages of fraud flags: the filtered list, one flag with its items and numbers, the decision."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from advisor_studio.access import require, roles_required
from advisor_studio.analytics import fraud, fraud_queries
from advisor_studio.analytics.fraud_forms import (
    DETAIL_LABELS,
    KIND_LABELS,
    REASON_LABELS,
    STATUS_LABELS,
    DecisionForm,
)
from advisor_studio.analytics.models import FLAG_CONFIRMED, FLAG_KINDS, FLAG_OPEN, FLAG_STATUSES, FraudFlag
from advisor_studio.analytics.permissions import can_review_fraud
from advisor_studio.errors import DomainError, ValidationError
from advisor_studio.extensions import db
from advisor_studio.referrals.models import DEVICE_LABELS, IN_APP_LABELS
from advisor_studio.web import query_date, query_int, query_page

bp = Blueprint("fraud", __name__, url_prefix="/compliance/fraud")

PAGE_SIZES = (25, 50, 100)
ALL = "all"


@bp.app_context_processor
def fraud_labels():
    return {"fraud_kind_labels": KIND_LABELS, "fraud_status_labels": STATUS_LABELS}


def _choice(name: str, allowed, default: str = "") -> str:
    raw = request.args.get(name)
    if raw is None:
        return default
    value = raw.strip()
    if value and value not in allowed:
        raise ValidationError(_("“%(name)s” in the address must be one of: %(allowed)s.", name=name,
                                allowed=", ".join(allowed)), fields={name: _("invalid")}, code="bad_query")
    return value


def _filters() -> tuple[fraud_queries.FlagFilters, dict]:
    status = _choice("status", (*FLAG_STATUSES, ALL), default=FLAG_OPEN)
    kind = _choice("kind", FLAG_KINDS)
    advisor = query_int("advisor")
    day_from, day_to = query_date("from"), query_date("to")
    if day_from and day_to and day_to < day_from:
        raise ValidationError(_("The end date lies before the start date."), fields={"to": _("invalid")},
                              code="bad_query")
    filters = fraud_queries.FlagFilters(status=None if status in ("", ALL) else status, kind=kind or None,
                                        advisor_id=advisor, day_from=day_from, day_to=day_to)
    shown = {"status": status or ALL, "kind": kind, "advisor": advisor, "from": day_from.isoformat() if day_from
             else "", "to": day_to.isoformat() if day_to else ""}
    return filters, shown


def _per_page() -> int:
    number = query_int("per_page")
    return number if number in PAGE_SIZES else current_app.config.get("PAGE_SIZE", 25)


@bp.route("")
@roles_required("compliance")
def flags():
    require(can_review_fraud(current_user))
    filters, shown = _filters()
    page = db.paginate(fraud_queries.flags_query(filters), page=query_page(), per_page=_per_page(), error_out=False)
    counts = fraud_queries.item_counts([flag.id for flag in page.items])
    return render_template("analytics/fraud_flags.html", page=page, filters=shown, counts=counts,
                           kinds=FLAG_KINDS, statuses=FLAG_STATUSES, advisors=fraud_queries.advisors())


def _load(flag_id: int) -> FraudFlag:
    flag = db.session.get(FraudFlag, flag_id)
    if flag is None:
        abort(404)
    return flag


def _render_flag(flag: FraudFlag, form: DecisionForm, status: int = 200):
    counts = fraud_queries.item_counts([flag.id])[flag.id]
    return render_template("analytics/fraud_flag.html", flag=flag, form=form, counts=counts,
                           clicks=fraud_queries.flag_clicks(flag), conversions=fraud_queries.flag_conversions(flag),
                           items_shown=fraud_queries.ITEMS_SHOWN, detail_labels=DETAIL_LABELS,
                           reason_labels=REASON_LABELS, device_labels=DEVICE_LABELS,
                           in_app_labels=IN_APP_LABELS), status


@bp.route("/<int:flag_id>")
@roles_required("compliance")
def flag(flag_id: int):
    require(can_review_fraud(current_user))
    return _render_flag(_load(flag_id), DecisionForm(formdata=None))


@bp.route("/<int:flag_id>/decision", methods=["POST"])
@roles_required("compliance")
def decide(flag_id: int):
    require(can_review_fraud(current_user))
    flag = _load(flag_id)
    form = DecisionForm()
    if not form.validate_on_submit():
        flash(_("The decision was not saved: check the fields below."), "danger")
        return _render_flag(flag, form, 400)
    try:
        fraud.decide(flag, form.decision.data, form.note.data, actor=current_user)
    except DomainError as err:
        db.session.rollback()
        for name, why in err.fields.items():
            if name in form:
                form[name].errors = list(form[name].errors) + [why]
        flash(err.message, "warning" if err.status == 409 else "danger")
        if err.status == 409:
            return redirect(url_for(".flag", flag_id=flag_id))
        return _render_flag(_load(flag_id), form, err.status)
    db.session.commit()
    flash(_("Flag confirmed: its clicks and conversions are held out of the figures.") if flag.status == FLAG_CONFIRMED
          else _("Flag cleared: its clicks and conversions count as usual."), "success")
    return redirect(url_for(".flag", flag_id=flag_id))
