"""Video forms: shape validation only."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, Length

from advisor_studio.video.services import DISCLAIMER_MAX


class RetryForm(FlaskForm):
    pass


class UploadForm(FlaskForm):
    """Only carries the CSRF token; the file goes through the streaming uploader."""


class DisclaimerForm(FlaskForm):
    text = StringField(_l("Disclaimer"), validators=[DataRequired(), Length(max=DISCLAIMER_MAX)])
    confirm = BooleanField(_l("I confirm: every video rendered from now on carries this text."),
                           validators=[DataRequired(_l("Tick the confirmation to publish."))])
