"""The request id: taken from X-Request-ID when it is sane, generated otherwise, returned in the response.

It lives in a context variable so every log line of the request (and of the Celery tasks the request
queued, see ``celery_signals``) carries it without anyone passing it around.
"""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

HEADER = "X-Request-ID"
# What a proxy or client may choose: short, printable, no spaces. Anything else (10 KB, newlines,
# control characters, quotes for log injection) is replaced by a fresh id rather than cleaned up.
_SANE = re.compile(r"[A-Za-z0-9._:@+=/-]{8,128}")

request_id_var: ContextVar[str | None] = ContextVar("advisor_request_id", default=None)


def new_request_id() -> str:
    """A fresh random id (32 hex digits)."""
    return secrets.token_hex(16)


def accept_or_new(value: str | None) -> str:
    """``value`` when it is a sane id, else a new one."""
    if value and _SANE.fullmatch(value):
        return value
    return new_request_id()


def current_request_id() -> str | None:
    """The id of the request or task being handled, if any."""
    return request_id_var.get()
