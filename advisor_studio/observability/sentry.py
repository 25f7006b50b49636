"""Optional error reporting through Sentry's SDK (only when SENTRY_DSN is set), scrubbed like the logs."""

from __future__ import annotations

from advisor_studio.observability.logs import scrub

# Request parts that may hold credentials or personal data; Sentry gets none of them.
_DROP_REQUEST_KEYS = ("cookies", "data", "query_string", "env")
_KEEP_HEADERS = {"user-agent", "accept", "accept-language", "content-type", "content-length", "x-request-id"}


def _scrub_value(value):
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrub_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_value(v) for v in value]
    return value


def before_send(event: dict, _hint: dict | None = None) -> dict:
    """Strip credentials, bodies, cookies and full addresses from an event before it leaves."""
    request = event.get("request")
    if isinstance(request, dict):
        for key in _DROP_REQUEST_KEYS:
            request.pop(key, None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {k: v for k, v in headers.items() if k.lower() in _KEEP_HEADERS}
        if isinstance(request.get("url"), str):
            request["url"] = scrub(request["url"].split("?", 1)[0])
    user = event.get("user")
    if isinstance(user, dict):  # the user id only: never an e-mail, a name or an address
        event["user"] = {"id": user["id"]} if "id" in user else {}
    for key in ("message", "logentry", "exception", "breadcrumbs", "extra"):
        if key in event:
            event[key] = _scrub_value(event[key])
    return event


def init_sentry(app) -> bool:
    """Start the SDK when SENTRY_DSN is set; True when it was started."""
    dsn = app.config.get("SENTRY_DSN")
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.flask import FlaskIntegration

    sentry_sdk.init(
        dsn=dsn, environment=app.config.get("SENTRY_ENVIRONMENT"),
        integrations=[FlaskIntegration(), CeleryIntegration()],
        send_default_pii=False, include_local_variables=False, max_request_body_size="never",
        traces_sample_rate=0.0, before_send=before_send,
    )
    return True
