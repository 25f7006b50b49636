"""Forms and labels of the mcn portal: shape validation only; the rules live in services."""

from __future__ import annotations

from datetime import datetime

from flask_babel import get_timezone
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateTimeLocalField, HiddenField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, Regexp

from advisor_studio.distribution.queries import (
    TAKEDOWN_CONFIRMED,
    TAKEDOWN_NOT_NEEDED,
    TAKEDOWN_OUTSTANDING,
    TAKEDOWN_OVERDUE,
)
from advisor_studio.distribution.services import POST_URL_MAX

TAKEDOWN_STATE_LABELS = {
    TAKEDOWN_NOT_NEEDED: _l("Live, nothing to take down"),
    TAKEDOWN_OUTSTANDING: _l("Take-down outstanding"),
    TAKEDOWN_OVERDUE: _l("Take-down overdue"),
    TAKEDOWN_CONFIRMED: _l("Removal confirmed"),
}
# The formats a browser's datetime-local input sends (with and without seconds).
LOCAL_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]


def local_now_value() -> str:
    """Now in the user's time zone, as a datetime-local input shows it (the form's default)."""
    return datetime.now(get_timezone()).strftime("%Y-%m-%dT%H:%M")


def as_aware(value: datetime | None) -> datetime | None:
    """A time typed into a datetime-local input is the user's local time (the app's time zone)."""
    if value is None or value.tzinfo is not None:
        return value
    zone = get_timezone()
    # A pytz zone must localize (replace() would pick its first historic offset, e.g. +08:06 LMT).
    return zone.localize(value) if hasattr(zone, "localize") else value.replace(tzinfo=zone)


class PublicationForm(FlaskForm):
    """Where and when the partner posted an asset; the platform is the channel's, not a choice."""

    post_url = StringField(_l("Post URL"), validators=[DataRequired(_l("Enter the address of the post.")),
                                                     Length(max=POST_URL_MAX)],
                           description=_l("The address of the post on the platform, copied from the app or site."))
    published_at = DateTimeLocalField(_l("Published at"), format=LOCAL_FORMATS,
                                      validators=[InputRequired(_l("Enter when the post went online."))])


class TakedownForm(FlaskForm):
    """The partner confirms one reported post removed."""

    publication_id = HiddenField(validators=[DataRequired(), Regexp(r"^[0-9]{1,9}$")])
    removed_at = DateTimeLocalField(_l("Removed at"), format=LOCAL_FORMATS,
                                    validators=[InputRequired(_l("Enter when the post was removed."))])
    confirm = BooleanField(_l("I confirm this post is no longer visible on the platform."),
                           validators=[DataRequired(_l("Tick the box to confirm the removal."))])
