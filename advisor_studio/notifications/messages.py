"""What a notification says and where it leads.

The text is made when it is read, from the kind and the stored parameters, so it is in the reader's
language (the page's locale; e-mail in the default locale). Stored parameters are read defensively:
a missing or odd value renders as empty text, never as an error page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import format_datetime
from flask_babel import gettext as _

from advisor_studio.notifications import models as m

# object_type -> (endpoint, its id argument). Those pages check permissions themselves.
TARGETS = {
    "script": ("studio.script", "script_id"),
    "package": ("studio.package", "package_id"),
    "review": ("compliance.review", "review_id"),
}

TITLE_MAX = 200
DETAIL_MAX = 300


def target(notification) -> tuple[str, dict]:
    """(endpoint, values) of the page the notification is about."""
    endpoint, arg = TARGETS[notification.object_type]
    return endpoint, {arg: notification.object_id}


def _params(notification) -> dict:
    return notification.params if isinstance(notification.params, dict) else {}


def _text(value, limit: int) -> str:
    if not isinstance(value, str):
        return ""
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _when(value) -> str:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_datetime(moment, "yyyy-MM-dd HH:mm")


# Kinds whose message needs the title alone. Functions, so the text is translated when it is read.
_TITLED = {
    m.SCRIPT_APPROVED: lambda title: _("Your script “%(title)s” was pre-approved.", title=title),
    m.SCRIPT_CHANGES_REQUESTED: lambda title: _("Compliance asked for changes to your script “%(title)s”.",
                                                title=title),
    m.SCRIPT_REJECTED: lambda title: _("Your script “%(title)s” was rejected.", title=title),
    m.PACKAGE_APPROVED: lambda title: _("Your package “%(title)s” was approved.", title=title),
    m.PACKAGE_CHANGES_REQUESTED: lambda title: _("Compliance asked for changes to your package “%(title)s”.",
                                                 title=title),
    m.PACKAGE_REJECTED: lambda title: _("Your package “%(title)s” was rejected.", title=title),
    m.RENDER_FINISHED: lambda title: _("The video of your package “%(title)s” has finished rendering.",
                                       title=title),
    m.RENDER_FAILED: lambda title: _("The video of your package “%(title)s” could not be rendered.", title=title),
}


def text(notification) -> str:
    """The one-line message of a notification, in the current locale."""
    p = _params(notification)
    title = _text(p.get("title"), TITLE_MAX)
    kind = notification.kind
    if kind in _TITLED:
        return _TITLED[kind](title)
    package = p.get("stage") == "package"
    if kind == m.REVIEW_DUE:
        author, due = _text(p.get("author"), 100), _when(p.get("due_at"))
        if package:
            return _("New package for final review: “%(title)s” by %(author)s, due %(due)s.",
                     title=title, author=author, due=due)
        return _("New script for pre-approval: “%(title)s” by %(author)s, due %(due)s.",
                 title=title, author=author, due=due)
    if kind == m.REVIEW_DUE_SOON:
        due = _when(p.get("due_at"))
        if package:
            return _("The final review of package “%(title)s” is due at %(due)s.", title=title, due=due)
        return _("The pre-approval of script “%(title)s” is due at %(due)s.", title=title, due=due)
    return _("You have a new notification.")


def detail(notification) -> str:
    """A second line (the officer's reason, why a render failed), or empty."""
    p = _params(notification)
    if notification.kind == m.RENDER_FAILED:
        from advisor_studio.video.services import reason_text

        code = p.get("code") if isinstance(p.get("code"), str) else None
        return reason_text(code)
    reason = _text(p.get("reason"), DETAIL_MAX)
    return _("Reason: %(reason)s", reason=reason) if reason else ""


def absolute_url(endpoint: str, **values) -> str:
    """A full URL under PUBLIC_BASE_URL (e-mail is written by a worker, outside any request)."""
    base = urlsplit(current_app.config["PUBLIC_BASE_URL"])
    adapter = current_app.url_map.bind(base.netloc, script_name=base.path or "/", url_scheme=base.scheme or "https")
    return adapter.build(endpoint, values, force_external=True)


def email_body(notification) -> str:
    """The plain-text e-mail about a notification: its message, the detail and the link to the object."""
    endpoint, values = target(notification)
    lines = [text(notification)]
    extra = detail(notification)
    if extra:
        lines.append(extra)
    lines += ["", _("Open it: %(url)s", url=absolute_url(endpoint, **values)), "", "-- ",
              _("You receive this e-mail because e-mail notifications are on for your account. "
                "Turn them off on your notifications page: %(url)s", url=absolute_url("notifications.index"))]
    return "\n".join(lines) + "\n"
