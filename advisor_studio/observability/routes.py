"""/metrics: Prometheus text, for a scraper holding METRICS_TOKEN or at an allowed address."""

from __future__ import annotations

import hmac
import ipaddress

from flask import Blueprint, Response, abort, current_app, request

from advisor_studio.access import machine
from advisor_studio.observability import metrics

bp = Blueprint("observability", __name__)


def _address_allowed() -> bool:
    nets = current_app.extensions.get("metrics_networks") or ()
    if not nets:
        return False
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(address in net for net in nets)


def _token_ok(token: str) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


@bp.route("/metrics")
@machine("metrics-token-or-address")
def prometheus_metrics():
    token = current_app.config.get("METRICS_TOKEN")
    if (token and _token_ok(token)) or _address_allowed():
        from prometheus_client import CONTENT_TYPE_LATEST

        resp = Response(metrics.render_latest(), mimetype=None)
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        resp.headers["Cache-Control"] = "no-store"
        return resp
    if token:  # a scraper with a wrong or missing token learns only that one is needed
        resp = Response("unauthorized\n", status=401, mimetype="text/plain")
        resp.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return resp
    abort(404)  # not configured, or only an address allow-list that this client is not on
