"""Schemathesis against the live OpenAPI document: the partner endpoints, called over real HTTP with a valid
key, must never answer 5xx nor anything the document does not describe (status, content type, body)."""

from __future__ import annotations

from datetime import UTC, datetime

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from advisor_studio.distribution import services
from advisor_studio.distribution.models import Assignment, Channel, Partner
from advisor_studio.extensions import db

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
# Bounded so the whole test stays well under a minute; derandomized so CI runs the same cases every time.
EXAMPLES = 30


def _seed(app, assignment_id: int) -> str:
    """A published asset, a withdrawn and an expired one besides the ready one; return a key of the partner."""
    with app.app_context():
        first = db.session.get(Assignment, assignment_id)
        partner = db.session.get(Partner, first.partner_id)
        for n, status in enumerate(("ready", "withdrawn", "expired")):
            channel = Channel(partner_id=partner.id, platform="douyin", handle=f"schema-{n}")
            db.session.add(channel)
            db.session.flush()
            db.session.add(Assignment(approval_id=first.approval_id, package_id=first.package_id,
                                      channel_id=channel.id, partner_id=partner.id, status=status,
                                      takedown_due_at=datetime.now(UTC) if status != "ready" else None))
        services.report_publication(first, platform="douyin", post_url="https://www.douyin.com/video/1",
                                    published_at=datetime.now(UTC), actor="test")
        raw = services.issue_api_key(partner, actor="test")
        db.session.commit()
        return raw


def test_partner_endpoints_conform_to_the_live_openapi_document(app, live_server, approved):
    _package_id, asset_id = approved
    key = _seed(app, asset_id)
    app.config["PARTNER_API_RATE_LIMIT"] = "100000 per minute"  # this test is not about the limit
    schema = schemathesis.openapi.from_url(f"{live_server}/api/v1/openapi.json").include(
        path_regex="^/api/v1/partner/")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} == {
        "GET /api/v1/partner/assets", "GET /api/v1/partner/assets/{asset_id}",
        "POST /api/v1/partner/assets/{asset_id}/publications", "POST /api/v1/partner/assets/{asset_id}/takedowns",
        "POST /api/v1/partner/publications/{publication_id}/metrics"}
    headers = {"Authorization": f"Bearer {key}"}
    calls = []
    with app.app_context():
        from advisor_studio.distribution.models import Publication

        publication_id = db.session.scalar(db.select(Publication.id).where(Publication.assignment_id == asset_id))

    now = datetime.now(UTC).isoformat()
    for operation in operations:
        variants = [{}]
        if "{asset_id}" in operation.path:
            variants.append({"path_parameters": {"asset_id": asset_id}})  # the real asset, not only unknown ids
        if operation.path.endswith("/publications"):  # a valid report (201), then the same again (409)
            variants.append({"path_parameters": {"asset_id": asset_id}, "body": {
                "platform": "douyin", "post_url": "https://www.douyin.com/video/2", "published_at": now}})
        if "{publication_id}" in operation.path:  # the real post: a valid report (201), then the same (200)
            variants.append({"path_parameters": {"publication_id": publication_id}})
            variants.append({"path_parameters": {"publication_id": publication_id}, "body": {
                "observed_at": now, "views": 10, "likes": 1, "comments": 0, "shares": 0}})
        for variant in variants:
            _run(operation, variant, live_server, headers, calls)
    statuses = {status for _label, status in calls}
    assert {200, 201, 400, 404, 409} <= statuses and all(status < 500 for status in statuses)


def _run(operation, variant: dict, base_url: str, headers: dict, calls: list) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(case=operation.as_strategy(**variant))
    def run(case):
        response = case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)
        calls.append((case.operation.label, response.status_code))

    run()
