"""Typed domain errors and the one place that maps errors to HTTP responses."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask, jsonify, make_response, render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from advisor_studio.extensions import db


class DomainError(Exception):
    """Base of every error a service raises; carries an HTTP status and a stable code."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, fields: dict[str, str] | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        if code:
            self.code = code


class ValidationError(DomainError):
    status = 400
    code = "invalid"


class ValidationErrors(ValidationError):
    """Several problems found at once (a form with more than one bad field): each stays in ``errors``,
    so a page can show every one of them next to its field in a single answer."""

    code = "invalid_fields"

    def __init__(self, errors: list[DomainError]):
        fields: dict[str, str] = {}
        for err in errors:
            for name, why in err.fields.items():
                fields.setdefault(name, why)
        super().__init__(" ".join(err.message for err in errors), fields=fields)
        self.errors = list(errors)


class PermissionDenied(DomainError):
    status = 403
    code = "forbidden"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Gone(DomainError):
    status = 410
    code = "gone"


class Unprocessable(DomainError):
    status = 422
    code = "unprocessable"


TITLES = {
    400: _l("Bad request"),
    401: _l("Please sign in"),
    403: _l("Access denied"),
    404: _l("Page not found"),
    405: _l("Method not allowed"),
    409: _l("Conflict"),
    410: _l("No longer available"),
    413: _l("File too large"),
    422: _l("Cannot process this request"),
    429: _l("Too many attempts"),
    500: _l("Something went wrong"),
}

DESCRIPTIONS = {
    400: _l("The request could not be understood. Check what you entered and try again."),
    401: _l("You need to sign in to see this page."),
    403: _l("Your account does not have permission for this page or action."),
    404: _l("The page or item you asked for does not exist."),
    405: _l("This address does not accept that kind of request."),
    409: _l("The item changed in the meantime. Reload the page and try again."),
    410: _l("This link or item has been withdrawn or has expired."),
    413: _l("The upload is larger than the allowed maximum."),
    422: _l("The request was well-formed but could not be processed."),
    429: _l("Too many attempts in a short time. Wait a minute and try again."),
    500: _l("An unexpected error occurred. It has been logged; please try again later."),
}


# SQLSTATEs of a transaction that lost a race on PostgreSQL (serialization failure, deadlock).
CONCURRENCY_SQLSTATES = {"40001", "40P01"}
CONCURRENT_CHANGE_MESSAGE = _l("Someone else changed this item at the same moment, so your change was not saved. "
                               "Reload the page and try again.")


def is_concurrency_error(err: Exception) -> bool:
    """True for database errors that mean "another transaction got there first", not "your input is wrong"."""
    if isinstance(err, sa.exc.IntegrityError | StaleDataError):
        return True
    orig = getattr(err, "orig", None)
    return isinstance(err, sa.exc.DBAPIError) and getattr(orig, "sqlstate", None) in CONCURRENCY_SQLSTATES


def wants_json() -> bool:
    """API paths and clients that prefer JSON get JSON errors; browsers get pages."""
    if request.path.startswith("/api/") or request.path == "/healthz":
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def error_response(status: int, message: str | None = None, code: str | None = None, fields=None):
    """Render one error as JSON or as the friendly HTML page for ``status``."""
    if wants_json():
        body = {"error": {"code": code or str(status), "message": str(message or TITLES.get(status, ""))}}
        if fields or request.path.startswith("/api/"):
            # The APIs of contract.md always carry "fields" (possibly empty), routing errors included.
            body["error"]["fields"] = fields or {}
        return make_response(jsonify(body), status)
    html = render_template(
        "errors/error.html",
        status=status,
        title=TITLES.get(status, _l("Error")),
        message=message or DESCRIPTIONS.get(status, ""),
    )
    return make_response(html, status)


# Refusals that leave a trace in the audit trail: a denied protected action, a rate-limited request.
REFUSALS_AUDITED = {403: "access.denied", 429: "access.rate_limited"}


def audit_refusal(status: int) -> None:
    """Roll back the refused request, then write its audit entry in a short transaction of its own."""
    from advisor_studio import audit

    details: dict = {"status": status}
    if request.endpoint == "accounts.login" and request.method == "POST":
        # Which account someone is hammering matters more than the page it happened on.
        details["email"] = (request.form.get("email") or "").strip()[:254]
    audit.record_refusal(REFUSALS_AUDITED[status], details=details)


def init_app(app: Flask) -> None:
    """Register the handlers for domain errors, HTTP errors, CSRF failures and crashes."""

    @app.errorhandler(DomainError)
    def handle_domain_error(err: DomainError):
        db.session.rollback()
        if err.status == 403:
            audit_refusal(403)
        return error_response(err.status, err.message, err.code, err.fields)

    @app.errorhandler(CSRFError)
    def handle_csrf_error(err: CSRFError):
        db.session.rollback()
        return error_response(
            400,
            str(_l("The form expired or was not sent from this site. Reload the page and try again.")),
            "csrf_failed",
        )

    @app.errorhandler(HTTPException)
    def handle_http_error(err: HTTPException):
        if err.code and err.code >= 500:
            db.session.rollback()
        if err.code in REFUSALS_AUDITED:
            audit_refusal(err.code)
        message = None
        # Werkzeug's default descriptions are English boilerplate; keep ours unless a view
        # passed a specific message through abort(code, description).
        if err.description and err.description != type(err).description:
            message = err.description
        response = error_response(err.code or 500, message)
        if err.code == 405 and hasattr(err, "valid_methods") and err.valid_methods:
            response.headers["Allow"] = ", ".join(err.valid_methods)
        return response

    @app.errorhandler(sa.exc.DBAPIError)
    @app.errorhandler(StaleDataError)
    def handle_database_race(err: Exception):
        # Compare-and-set writes turn races into Conflicts; a unique index or version check that
        # still fires here is the last line of defence, and still a 409, never a 500.
        db.session.rollback()
        if not is_concurrency_error(err):
            return handle_unexpected(err)
        app.logger.warning("concurrent change refused on %s %s: %s", request.method, request.path,
                           type(err).__name__)
        return error_response(409, str(CONCURRENT_CHANGE_MESSAGE), "changed_concurrently")

    @app.errorhandler(Exception)
    def handle_unexpected(err: Exception):
        db.session.rollback()
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500)
