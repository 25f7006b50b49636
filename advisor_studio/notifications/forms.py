"""Notification forms: shape validation only."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField
from wtforms.validators import Optional, Regexp


class ReadAllForm(FlaskForm):
    """Mark every notification up to the newest one shown as read."""

    up_to = HiddenField(validators=[Optional(), Regexp(r"^[0-9]{1,10}$")])


class EmailPreferenceForm(FlaskForm):
    email_enabled = BooleanField(_l("Also send me my notifications by e-mail"))
