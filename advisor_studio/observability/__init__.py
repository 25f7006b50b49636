"""Operations: structured logs with request ids, Prometheus metrics, ProxyFix, optional Sentry.

``init_app`` is called once by ``create_app``; /metrics lives in ``routes`` and /readyz in core.
"""

from __future__ import annotations

import ipaddress
import time

from flask import Flask, g, request
from werkzeug.local import LocalProxy

from advisor_studio.observability import metrics
from advisor_studio.observability.requestid import HEADER, accept_or_new, request_id_var

ACCESS_LOGGER = "advisor_studio.access"


def _install_proxy_fix(app: Flask) -> None:
    count = int(app.config.get("TRUSTED_PROXY_COUNT") or 0)
    if count <= 0:  # nobody's X-Forwarded-For is believed: remote_addr is the TCP peer
        return
    from werkzeug.middleware.proxy_fix import ProxyFix

    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count)


def _client_network() -> str | None:
    from advisor_studio.referrals.clicks import ip_prefix

    return ip_prefix(request.remote_addr)


def _loaded_user_id() -> int | None:
    """The signed-in user's id if this request already loaded the user (the log line never costs a query)."""
    user = g.get("_login_user")
    # login_user() given the current_user proxy itself stores a proxy that resolves to itself: skip it.
    if user is None or type(user) is LocalProxy:
        return None
    return getattr(user, "id", None) if getattr(user, "is_authenticated", False) else None


def _request_hooks(app: Flask) -> None:
    import logging

    access_log = logging.getLogger(ACCESS_LOGGER)

    def start_request():
        g.request_started = time.perf_counter()
        rid = accept_or_new(request.headers.get(HEADER))
        g.request_id = rid
        g.request_id_token = request_id_var.set(rid)

    # First in line (before the body-size limit and CSRF): a refused request is traced too.
    app.before_request_funcs.setdefault(None, []).insert(0, start_request)

    @app.after_request
    def finish_request(response):
        rid = g.get("request_id")
        if rid is None:  # a before_request hook of an extension answered before ours ran
            return response
        response.headers[HEADER] = rid
        seconds = time.perf_counter() - g.get("request_started", time.perf_counter())
        endpoint = request.endpoint
        metrics.observe_request(endpoint, request.method, response.status_code, seconds)
        if endpoint == metrics.REDIRECT_ENDPOINT and response.status_code < 500:
            # The referral redirect is the hot path: a counter, no log line (each click is a row already).
            return response
        # The user is named only if this request already loaded it: the log line never costs a query.
        access_log.info("request", extra={
            "endpoint": endpoint, "rule": request.url_rule.rule if request.url_rule else None,
            "method": request.method, "status": response.status_code,
            "latency_ms": round(seconds * 1000, 2), "user_id": _loaded_user_id(),
            "client_net": _client_network(),
        })
        return response

    @app.teardown_request
    def clear_request_id(_exc=None):
        token = g.pop("request_id_token", None)
        if token is not None:
            try:
                request_id_var.reset(token)
            except ValueError:
                request_id_var.set(None)


def metrics_networks(app: Flask) -> tuple:
    """The parsed METRICS_ALLOW_NETS (a typo fails at start, not at the first scrape)."""
    nets = []
    for spec in app.config.get("METRICS_ALLOW_NETS") or ():
        try:
            nets.append(ipaddress.ip_network(spec, strict=False))
        except ValueError as exc:
            raise RuntimeError(f"METRICS_ALLOW_NETS: {spec!r} is not a network") from exc
    return tuple(nets)


def init_app(app: Flask) -> None:
    """Logging, request ids, metrics hooks, ProxyFix and Sentry for ``app``."""
    from advisor_studio.observability import audit_hooks, celery_signals  # noqa: F401  (listeners)
    from advisor_studio.observability.logs import configure_logging
    from advisor_studio.observability.sentry import init_sentry

    configure_logging(app.config.get("LOG_FORMAT", "json"), app.config.get("LOG_LEVEL", "INFO"))
    app.extensions["metrics_networks"] = metrics_networks(app)
    _install_proxy_fix(app)
    _request_hooks(app)
    init_sentry(app)
    from advisor_studio.observability.routes import bp

    app.register_blueprint(bp)
