"""Logging: one JSON object per line (python-json-logger), each carrying the request id.

No personal data goes in: the request line names the endpoint's rule (``/files/<token>``), never the
path or query, the client's network (/24 or /48), never its address, and a last-line scrubber masks
anything shaped like a secret that other code may have put in a message.
"""

from __future__ import annotations

import logging
import re
import sys

from pythonjsonlogger.json import JsonFormatter

from advisor_studio.observability.requestid import current_request_id

_HANDLER_MARK = "_advisor_studio_handler"

# Masks applied to every rendered message and exception text (defence in depth, not the main rule).
_SECRET_PATTERNS = [
    (re.compile(r"(?i)(authorization:?\s*(?:bearer|basic)\s+)[^\s\"',]+"), r"\1[redacted]"),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1[redacted]"),
    (re.compile(r"(?i)((?:password|passwd|secret|token|api[_-]?key|customer_ref)\"?\s*[=:]\s*\"?)[^\s\"',&}]+"),
     r"\1[redacted]"),
    (re.compile(r"/files/[^\s/?\"']+"), "/files/[redacted]"),
    (re.compile(r"/api/v1/partner/[^\s]*key=[^\s&\"']+"), "/api/v1/partner/[redacted]"),
]


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_IPV4 = re.compile(r"(?<![\d.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.\d{1,3}(?![\d.])")


def scrub(text: str) -> str:
    """``text`` with secret-shaped substrings masked, e-mail addresses hidden and IPv4 addresses cut to /24."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    text = _EMAIL.sub("[email]", text)
    return _IPV4.sub(r"\1.\2.\3.0/24", text)


class LimiterKeyFilter(logging.Filter):
    """Flask-Limiter names the exceeded limit's key, which holds e-mails and addresses: drop the key."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("flask-limiter") and isinstance(record.args, tuple) and len(record.args) == 3 \
                and "exceeded" in str(record.msg):
            record.args = (record.args[0], "key withheld", record.args[2])
        return True


def _task_request_id() -> str | None:
    # Celery's own lines (received, succeeded) are logged outside task_prerun/postrun in some paths;
    # the current task's headers still name the request.
    try:
        from celery import current_task
    except ImportError:  # pragma: no cover - celery is a dependency
        return None
    task = current_task
    if not task:
        return None
    request = getattr(task, "request", None)
    return getattr(request, "x_request_id", None) or (getattr(request, "headers", None) or {}).get("x_request_id")


class RequestIdFilter(logging.Filter):
    """Put ``request_id`` on every record (None outside a request or task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = current_request_id() or _task_request_id()
        return True


class ScrubbingJsonFormatter(JsonFormatter):
    """python-json-logger's formatter with the secret masks applied to message and traceback."""

    def process_log_record(self, log_data: dict) -> dict:
        for key in ("message", "exc_info", "stack_info"):
            value = log_data.get(key)
            if isinstance(value, str):
                log_data[key] = scrub(value)
        return log_data


class ScrubbingTextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def json_formatter() -> logging.Formatter:
    """The house JSON formatter (also used by gunicorn.conf.py for gunicorn's own lines)."""
    return ScrubbingJsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z", json_ensure_ascii=False,
    )


def configure_logging(fmt: str = "json", level: str = "INFO", stream=None) -> logging.Handler:
    """Send the root logger to ``stream`` (stderr) in ``fmt``; idempotent (replaces its own handler)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(LimiterKeyFilter())
    if fmt == "json":
        handler.setFormatter(json_formatter())
    else:
        handler.setFormatter(ScrubbingTextFormatter(
            "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level, logging.INFO))
    # The app's logger propagates to root; Flask's default handler would print a second, plain line.
    from flask.logging import default_handler

    for name in ("advisor_studio", "wsgi"):
        logging.getLogger(name).removeHandler(default_handler)
    return handler
