"""Account forms: shape validation only; the rules live in services."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    EmailField,
    PasswordField,
    SelectChoice,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from advisor_studio.accounts.models import EMAIL_MAX, NAME_MAX

ROLE_LABELS = {
    "advisor": _l("Advisor"),
    "compliance": _l("Compliance officer"),
    "mcn": _l("MCN partner"),
    "admin": _l("Operations admin"),
}


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=EMAIL_MAX)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=128)])
    remember = BooleanField(_l("Keep me signed in"))


def _role_choices():
    return [SelectChoice(k, v) for k, v in ROLE_LABELS.items()]


class UserCreateForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=EMAIL_MAX)])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=NAME_MAX)])
    password = PasswordField(_l("Initial password"), validators=[DataRequired(), Length(min=10, max=128)])
    roles = MultiCheckboxField(_l("Roles"), choices=_role_choices(), validators=[DataRequired()])
    sac_number = StringField(
        _l("SAC registration no."), validators=[Optional(), Length(max=14)],
        description=_l("Advisors only: the letter S followed by 13 digits."),
    )
    bio = TextAreaField(_l("Bio"), validators=[Optional(), Length(max=2000)])


class UserEditForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=NAME_MAX)])
    roles = MultiCheckboxField(_l("Roles"), choices=_role_choices(), validators=[DataRequired()])
    real_name = StringField(_l("Real name (shown on videos)"), validators=[Optional(), Length(max=NAME_MAX)])
    sac_number = StringField(_l("SAC registration no."), validators=[Optional(), Length(max=14)])
    bio = TextAreaField(_l("Bio"), validators=[Optional(), Length(max=2000)])


class DeactivateForm(FlaskForm):
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=500)])
    confirm = BooleanField(_l("I understand this user will be signed out and unable to sign in."),
                           validators=[DataRequired()])


class ReactivateForm(FlaskForm):
    pass


class LogoutForm(FlaskForm):
    pass


class PasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=128)])
    new_password = PasswordField(_l("New password"), validators=[DataRequired(), Length(min=10, max=128)])


class ProfileForm(FlaskForm):
    bio = TextAreaField(_l("Bio"), validators=[Optional(), Length(max=2000)])
    avatar = FileField(_l("Photo"), description=_l("JPEG, PNG or WebP, at most 5 MB; cropped to a square."))
