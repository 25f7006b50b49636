"""Integrity forms: shape validation only."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length


class VerifyNowForm(FlaskForm):
    """The "verify now" button (CSRF only)."""


class ResolveAlertForm(FlaskForm):
    note = TextAreaField(_l("How was the file restored?"), validators=[DataRequired(), Length(max=500)])
