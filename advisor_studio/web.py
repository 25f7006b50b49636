"""HTTP helpers shared by every feature's views: safe redirects and streamed downloads."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Response, abort, request, stream_with_context

from advisor_studio import storage


def safe_next(target: str | None) -> str | None:
    """Only same-site relative paths are followed after sign-in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | bool:
    """(start, end) for a single satisfiable byte range, None without a header, False if unsatisfiable."""
    if not header:
        return None
    match = _RANGE_RE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None  # malformed or multi-range: ignore the header and send everything (RFC 9110)
    first, last = match.group(1), match.group(2)
    if first and last and int(last) < int(first):
        return None  # an invalid range-spec makes the whole header invalid: ignore it
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    else:
        length = int(last)
        if length == 0:
            return False
        start, end = max(size - length, 0), size - 1
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
