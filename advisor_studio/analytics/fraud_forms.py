"""Fraud flag forms and labels: shape validation only; the rules live in analytics/fraud.py."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectChoice, SelectField, TextAreaField
from wtforms.validators import DataRequired, Length

from advisor_studio.analytics.fraud import NOTE_MAX
from advisor_studio.analytics.models import (
    FLAG_CLEARED,
    FLAG_CONFIRMED,
    FLAG_NETWORK_BURST,
    FLAG_OPEN,
    FLAG_SELF_CONVERSION,
    FLAG_SHORT_LAG,
    FLAG_SIGNUP_BURST,
    FLAG_VISITOR_BURST,
)

KIND_LABELS = {
    FLAG_SHORT_LAG: _l("Implausibly fast signup"),
    FLAG_VISITOR_BURST: _l("Click burst from one visitor"),
    FLAG_NETWORK_BURST: _l("Click burst from one network"),
    FLAG_SELF_CONVERSION: _l("Own or employee account"),
    FLAG_SIGNUP_BURST: _l("Signup burst from one device and network"),
}
STATUS_LABELS = {FLAG_OPEN: _l("Awaiting decision"), FLAG_CONFIRMED: _l("Confirmed"), FLAG_CLEARED: _l("Cleared")}
# The numbers a detector stores on a flag, as the page names them.
DETAIL_LABELS = {
    "lag_seconds": _l("Click to signup (seconds)"),
    "threshold_seconds": _l("Threshold (seconds)"),
    "click_at": _l("Click at (UTC)"),
    "signup_at": _l("Signup at (UTC)"),
    "threshold_clicks": _l("Threshold (clicks)"),
    "threshold_signups": _l("Threshold (signups)"),
    "window_minutes": _l("Window (minutes)"),
    "link_id": _l("Link id"),
    "visitor_hash": _l("Visitor (hashed)"),
    "ip_prefix": _l("Network"),
    "device_class": _l("Device class"),
    "customer_id": _l("Customer id"),
    "reasons": _l("Why"),
    "clicks": _l("Clicks"),
    "first_click_at": _l("First click (UTC)"),
    "last_click_at": _l("Last click (UTC)"),
    "links": _l("Links"),
    "visitors": _l("Visitors"),
    "advisors": _l("Advisors"),
    "conversions": _l("Conversions"),
    "events": _l("Events"),
}
REASON_LABELS = {"employee": _l("an employee's account"),
                 "own_referral_link": _l("a customer converting through their own link")}


class DecisionForm(FlaskForm):
    """Confirm or clear a flag: a note saying why, and a tick confirming the decision is final."""

    decision = SelectField(_l("Decision"), choices=[
        SelectChoice(FLAG_CONFIRMED, _l("Confirm: fraud, hold it out of the figures")),
        SelectChoice(FLAG_CLEARED, _l("Clear: not fraud, it counts"))],
                           validators=[DataRequired(message=_l("Choose confirm or clear."))])
    note = TextAreaField(_l("Note"), filters=[lambda v: v.strip() if isinstance(v, str) else v],
                         validators=[DataRequired(message=_l("A note is required: say why.")), Length(max=NOTE_MAX)])
    confirm = BooleanField(_l("I have checked the items; this decision is final."),
                           validators=[DataRequired(message=_l("Tick the box to confirm."))])
