"""HTTP helpers shared by every feature's views: bounded input parsing, safe redirects, streamed
downloads and the commit-or-report wrapper around a service call."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TypeVar
from urllib.parse import urlsplit

from flask import Flask, Response, abort, flash, request, stream_with_context
from flask_babel import gettext as _
from werkzeug.http import parse_range_header
from werkzeug.routing import IntegerConverter
from werkzeug.urls import iri_to_uri

from advisor_studio import storage
from advisor_studio.dbtypes import MAX_INTEGER
from advisor_studio.errors import DomainError, ValidationError
from advisor_studio.extensions import db

T = TypeVar("T")

# Every id column is INTEGER: a larger number in a query is an error on PostgreSQL (and above 2**63 on
# SQLite), not "no such row".
MAX_ID = MAX_INTEGER
# Far beyond any list we show, and small enough that page * page size stays a valid SQL OFFSET.
MAX_PAGE = 100_000
# Dates typed into filters; the bounds keep "the day after" and time-zone shifts inside datetime's range.
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2999, 12, 31)
_DAY_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class BoundedIntConverter(IntegerConverter):
    """``<int:...>`` that matches only ids a database column can hold: a larger one answers 404, never 500."""

    regex = r"[0-9]+"  # not \d, which also matches other scripts' digits ("١") that int() accepts

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None, max: int | None = MAX_ID,  # noqa: A002
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def init_app(app: Flask) -> None:
    """Bound ``<int:...>`` URL parts and refuse NUL characters in query strings and forms.

    Call before registering blueprints: a rule picks its converter when it is added to the map.
    """
    app.url_map.converters["int"] = BoundedIntConverter
    app.before_request(refuse_nul_characters)


def _has_nul(values) -> bool:
    # A multipart part whose header Werkzeug cannot read comes back with None for its name.
    return any("\x00" in (key or "") or "\x00" in (value or "") for key, value in values.items(multi=True))


def refuse_nul_characters() -> None:
    """No database we run on stores or compares text with NUL in it: refuse it once, here, with 400."""
    if _has_nul(request.args) or (request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data")
                                  and _has_nul(request.form)):
        raise ValidationError(_("The request contains a NUL character (a zero byte), which is not allowed. "
                                "Remove it and try again."), code="nul_character")


def query_int(name: str, default: int | None = None, *, minimum: int = 0, maximum: int = MAX_ID) -> int | None:
    """The integer query parameter ``name``; absent or empty gives ``default``, anything else out of range 400."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > len(str(maximum)) or not minimum <= int(raw) <= maximum:
        raise ValidationError(_("“%(name)s” in the address must be a whole number from %(min)d to %(max)d.",
                                name=name, min=minimum, max=maximum), fields={name: _("invalid")}, code="bad_query")
    return int(raw)


def query_page(name: str = "page") -> int:
    """The page number of a list (1 when absent); 400 when it is not a number from 1 to MAX_PAGE."""
    return query_int(name, 1, minimum=1, maximum=MAX_PAGE)


def query_date(name: str) -> date | None:
    """The YYYY-MM-DD query parameter ``name`` (None when absent or empty); 400 when it is not such a date."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw) if _DAY_RE.fullmatch(raw) else None
    except ValueError:
        day = None
    if day is None or not FIRST_DAY <= day <= LAST_DAY:
        raise ValidationError(_("“%(name)s” in the address must be a date written YYYY-MM-DD, from %(first)s to "
                                "%(last)s.", name=name, first=FIRST_DAY.isoformat(), last=LAST_DAY.isoformat()),
                              fields={name: _("invalid")}, code="bad_query")
    return day


def safe_next(target: str | None) -> str | None:
    """Only same-site relative paths are followed after sign-in, and never one with control characters.

    A CR or LF would end up in the Location header, which Werkzeug refuses only when the response is
    built, after the view committed; non-ASCII is percent-encoded because headers are Latin-1.
    """
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(unicodedata.category(ch) == "Cc" for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return iri_to_uri(target)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | bool:
    """(start, end) for a single satisfiable byte range, None to ignore the header, False if unsatisfiable.

    Werkzeug parses the header; what is left here is RFC 9110's reading of it: a malformed header,
    another unit or several ranges are ignored (the whole file is sent), a suffix longer than the file
    means the whole file, and a range starting at or past the end (or "bytes=-0") is unsatisfiable.
    """
    if not header:
        return None
    if header.strip() == "bytes=-0":  # valid syntax that Werkzeug reads as malformed: nothing to send
        return False
    parsed = parse_range_header(header)
    if parsed is None or parsed.units != "bytes" or len(parsed.ranges) != 1:
        return None
    start, stop = parsed.ranges[0]  # stop is exclusive; a suffix is (-length, None)
    if start < 0:
        start, end = max(size + start, 0), size - 1
    else:
        end = size - 1 if stop is None else min(stop, size) - 1
    if start >= size or start > end:
        return False
    return start, end


@dataclass(frozen=True)
class DownloadPlan:
    """What a download response will be: status, the inclusive byte range and its headers."""

    status: int
    start: int
    end: int
    size: int
    headers: dict

    @property
    def length(self) -> int:
        return self.end - self.start + 1 if self.size and self.status != 416 else 0

    @property
    def is_whole(self) -> bool:
        return self.status == 200


def plan_download(size: int, filename: str | None = None) -> DownloadPlan:
    """Status (200/206/416), byte range and headers for the current request on an object of ``size``."""
    # We send no ETag or Last-Modified, so no If-Range validator can match: RFC 9110 then
    # requires the whole representation rather than a slice of a possibly different one.
    range_header = None if "If-Range" in request.headers else request.headers.get("Range")
    byte_range = parse_range(range_header, size)
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, no-store"}
    if filename:
        headers["Content-Disposition"] = storage.content_disposition(filename)
    if byte_range is False:
        headers["Content-Range"] = f"bytes */{size}"
        return DownloadPlan(416, 0, -1, size, headers)
    start, end = byte_range if byte_range else (0, size - 1)
    headers["Content-Length"] = str(end - start + 1 if size else 0)
    status = 200
    if byte_range:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return DownloadPlan(status, start, end, size, headers)


def stream_object(key: str, filename: str | None = None, content_type: str = "application/octet-stream"):
    """Stream a stored object with Range support (206/416) and no caching."""
    store = storage.get_storage()
    try:
        size = store.size(key)
    except storage.StorageError:
        abort(404)
    plan = plan_download(size, filename)
    if plan.status == 416:
        return Response(status=416, headers=plan.headers)
    if request.method == "HEAD" or size == 0:
        return Response(status=plan.status, headers=plan.headers, content_type=content_type)
    body = stream_with_context(store.iter_range(key, plan.start, plan.end))
    return Response(body, status=plan.status, headers=plan.headers, content_type=content_type,
                    direct_passthrough=True)


def csv_cell(value) -> str:
    """A value for a CSV export: a cell starting with = + - @ (or a tab or CR) is a formula in Excel, so
    it gets a leading apostrophe; a campaign name or an audit detail must never run as one."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def commit_or_report(action: Callable[[], T], form=None, category: str = "danger") -> tuple[T | None, int | None]:
    """Run one service call of a request. On success commit and return ``(result, None)``. On a
    ``DomainError`` roll back, flash its message, put its field reasons on the matching fields of ``form``
    (if given) and return ``(None, the error's HTTP status)``, for the view to render the form again."""
    try:
        result = action()
    except DomainError as err:
        db.session.rollback()
        for name, why in err.fields.items():
            if form is not None and name in form:
                form[name].errors = list(form[name].errors) + [why]
        flash(err.message, category)
        return None, err.status
    db.session.commit()
    return result, None
