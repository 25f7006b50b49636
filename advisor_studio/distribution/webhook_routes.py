"""Webhook views of the distribution blueprint (see routes.py): the delivery log, one event with its
attempts, re-send one event, send a test event. Admin only."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from advisor_studio.access import roles_required
from advisor_studio.distribution import webhooks
from advisor_studio.distribution.models import DELIVERY_STATUSES, EVENT_TYPES, Partner, WebhookEvent
from advisor_studio.distribution.routes import bp
from advisor_studio.distribution.webhook_forms import (
    DELIVERY_STATUS_LABELS,
    DELIVERY_STATUS_STYLES,
    EVENT_TYPE_LABELS,
    ResendForm,
    TestEventForm,
)
from advisor_studio.errors import DomainError, ValidationError
from advisor_studio.extensions import db
from advisor_studio.web import query_int, query_page


def _choice(name: str, allowed) -> str | None:
    value = (request.args.get(name) or "").strip()
    if not value:
        return None
    if value not in allowed:
        raise ValidationError(_("Unknown value for “%(name)s”; pick one from the list.", name=name),
                              fields={name: _("invalid")}, code="bad_query")
    return value


def _test_form(partners) -> TestEventForm:
    form = TestEventForm()
    form.partner_id.choices = [(p.id, p.name) for p in partners if p.webhook_url]
    return form


def _labels() -> dict:
    return {"type_labels": EVENT_TYPE_LABELS, "status_labels": DELIVERY_STATUS_LABELS,
            "status_styles": DELIVERY_STATUS_STYLES}


@bp.route("/admin/webhooks")
@roles_required("admin")
def webhooks_log():
    filters = {"partner_id": query_int("partner"), "type_": _choice("type", EVENT_TYPES),
               "status": _choice("status", DELIVERY_STATUSES)}
    page = db.paginate(webhooks.delivery_log_query(**filters), page=query_page(),
                       per_page=current_app.config["PAGE_SIZE"], error_out=False)
    partners = webhooks.partners_for_log()
    return render_template("distribution/webhooks/log.html", page=page, filters=filters, partners=partners,
                           event_types=EVENT_TYPES, statuses=DELIVERY_STATUSES, test_form=_test_form(partners),
                           **_labels())


@bp.route("/admin/webhooks/<int:event_pk>")
@roles_required("admin")
def webhook_event(event_pk: int):
    event = db.get_or_404(WebhookEvent, event_pk)
    return render_template("distribution/webhooks/event.html", event=event, resend_form=ResendForm(),
                           **_labels())


@bp.route("/admin/webhooks/<int:event_pk>/resend", methods=["POST"])
@roles_required("admin")
def webhook_resend(event_pk: int):
    event = db.get_or_404(WebhookEvent, event_pk)
    form = ResendForm()
    if not form.validate_on_submit():
        flash(_("Tick the confirmation to send this event again."), "danger")
        return redirect(url_for("distribution.webhook_event", event_pk=event.id))
    try:
        webhooks.resend(event, actor=current_user)
    except DomainError as err:
        db.session.rollback()
        flash(err.message, "danger")
    else:
        db.session.commit()
        flash(_("Event %(id)s queued again; the new attempts appear below.", id=event.event_id), "success")
    return redirect(url_for("distribution.webhook_event", event_pk=event.id))


@bp.route("/admin/webhooks/test", methods=["POST"])
@roles_required("admin")
def webhook_test():
    form = _test_form(webhooks.partners_for_log())
    if not form.validate_on_submit():
        flash(_("Choose a partner with a webhook URL to send a test event to."), "danger")
        return redirect(url_for("distribution.webhooks_log"))
    partner = db.session.get(Partner, form.partner_id.data)
    if partner is None:
        abort(404)
    try:
        event = webhooks.send_test_event(partner, actor=current_user)
    except DomainError as err:
        db.session.rollback()
        flash(err.message, "danger")
        return redirect(url_for("distribution.webhooks_log"))
    db.session.commit()
    flash(_("Test event sent to %(partner)s; its delivery result appears below within a minute.",
            partner=partner.name), "success")
    return redirect(url_for("distribution.webhook_event", event_pk=event.id))
