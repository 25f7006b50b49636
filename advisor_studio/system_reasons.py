"""The reasons the system itself gives for a change (a status transition, a voided approval): written
once, in English, into the record (``Approval.void_reason``, the audit entry's ``reason``), and worded
in the reader's language when a page shows them.

The services build every such reason here, so the text they store and the patterns ``label`` reads
back are one definition; reasons stored before this module existed have the same wording and read
the same way. A reason a person typed (a withdrawal's, an officer's decision) is shown as typed.
"""

from __future__ import annotations

import re

from babel.lists import format_list
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

# Fixed reasons, as stored.
CHANGED_AFTER_APPROVAL = "changed after approval"
EDITED_AFTER_EXPIRY = "edited after expiry"
EDITED_AFTER_PREAPPROVAL = "edited after pre-approval"
RECALLED_BY_AUTHOR = "recalled by the author"
NEW_RENDITION_IN_REVIEW = "a new rendition replaced the one under review"
APPROVAL_PERIOD_ENDED = "approval period ended"
PUBLICATION_REPORTED = "publication reported"
# Written by migration 7c1d2e3f4a5b, which closed duplicate approvals left by earlier races.
DUPLICATE_CLOSED_BY_MIGRATION = "superseded by a newer approval (duplicate closed by migration 7c1d2e3f4a5b)"

FIXED = {
    CHANGED_AFTER_APPROVAL: _l("Changed after approval"),
    EDITED_AFTER_EXPIRY: _l("Edited after the approval expired"),
    EDITED_AFTER_PREAPPROVAL: _l("Edited after pre-approval"),
    RECALLED_BY_AUTHOR: _l("Recalled by the author"),
    NEW_RENDITION_IN_REVIEW: _l("A new rendition replaced the one under review"),
    APPROVAL_PERIOD_ENDED: _l("The approval period ended"),
    PUBLICATION_REPORTED: _l("Publication reported"),
    DUPLICATE_CLOSED_BY_MIGRATION: _l("Superseded by a newer approval (a duplicate closed during an upgrade)"),
}

# What an edit changed (studio services list these field names).
FIELD_LABELS = {
    "title": _l("Title"), "body": _l("Script"), "caption": _l("Caption"), "hashtags": _l("Hashtags"),
    "platforms": _l("Platforms"), "channels": _l("Channels"), "rendition": _l("Rendition"),
    "subtitles_srt": _l("Subtitles"), "cover_time_s": _l("Cover frame"), "title_card": _l("Title card"),
}

# Which stored file of an approved rendition no longer matches its SHA-256 (integrity.models.FILE_KINDS).
FILE_LABELS = {"video": _l("video"), "cover": _l("cover image")}

_CHANGED = re.compile(r"changed after approval: (?P<fields>[a-z_]+(?:, [a-z_]+)*)")
_WITHDRAWN = re.compile(r"withdrawn: (?P<reason>.*)", re.S)
_RENEWED = re.compile(r"renewed by review (?P<review>\d+)")
_INTEGRITY = re.compile(r"integrity alert (?P<alert>\d+): stored (?P<file>[a-z_]+) no longer matches the approved "
                        r"SHA-256")


def changed_after_approval(fields) -> str:
    """Why an edit voided an approval: the fields it changed."""
    return f"{CHANGED_AFTER_APPROVAL}: " + ", ".join(fields)


def withdrawn(reason: str) -> str:
    """Why a withdrawal voided an approval: the officer's reason."""
    return f"withdrawn: {reason}"


def renewed(review_id: int) -> str:
    """Why a renewal voided the expired approval: the review that renewed it."""
    return f"renewed by review {review_id}"


def integrity_alert(alert_id: int, file_kind: str) -> str:
    """Why an integrity alert suspended an approval: the alert and the file that changed."""
    return f"integrity alert {alert_id}: stored {file_kind} no longer matches the approved SHA-256"


def field_label(field: str) -> str:
    label = FIELD_LABELS.get(field)
    return str(label) if label is not None else field


def label(text: str | None) -> str:
    """A reason in the reader's language: the system's reasons worded here, anything else as written."""
    if not text:
        return ""
    fixed = FIXED.get(text)
    if fixed is not None:
        return str(fixed)
    if match := _CHANGED.fullmatch(text):
        fields = format_list([field_label(f) for f in match["fields"].split(", ")], locale=get_locale() or "en")
        return _("Changed after approval: %(fields)s", fields=fields)
    if match := _WITHDRAWN.fullmatch(text):
        return _("Withdrawn: %(reason)s", reason=match["reason"])
    if match := _RENEWED.fullmatch(text):
        return _("Renewed by review #%(review)s", review=match["review"])
    if match := _INTEGRITY.fullmatch(text):
        kind = FILE_LABELS.get(match["file"])
        return _("Integrity alert #%(alert)s: the stored %(file)s no longer matches the approved SHA-256",
                 alert=match["alert"], file=str(kind) if kind is not None else match["file"])
    return text
