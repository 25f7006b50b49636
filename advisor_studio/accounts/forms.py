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
    SelectField,
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


def _optional_id(value):
    """"" (no choice) -> None; a select's value otherwise an int (ValueError makes it an invalid choice)."""
    if value is None or value == "":
        return None
    return int(value)


def _partner_field():
    # MCN users only; the view fills the choices with the partners (distribution.queries.partner_choices).
    return SelectField(_l("Partner"), coerce=_optional_id, choices=[], validators=[Optional()],
                       description=_l("The MCN agency this user works for; they see only its assets."))


class UserCreateForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=EMAIL_MAX)])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=NAME_MAX)])
    password = PasswordField(_l("Initial password"), validators=[DataRequired(), Length(min=10, max=128)])
    roles = MultiCheckboxField(_l("Roles"), choices=_role_choices(), validators=[DataRequired()])
    partner_id = _partner_field()
    sac_number = StringField(
        _l("SAC registration no."), validators=[Optional(), Length(max=14)],
        description=_l("Advisors only: the letter S followed by 13 digits."),
    )
    bio = TextAreaField(_l("Bio"), validators=[Optional(), Length(max=2000)])


class UserEditForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=NAME_MAX)])
    roles = MultiCheckboxField(_l("Roles"), choices=_role_choices(), validators=[DataRequired()])
    partner_id = _partner_field()
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


class SecondStepForm(FlaskForm):
    code = StringField(_l("Code from your authenticator app, or a recovery code"),
                       validators=[DataRequired(), Length(max=32)], render_kw={"autocomplete": "one-time-code"})


class TotpStartForm(FlaskForm):
    pass


class TotpConfirmForm(FlaskForm):
    code = StringField(_l("6-digit code"), validators=[DataRequired(), Length(max=16)],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"})


class TotpDisableForm(FlaskForm):
    password = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=128)])
    code = StringField(_l("Code from your authenticator app, or a recovery code"),
                       validators=[DataRequired(), Length(max=32)])


class ConfirmIdentityForm(FlaskForm):
    password = PasswordField(_l("Password"), validators=[Optional(), Length(max=128)])
    code = StringField(_l("Or the 6-digit code from your authenticator app"), validators=[Optional(), Length(max=16)],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"})


class ResetPasswordForm(FlaskForm):
    password = PasswordField(_l("Temporary password"), validators=[Optional(), Length(max=128)],
                             description=_l("Leave empty to generate one; it is shown once."))
    confirm = BooleanField(_l("The user is signed out and must choose a new password at next sign-in."),
                           validators=[DataRequired()])


class GrantDecisionForm(FlaskForm):
    pass
