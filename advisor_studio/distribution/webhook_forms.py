"""Forms and labels of the webhook delivery log (admin): shape validation only."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField
from wtforms.validators import DataRequired, InputRequired

from advisor_studio.distribution.models import (
    DELIVERY_DELIVERED,
    DELIVERY_FAILED,
    DELIVERY_PENDING,
    DELIVERY_SKIPPED,
    EVENT_ASSIGNED,
    EVENT_EXPIRED,
    EVENT_TAKEDOWN_OVERDUE,
    EVENT_TEST,
    EVENT_WITHDRAWN,
)

EVENT_TYPE_LABELS = {
    EVENT_ASSIGNED: _l("Asset assigned"),
    EVENT_WITHDRAWN: _l("Asset withdrawn"),
    EVENT_EXPIRED: _l("Asset expired"),
    EVENT_TAKEDOWN_OVERDUE: _l("Take-down overdue"),
    EVENT_TEST: _l("Test event"),
}
DELIVERY_STATUS_LABELS = {
    DELIVERY_PENDING: _l("Pending (retrying)"),
    DELIVERY_DELIVERED: _l("Delivered"),
    DELIVERY_FAILED: _l("Failed (gave up)"),
    DELIVERY_SKIPPED: _l("Not sent (no webhook URL)"),
}
DELIVERY_STATUS_STYLES = {DELIVERY_PENDING: "warning", DELIVERY_DELIVERED: "success", DELIVERY_FAILED: "danger",
                          DELIVERY_SKIPPED: "secondary"}


class ResendForm(FlaskForm):
    confirm = BooleanField(_l("I understand the partner receives this event again (same event id)."),
                           validators=[DataRequired()])


class TestEventForm(FlaskForm):
    partner_id = SelectField(_l("Partner"), coerce=int, validators=[InputRequired()], validate_choice=True)
