"""Reconciliation upload form: shape validation only; the file's rules live in ``reconciliation``."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import DateField
from wtforms.validators import InputRequired, ValidationError

from advisor_studio.web import FIRST_DAY, LAST_DAY


def _in_calendar(form, field) -> None:
    if field.data is not None and not FIRST_DAY <= field.data <= LAST_DAY:
        raise ValidationError(_l("Pick a date from %(first)s to %(last)s.", first=FIRST_DAY.isoformat(),
                                 last=LAST_DAY.isoformat()))


class ReconciliationUploadForm(FlaskForm):
    period_from = DateField(_l("Period from"), validators=[InputRequired(_l("Enter the first day of the period.")),
                                                           _in_calendar])
    period_to = DateField(_l("Period to"), validators=[InputRequired(_l("Enter the last day of the period.")),
                                                       _in_calendar])
    file = FileField(_l("CSV of accounts opened"), validators=[FileRequired(_l("Choose the CSV file."))],
                     description=_l("Exported from the account-opening system, with the columns described under "
                                    "Format. UTF-8, UTF-8 with BOM or GBK."))

    def validate_period_to(self, field) -> None:
        if field.data and self.period_from.data and field.data < self.period_from.data:
            raise ValidationError(_l("The period ends before it starts."))
