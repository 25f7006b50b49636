"""Forms of the partner administration pages: shape validation only; the rules live in services."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from advisor_studio.distribution.models import CHANNEL_PLATFORMS, PLATFORM_LABELS

# Far above any real audience, and small enough for every database's BIGINT.
FOLLOWERS_MAX = 10**12


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class PartnerForm(FlaskForm):
    name = StringField(_l("Partner name"), filters=[_strip], validators=[DataRequired(), Length(max=120)])
    contact_name = StringField(_l("Contact person"), filters=[_strip], validators=[Optional(), Length(max=120)])
    contact_email = StringField(_l("Contact e-mail"), filters=[_strip], validators=[Optional(), Length(max=254)])
    contact_phone = StringField(_l("Contact phone"), filters=[_strip], validators=[Optional(), Length(max=40)])
    webhook_url = StringField(
        _l("Webhook URL"), filters=[_strip], validators=[Optional(), Length(max=500)],
        description=_l("Where asset events are sent. In production it must be https and reach a public address. "
                       "Leave empty to send no webhooks."),
    )


class ConfirmReasonForm(FlaskForm):
    """A security-relevant, destructive action: a reason for the audit trail and (in subclasses) a tick."""

    reason = StringField(_l("Reason"), filters=[_strip], validators=[DataRequired(), Length(max=500)])


class PartnerDeactivateForm(ConfirmReasonForm):
    confirm = BooleanField(_l("I understand the partner's API keys and download links stop working at once."),
                           validators=[DataRequired()])


class KeyRevokeForm(ConfirmReasonForm):
    confirm = BooleanField(_l("I understand requests with this key are refused from now on."),
                           validators=[DataRequired()])


class SecretRegenerateForm(FlaskForm):
    confirm = BooleanField(_l("I understand the partner must switch to the new secret: signatures made with the "
                              "old one no longer match."), validators=[DataRequired()])


class SimpleActionForm(FlaskForm):
    """A button with nothing to fill in (reactivate, unlink): CSRF only."""


class KeyIssueForm(FlaskForm):
    label = StringField(_l("Label (optional)"), filters=[_strip], validators=[Optional(), Length(max=120)],
                        description=_l("What the key is for, e.g. “publishing system”."))


class MemberLinkForm(FlaskForm):
    user_id = SelectField(_l("MCN user"), coerce=int, validators=[InputRequired()],
                          description=_l("Users with the MCN partner role who belong to no partner yet."))


def platform_choices() -> list[tuple[str, str]]:
    return [(key, PLATFORM_LABELS[key]) for key in CHANNEL_PLATFORMS]


class ChannelForm(FlaskForm):
    partner_id = SelectField(_l("Partner"), coerce=int, validators=[InputRequired()])
    platform = SelectField(_l("Platform"), choices=platform_choices, validators=[DataRequired()])
    handle = StringField(_l("Handle"), filters=[_strip], validators=[DataRequired(), Length(max=120)],
                         description=_l("The account name on the platform, e.g. @xinghe_caijing."))
    follower_count = IntegerField(_l("Followers"), validators=[Optional(), NumberRange(min=0, max=FOLLOWERS_MAX)])


class ChannelEditForm(FlaskForm):
    follower_count = IntegerField(_l("Followers"), validators=[Optional(), NumberRange(min=0, max=FOLLOWERS_MAX)])
    active = BooleanField(_l("Active (receives newly approved assets)"))
