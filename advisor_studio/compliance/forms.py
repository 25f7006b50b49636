"""Compliance forms: shape validation only; the rules live in services."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import AnyOf, DataRequired, Length, NumberRange, Optional, Regexp
from wtforms.widgets import CheckboxInput, HiddenInput, ListWidget

from advisor_studio.compliance.models import DECISION_APPROVE, DECISION_REJECT, DECISION_REQUEST_CHANGES
from advisor_studio.compliance.queries import ANCHOR_FIELDS
from advisor_studio.compliance.scanner import MAX_NOTE_LENGTH, MAX_PHRASE_LENGTH, MAX_SUGGESTION_LENGTH
from advisor_studio.compliance.services import COMMENT_MAX, REASON_MAX
from advisor_studio.dbtypes import MAX_INTEGER
from advisor_studio.distribution.models import PLATFORM_LABELS, PLATFORMS

STAGE_LABELS = {"script": _l("Script"), "package": _l("Package")}
DECISION_LABELS = {
    DECISION_APPROVE: _l("Approve"),
    DECISION_REQUEST_CHANGES: _l("Request changes"),
    DECISION_REJECT: _l("Reject"),
}
KIND_LABELS = {"forbidden": _l("Forbidden"), "required": _l("Required"), "allow": _l("Allowed context")}
SEVERITY_LABELS = {"block": _l("Blocking"), "warn": _l("Warning")}
FIELD_LABELS = {"title": _l("Title"), "body": _l("Script"), "caption": _l("Caption"), "hashtags": _l("Hashtags"),
                "subtitles": _l("Subtitles"), "": _l("Whole submission")}
TEXT_MAX = 20_000
CSV_MAX_BYTES = 2 * 1024 * 1024


def _choices(pairs) -> list[SelectChoice]:
    return [SelectChoice(key, label) for key, label in pairs]


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ClaimForm(FlaskForm):
    pass


class ReleaseForm(FlaskForm):
    pass


class CommentForm(FlaskForm):
    body = TextAreaField(_l("Comment"), filters=[_strip], validators=[DataRequired(), Length(max=COMMENT_MAX)])
    # Upper bounds: these land in INTEGER columns (or an id lookup), where a larger number is a database error.
    parent_id = IntegerField(widget=HiddenInput(), validators=[Optional(), NumberRange(min=1, max=MAX_INTEGER)])
    anchor_field = HiddenField(validators=[Optional(), AnyOf(ANCHOR_FIELDS)])
    anchor_start = IntegerField(widget=HiddenInput(), validators=[Optional(), NumberRange(min=0, max=MAX_INTEGER)])
    anchor_end = IntegerField(widget=HiddenInput(), validators=[Optional(), NumberRange(min=1, max=MAX_INTEGER)])
    timecode_ms = IntegerField(widget=HiddenInput(), validators=[Optional(), NumberRange(min=0, max=MAX_INTEGER)])


class DecisionForm(FlaskForm):
    decision = RadioField(_l("Decision"), choices=_choices(DECISION_LABELS.items()), validators=[DataRequired()])
    reason = TextAreaField(_l("Comment or reason"), filters=[_strip], validators=[Length(max=REASON_MAX)],
                           description=_l("Required when you request changes or reject."))
    confirm_reject = BooleanField(_l("I confirm the rejection: the submission cannot be resubmitted."))
    manifest_sha256 = HiddenField(validators=[DataRequired(), Regexp(r"^[0-9a-f]{64}$")])

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if self.decision.data in (DECISION_REQUEST_CHANGES, DECISION_REJECT) and not self.reason.data:
            self.reason.errors = [*self.reason.errors, _l("Explain what must change, or why it is rejected.")]
            ok = False
        if self.decision.data == DECISION_REJECT and not self.confirm_reject.data:
            self.confirm_reject.errors = [*self.confirm_reject.errors, _l("Tick the box to confirm the rejection.")]
            ok = False
        return ok


class WithdrawForm(FlaskForm):
    reason = StringField(_l("Reason"), filters=[_strip], validators=[DataRequired(), Length(max=500)])
    confirm = BooleanField(_l("I understand partners must take this content down and downloads stop."),
                           validators=[DataRequired()])


def _platform_pairs():
    return [(key, PLATFORM_LABELS.get(key, key)) for key in sorted(PLATFORMS)]


class RuleForm(FlaskForm):
    phrase = StringField(_l("Phrase"), filters=[_strip], validators=[DataRequired(), Length(max=MAX_PHRASE_LENGTH)])
    kind = SelectField(_l("Kind"), choices=_choices(KIND_LABELS.items()), validators=[DataRequired()])
    severity = SelectField(_l("Severity"), choices=_choices([("", "—"), *SEVERITY_LABELS.items()]),
                           validators=[Optional()],
                           description=_l("Forbidden and required phrases need a severity; allowed contexts none."))
    category = StringField(_l("Category"), filters=[_strip], validators=[Optional(), Length(max=40)],
                           description=_l("Lower-case letters, digits and _; e.g. return_promise."))
    note = TextAreaField(_l("Note"), filters=[_strip], validators=[Optional(), Length(max=MAX_NOTE_LENGTH)],
                         description=_l("Why the phrase is listed (rule, article); shown to advisors."))
    suggestion = TextAreaField(_l("Suggested wording"), filters=[_strip],
                               validators=[Optional(), Length(max=MAX_SUGGESTION_LENGTH)],
                               description=_l("A compliant rewording shown with the finding; leave empty when "
                                              "there is none."))
    platforms = MultiCheckboxField(_l("Only on these platforms (none: all platforms)"),
                                   choices=_choices(_platform_pairs()))
    group = StringField(_l("Group"), filters=[_strip], validators=[Optional(), Length(max=60)],
                        description=_l("Required phrases of one group are alternatives: one of them suffices."))


class RemoveRuleForm(FlaskForm):
    reason = StringField(_l("Reason"), filters=[_strip], validators=[DataRequired(), Length(max=400)])
    confirm = BooleanField(_l("I understand this takes the phrase out of every future scan."),
                           validators=[DataRequired()])


class ImportForm(FlaskForm):
    file = FileField(_l("CSV file"), validators=[FileRequired()],
                     description=_l("Columns: phrase,kind,severity,note, optionally "
                                    "category,platforms,group,suggestion."))
    note = StringField(_l("Note for the new version"), filters=[_strip], validators=[Optional(), Length(max=200)])


class TryScannerForm(FlaskForm):
    text = TextAreaField(_l("Text to check"), validators=[DataRequired(), Length(max=TEXT_MAX)])
    platform = SelectField(_l("Platform"), choices=_choices([("", _l("All platforms")), *_platform_pairs()]),
                           validators=[Optional()])
