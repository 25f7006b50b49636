"""Declared access rules for every endpoint.

Each view is wrapped by exactly one of the decorators below, which both enforces the
rule and records it on the view. ``create_app`` refuses to serve any endpoint that has
no declared rule (fail closed), and a test walks ``app.url_map`` to keep it that way.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, flash, redirect, request, session, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from advisor_studio.errors import error_response, wants_json

ROLES = ("advisor", "compliance", "mcn", "admin")

# Endpoints served by Flask or extensions themselves: static files only.
BUILTIN_PUBLIC_ENDPOINTS = {"static", "bootstrap.static"}


def _declare(view: Callable, rule: str) -> Callable:
    view.access_rule = rule  # type: ignore[attr-defined]
    return view


def public(view: Callable) -> Callable:
    """Anyone, signed in or not (login page, health check, referral redirect)."""
    return _declare(view, "public")


def machine(kind: str) -> Callable[[Callable], Callable]:
    """Authenticated by the view itself with a machine credential (API key, HMAC, signed URL)."""

    def decorator(view: Callable) -> Callable:
        return _declare(view, f"machine:{kind}")

    return decorator


def _deny_anonymous():
    if wants_json():
        abort(401)
    return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))


def login_required(view: Callable) -> Callable:
    """Any signed-in, active user."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated:
            return _deny_anonymous()
        return view(*args, **kwargs)

    return _declare(wrapped, "login")


def roles_required(*roles: str) -> Callable[[Callable], Callable]:
    """A signed-in user holding at least one of ``roles``."""
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"unknown roles {unknown}")

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return _deny_anonymous()
            if not current_user.has_any_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        return _declare(wrapped, "roles:" + ",".join(sorted(roles)))

    return decorator


def require(allowed: bool) -> None:
    """Abort with 403 unless a permission predicate allowed the action."""
    if not allowed:
        abort(403)


# --- step-up re-authentication ----------------------------------------------------------------
# The session remembers when and with which factor the user last proved who they are (sign-in
# counts). Signing actions need that proof to be at most STEP_UP_MINUTES old.

_REAUTH_AT = "reauth_at"
_REAUTH_FACTOR = "reauth_factor"


def mark_reauthenticated(factor: str) -> None:
    """Record in the session that the user confirmed their identity now with ``factor``."""
    session[_REAUTH_AT] = time.time()
    session[_REAUTH_FACTOR] = factor


def fresh_confirmation() -> tuple[str, datetime] | None:
    """(factor, when) of the user's confirmation if it is within STEP_UP_MINUTES, else None."""
    at, factor = session.get(_REAUTH_AT), session.get(_REAUTH_FACTOR)
    if not isinstance(at, int | float) or not isinstance(factor, str):
        return None
    age = time.time() - at
    if age < 0 or age > current_app.config["STEP_UP_MINUTES"] * 60:
        return None
    return factor, datetime.fromtimestamp(at, UTC)


def _return_path() -> str:
    """The page the user was on (same site only), to come back to after confirming."""
    referrer = request.referrer or ""
    parts = urlsplit(referrer)
    if parts.netloc == request.host and parts.path.startswith("/") and not parts.path.startswith("//"):
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return url_for("core.home")


def step_up_required(view: Callable) -> Callable:
    """A POST to this view is a signature: it needs a password or TOTP confirmation within
    STEP_UP_MINUTES; when stale the action is not performed and the user is sent to confirm.

    Apply it under the access-rule decorator, so anonymous and unauthorized users are refused first.
    """

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if request.method == "POST" and fresh_confirmation() is None:
            message = _l("Confirm your identity to continue. Nothing was changed; repeat the action afterwards.")
            if wants_json():
                return error_response(401, str(message), "reauth_required")
            flash(message, "warning")
            return redirect(url_for("accounts.confirm", next=_return_path()))
        return view(*args, **kwargs)

    wrapped.step_up = True  # type: ignore[attr-defined]
    return wrapped


def large_upload(view: Callable) -> Callable:
    """Mark a view that accepts bodies up to MAX_UPLOAD_MB; every other view gets FORM_MAX_MB."""
    view.large_upload = True  # type: ignore[attr-defined]
    return view


def many_fields(parts: int) -> Callable[[Callable], Callable]:
    """Mark a view whose form may have up to ``parts`` multipart fields (a table of inputs); every
    other view keeps Flask's MAX_FORM_PARTS. The body size limit applies all the same."""

    def decorator(view: Callable) -> Callable:
        view.max_form_parts = parts  # type: ignore[attr-defined]
        return view

    return decorator


def access_rule(app: Flask, endpoint: str) -> str | None:
    """The declared rule of ``endpoint``, or None when it has none."""
    if endpoint in BUILTIN_PUBLIC_ENDPOINTS:
        return "public"
    view = app.view_functions.get(endpoint)
    return getattr(view, "access_rule", None)


def init_app(app: Flask) -> None:
    """Refuse requests to any endpoint that declares no access rule."""

    @app.before_request
    def enforce_declared_rule():
        endpoint = request.endpoint
        if endpoint is None:  # 404/405: routing already failed, let the error handler answer
            return None
        if access_rule(current_app, endpoint) is None:
            current_app.logger.error("endpoint %s has no declared access rule", endpoint)
            abort(403)
        return None

    def limit_body_size():
        view = current_app.view_functions.get(request.endpoint or "")
        if not getattr(view, "large_upload", False):
            # Forms and API bodies are small: refuse a huge body with 413 before anything reads it.
            request.max_content_length = min(current_app.config["FORM_MAX_MB"] * 1024 * 1024,
                                             current_app.config["MAX_CONTENT_LENGTH"])
        parts = getattr(view, "max_form_parts", None)
        if parts is not None:
            request.max_form_parts = max(parts, current_app.config["MAX_FORM_PARTS"] or 0)

    # First in line, so it also holds for CSRFProtect, which reads the form in its own hook.
    app.before_request_funcs.setdefault(None, []).insert(0, limit_body_size)
