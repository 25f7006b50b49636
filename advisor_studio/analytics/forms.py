"""The analytics filter form: shape only; which values exist and lie in the user's scope is checked by
``queries.check_filters`` (the same check the CLI uses).

A GET form (it reads, never changes anything, and its query string is the CSV link), so a plain
WTForms ``Form`` without a CSRF token: a token in the address would leak into logs and shared links.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, DateField, Form, SelectChoice, SelectField, StringField
from wtforms.validators import AnyOf, Length, Optional

from advisor_studio.analytics.queries import CAMPAIGN_MAX, DIMENSION_LABELS, DIMENSIONS

DATE_MESSAGE = _l("Enter a date as YYYY-MM-DD.")


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class FunnelFilterForm(Form):
    """Period, grouping and filters of the funnel page, its CSV export and the AARRR panel."""

    date_from = DateField(_l("From"), format="%Y-%m-%d", validators=[Optional()], invalid_value_message=DATE_MESSAGE,
                          render_kw={"placeholder": "YYYY-MM-DD"})
    date_to = DateField(_l("To"), format="%Y-%m-%d", validators=[Optional()], invalid_value_message=DATE_MESSAGE,
                        render_kw={"placeholder": "YYYY-MM-DD"})
    by = SelectField(_l("Group by"), choices=[SelectChoice("", _l("No grouping"))]
                     + [SelectChoice(d, DIMENSION_LABELS[d]) for d in DIMENSIONS],
                     validators=[Optional(), AnyOf(("", *DIMENSIONS), message=_l("Unknown dimension."))],
                     validate_choice=False)
    # Select options come from queries.filter_choices; values are checked by queries.check_filters.
    advisor = SelectField(_l("Advisor"), validate_choice=False, filters=[_strip], validators=[Length(max=12)])
    package = SelectField(_l("Package"), validate_choice=False, filters=[_strip], validators=[Length(max=12)])
    platform = SelectField(_l("Platform"), validate_choice=False, filters=[_strip], validators=[Length(max=32)])
    partner = SelectField(_l("Partner"), validate_choice=False, filters=[_strip], validators=[Length(max=12)])
    channel = SelectField(_l("Channel"), validate_choice=False, filters=[_strip], validators=[Length(max=12)])
    group = SelectField(_l("Community group"), validate_choice=False, filters=[_strip], validators=[Length(max=12)])
    campaign = StringField(_l("Campaign"), filters=[_strip], validators=[Optional(), Length(max=CAMPAIGN_MAX)])
    excluded = BooleanField(_l("Show what was excluded (bots, employees, fraud)"))

    def filter_values(self) -> dict:
        """The raw filter values typed or chosen (empty ones left out)."""
        out = {}
        for name in ("advisor", "package", "platform", "partner", "channel", "group", "campaign"):
            value = self[name].data
            if value not in (None, "", "None"):
                out[name] = value
        return out
