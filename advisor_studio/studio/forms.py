"""Studio forms: shape validation only; the rules (lengths, control characters, SRT, channels) live
in studio.services so the pages and any other caller get the same answers."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    FloatField,
    IntegerField,
    SelectChoice,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, ValidationError
from wtforms.widgets import CheckboxInput, HiddenInput, ListWidget

from advisor_studio.compliance.services import COMMENT_MAX
from advisor_studio.dbtypes import MAX_INTEGER
from advisor_studio.distribution.models import PLATFORM_LABELS, PLATFORMS
from advisor_studio.studio.models import TITLE_MAX
from advisor_studio.studio.services import SRT_MAX_BYTES


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ScriptForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=TITLE_MAX)])
    body = TextAreaField(_l("Script"), description=_l(
        "What you will say in the video. Include the risk disclosure and your SAC registration no."))
    caption = TextAreaField(_l("Caption"), description=_l("The text posted with the video."))
    hashtags = StringField(_l("Hashtags"), description=_l("Separate with spaces, e.g. #理财 #资产配置"))
    platforms = MultiCheckboxField(_l("Target platforms"),
                                   choices=[SelectChoice(p, PLATFORM_LABELS[p]) for p in PLATFORMS])


class PackageForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=TITLE_MAX)])
    caption = TextAreaField(_l("Caption"))
    hashtags = StringField(_l("Hashtags"), description=_l("Separate with spaces, e.g. #理财 #资产配置"))
    channels = MultiCheckboxField(_l("MCN channels"), coerce=int, choices=[])
    subtitles = FileField(_l("Subtitles (SRT)"), description=_l(
        "Optional. An .srt file in UTF-8 or GB18030, at most 2 MB; leave empty to keep the current one."))
    remove_subtitles = BooleanField(_l("Remove the subtitles"))
    cover_time_s = FloatField(_l("Cover frame at (seconds)"), validators=[Optional(), NumberRange(min=0, max=3600)])
    title_card = BooleanField(_l("Open with a title card"))
    confirm_void = BooleanField(_l("I understand that saving voids the approval and needs a new review."))

    def _upload(self):
        upload = self.subtitles.data
        return upload if upload is not None and getattr(upload, "filename", "") else None

    def validate_subtitles(self, field) -> None:
        upload = self._upload()
        if upload is not None:
            first = upload.stream.read(1)
            upload.stream.seek(0)
            if not first:
                raise ValidationError(_l("The subtitle file is empty."))

    def subtitle_bytes(self) -> bytes | None:
        """The uploaded SRT, read up to one byte past the limit (the service refuses larger files)."""
        upload = self._upload()
        return upload.stream.read(SRT_MAX_BYTES + 1) if upload is not None else None


class ActionForm(FlaskForm):
    """A button that changes state (submit, recall, create a package): CSRF only."""


class ArchiveForm(FlaskForm):
    reason = StringField(_l("Reason (optional)"), validators=[Optional(), Length(max=500)])
    confirm = BooleanField(_l("Archive it. Nothing is deleted, but it can no longer be changed or submitted."),
                           validators=[DataRequired()])


class ReplyForm(FlaskForm):
    """The author's answer to a comment in a review thread of their script or package."""

    body = TextAreaField(_l("Reply"), filters=[lambda v: v.strip() if isinstance(v, str) else v], validators=[
        DataRequired(_l("Write your reply first.")),
        Length(max=COMMENT_MAX, message=_l("A reply may have at most %(max)d characters."))])
    # The comment answered; an upper bound because it is looked up in an INTEGER column.
    parent_id = IntegerField(widget=HiddenInput(), validators=[InputRequired(), NumberRange(min=1, max=MAX_INTEGER)])
