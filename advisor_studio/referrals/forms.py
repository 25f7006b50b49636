"""Referral forms: shape validation only; the rules live in services and groups."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, DateField, HiddenField, IntegerField, SelectChoice, SelectField, StringField
from wtforms.validators import AnyOf, DataRequired, Length, NumberRange, Optional

from advisor_studio.referrals.groups import EXTERNAL_ID_MAX, MEMBER_COUNT_MAX, NAME_MAX
from advisor_studio.referrals.models import GROUP_PLATFORM_LABELS, GROUP_PLATFORMS
from advisor_studio.referrals.services import CAMPAIGN_MAX, DESTINATION_MAX, UTM_VALUE_MAX

KIND_LABELS = {"package": _l("Package link"), "group": _l("Group link"), "general": _l("General link"),
               "customer": _l("Customer link")}
EVENT_LABELS = {"signup": _l("Sign-ups"), "account_opened": _l("Accounts opened"), "funded": _l("Funded"),
                "first_trade": _l("First trades"), "account_rejected": _l("Rejected"), "withdrawal": _l("Withdrawals")}
BULK_TARGETS = {"groups": _l("One link per active group"), "channels": _l("One link per channel of a package")}


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _int_or_none(value):
    if value in (None, "", "None"):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1  # not a choice: the select's own check refuses it


class GroupForm(FlaskForm):
    owner_id = SelectField(_l("Owner (advisor)"), coerce=_int_or_none, validate_choice=True)
    platform = SelectField(_l("Platform"), choices=[SelectChoice(p, GROUP_PLATFORM_LABELS[p]) for p in GROUP_PLATFORMS],
                           validators=[DataRequired(), AnyOf(GROUP_PLATFORMS)])
    name = StringField(_l("Group name"), filters=[_strip], validators=[DataRequired(), Length(max=NAME_MAX)])
    external_id = StringField(_l("External id"), filters=[_strip], validators=[Optional(), Length(max=EXTERNAL_ID_MAX)],
                              description=_l("The group's id on the platform, if you know it; unique per platform."))
    member_count = IntegerField(_l("Members"), default=0,
                                validators=[Optional(), NumberRange(min=0, max=MEMBER_COUNT_MAX)])
    tags = StringField(_l("Tags"), filters=[_strip], validators=[Optional(), Length(max=250)],
                       description=_l("Separated by commas, e.g. 老客户, 北京"))


class ArchiveForm(FlaskForm):
    confirm = BooleanField(_l("I understand the group gets no new links; its links and history stay."),
                           validators=[DataRequired()])


class GroupImportForm(FlaskForm):
    owner_id = SelectField(_l("Owner (advisor)"), coerce=_int_or_none, validate_choice=True)
    file = FileField(_l("CSV file"), validators=[FileRequired()],
                     description=_l("Columns: platform,name,external_id,member_count,tags. UTF-8 or GBK."))


class LinkForm(FlaskForm):
    package_id = SelectField(_l("Package (approved)"), coerce=_int_or_none, validate_choice=True)
    channel_id = SelectField(_l("Channel of the package"), coerce=_int_or_none, validate_choice=True)
    group_id = SelectField(_l("Community group"), coerce=_int_or_none, validate_choice=True)
    campaign = StringField(_l("Campaign"), filters=[_strip], validators=[Optional(), Length(max=CAMPAIGN_MAX)])
    host = SelectField(_l("Account-opening site"), validators=[DataRequired()])
    path = StringField(_l("Page path"), filters=[_strip], default="/",
                       validators=[Optional(), Length(max=DESTINATION_MAX - 100)],
                       description=_l("The part after the site, e.g. /open?branch=bj"))
    destination = StringField(_l("Or the full address"), filters=[_strip],
                              validators=[Optional(), Length(max=DESTINATION_MAX)],
                              description=_l("Overrides site and path; must be https on an allowed site."))
    utm_source = StringField("utm_source", filters=[_strip], validators=[Optional(), Length(max=UTM_VALUE_MAX)])
    utm_medium = StringField("utm_medium", filters=[_strip], validators=[Optional(), Length(max=UTM_VALUE_MAX)])
    utm_campaign = StringField("utm_campaign", filters=[_strip], validators=[Optional(), Length(max=UTM_VALUE_MAX)])
    utm_term = StringField("utm_term", filters=[_strip], validators=[Optional(), Length(max=UTM_VALUE_MAX)])
    utm_content = StringField("utm_content", filters=[_strip], validators=[Optional(), Length(max=UTM_VALUE_MAX)])
    expires_on = DateField(_l("Expires after (optional)"), validators=[Optional()],
                           description=_l("The link answers “expired” from the day after (Beijing time)."))


class BulkLinkForm(LinkForm):
    target = SelectField(_l("Create"), choices=[SelectChoice(k, v) for k, v in BULK_TARGETS.items()],
                         validators=[DataRequired()])


class ToggleForm(FlaskForm):
    enabled = HiddenField(validators=[DataRequired(), AnyOf(("1", "0"))])
    confirm = BooleanField(
        _l("I confirm: a disabled link answers “no longer available” to everyone who opens it."),
        validators=[Optional()])


class CustomerLinkForm(FlaskForm):
    customer_ref = StringField(_l("Customer reference"), filters=[_strip],
                               validators=[DataRequired(), Length(max=128)],
                               description=_l("As the account-opening system knows the customer (e.g. the "
                                              "customer number). It is only compared by its keyed hash."))

