"""POST /api/v1/partner/publications/<id>/metrics over HTTP: the partner API's keys, scoping, error shape
and rate limit; idempotency per (publication, observed_at), 409 for other counters at the same time, 422
for counters that go backwards, and one row for identical reports sent at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from advisor_studio.analytics.models import PublicationMetric
from advisor_studio.audit import AuditEntry
from advisor_studio.distribution import services
from advisor_studio.distribution.models import Assignment, Publication
from advisor_studio.extensions import db
from tests.compliance.test_races import race
from tests.factories import partner_api_key
from tests.studio.test_pages import approved_package

PUBLISHED = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)


def make_publication(app, users, *, partner_name: str = "星河MCN", published_at: datetime = PUBLISHED,
                     post: str = "7301") -> int:
    """A publication of an approved package on ``partner_name``'s channel (published_at set directly:
    the service refuses times before the approval, and the approval is made now)."""
    package_id = approved_package(app, users["advisor"].id, users["compliance"].id)
    with app.app_context():
        asset = db.session.scalars(sa.select(Assignment).where(Assignment.package_id == package_id)).one()
        publication = services.report_publication(asset, platform=asset.channel.platform,
                                                  post_url=f"https://www.douyin.com/video/{post}",
                                                  published_at=datetime.now(UTC), actor="test")
        publication.published_at = published_at
        db.session.commit()
        return publication.id


def url(publication_id: int) -> str:
    return f"/api/v1/partner/publications/{publication_id}/metrics"


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def at(hours: float) -> str:
    return (PUBLISHED + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


def body(hours: float = 1, views: int = 100, likes: int = 10, comments: int = 2, shares: int = 1) -> dict:
    return {"observed_at": at(hours), "views": views, "likes": likes, "comments": comments, "shares": shares}


def assert_error(resp, status: int, *fields: str) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    error = resp.get_json()["error"]
    assert set(error) == {"code", "message", "fields"} and error["code"] and error["message"]
    for field in fields:
        assert field in error["fields"], error
    return error


def metric_rows(app, publication_id: int) -> list[tuple]:
    with app.app_context():
        return [tuple(r) for r in db.session.execute(
            sa.select(PublicationMetric.observed_at, PublicationMetric.views, PublicationMetric.likes,
                      PublicationMetric.comments, PublicationMetric.shares)
            .where(PublicationMetric.publication_id == publication_id).order_by(PublicationMetric.observed_at))]


@pytest.fixture
def publication(app, users) -> int:
    return make_publication(app, users)


@pytest.fixture
def key(app, publication) -> str:
    return partner_api_key(app, "星河MCN")


def test_first_report_is_stored_and_answers_201(app, client, publication, key):
    resp = client.post(url(publication), json=body(views=1200), headers=auth(key))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    data = resp.get_json()
    assert data["publication_id"] == publication and data["views"] == 1200 and data["observed_at"] == at(1)
    assert resp.headers["Cache-Control"] == "no-store"
    assert metric_rows(app, publication) == [(PUBLISHED + timedelta(hours=1), 1200, 10, 2, 1)]
    with app.app_context():
        entry = db.session.scalars(sa.select(AuditEntry).where(
            AuditEntry.action == "publication.metrics_reported")).one()
        assert entry.object_id == str(publication) and entry.details["views"] == 1200


def test_same_body_again_answers_200_with_the_stored_report_and_stores_nothing(app, client, publication, key):
    first = client.post(url(publication), json=body(), headers=auth(key))
    again = client.post(url(publication), json=body(), headers=auth(key))
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json() == first.get_json()
    assert len(metric_rows(app, publication)) == 1
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(AuditEntry.id)).where(
            AuditEntry.action == "publication.metrics_reported")) == 1


def test_same_instant_written_with_another_offset_is_the_same_report(client, publication, key):
    assert client.post(url(publication), json=body(), headers=auth(key)).status_code == 201
    beijing = (PUBLISHED + timedelta(hours=9)).strftime("%Y-%m-%dT%H:%M:%S+08:00")
    assert client.post(url(publication), json={**body(), "observed_at": beijing}, headers=auth(key)).status_code == 200


def test_other_counters_at_the_same_time_answer_409_and_change_nothing(app, client, publication, key):
    assert client.post(url(publication), json=body(views=100, likes=10), headers=auth(key)).status_code == 201
    resp = client.post(url(publication), json=body(views=150, likes=10), headers=auth(key))
    error = assert_error(resp, 409, "views")
    assert error["code"] == "metrics_conflict" and "likes" not in error["fields"]
    assert metric_rows(app, publication) == [(PUBLISHED + timedelta(hours=1), 100, 10, 2, 1)]


def test_counters_lower_than_an_earlier_report_answer_422_naming_the_fields(app, client, publication, key):
    assert client.post(url(publication), json=body(1, views=500, likes=50), headers=auth(key)).status_code == 201
    resp = client.post(url(publication), json=body(2, views=400, likes=50, comments=1), headers=auth(key))
    error = assert_error(resp, 422, "views", "comments")
    assert error["code"] == "metrics_backwards" and set(error["fields"]) == {"views", "comments"}
    assert "500" in error["fields"]["views"]
    assert len(metric_rows(app, publication)) == 1


def test_counters_higher_than_a_later_report_answer_422(app, client, publication, key):
    assert client.post(url(publication), json=body(5, views=500), headers=auth(key)).status_code == 201
    resp = client.post(url(publication), json=body(3, views=600, shares=0), headers=auth(key))
    error = assert_error(resp, 422, "views")
    assert set(error["fields"]) == {"views"}
    # A late report that fits between its neighbours is accepted.
    assert client.post(url(publication), json=body(3, views=300, shares=0), headers=auth(key)).status_code == 201
    assert [r[1] for r in metric_rows(app, publication)] == [300, 500]


def test_equal_counters_later_are_accepted(client, publication, key):
    assert client.post(url(publication), json=body(1), headers=auth(key)).status_code == 201
    assert client.post(url(publication), json=body(2), headers=auth(key)).status_code == 201


@pytest.mark.parametrize("change, field", [
    ({"views": -1}, "views"),
    ({"likes": 1.5}, "likes"),
    ({"comments": "3"}, "comments"),
    ({"shares": True}, "shares"),
    ({"views": 2**53}, "views"),
    ({"views": None}, "views"),
    ({"observed_at": "2026-11-30 10:00"}, "observed_at"),
    ({"observed_at": "2026-11-30T10:00:00"}, "observed_at"),
    ({"observed_at": 1764500000}, "observed_at"),
    ({"observed_at": "2026-02-30T10:00:00Z"}, "observed_at"),
])
def test_invalid_fields_answer_400_naming_them_and_store_nothing(app, client, publication, key, change, field):
    resp = client.post(url(publication), json={**body(), **change}, headers=auth(key))
    assert_error(resp, 400, field)
    assert metric_rows(app, publication) == []


def test_missing_fields_are_each_named(client, publication, key):
    error = assert_error(client.post(url(publication), json={}, headers=auth(key)), 400)
    assert set(error["fields"]) == {"observed_at", "views", "likes", "comments", "shares"}


def test_observed_in_the_future_beyond_the_skew_is_refused_within_it_accepted(app, client, publication, key):
    soon = (datetime.now(UTC) + timedelta(minutes=3)).isoformat()
    later = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    assert_error(client.post(url(publication), json={**body(), "observed_at": later}, headers=auth(key)), 400,
                 "observed_at")
    assert client.post(url(publication), json={**body(), "observed_at": soon}, headers=auth(key)).status_code == 201


def test_observed_before_the_post_was_published_is_refused(client, publication, key):
    assert_error(client.post(url(publication), json=body(-1), headers=auth(key)), 400, "observed_at")


@pytest.mark.parametrize("payload, content_type", [
    (b"not json", "application/json"), (b"[1, 2]", "application/json"),
    (b'{"views": NaN}', "application/json"), (b'{"observed_at": "x"}', "text/plain"),
])
def test_bodies_that_are_not_a_json_object_answer_400(client, publication, key, payload, content_type):
    resp = client.post(url(publication), data=payload, content_type=content_type, headers=auth(key))
    assert_error(resp, 400, "body")


def test_missing_or_wrong_key_is_401(client, publication, key):
    assert_error(client.post(url(publication), json=body()), 401)
    assert_error(client.post(url(publication), json=body(), headers=auth("as_live_wrong")), 401)


def test_another_partners_publication_answers_404_like_a_missing_one(app, client, publication, key):
    other = partner_api_key(app, "别家MCN")
    foreign = client.post(url(publication), json=body(), headers=auth(other))
    missing = client.post(url(999999), json=body(), headers=auth(other))
    assert_error(foreign, 404)
    assert_error(missing, 404)
    assert foreign.get_json()["error"]["message"] == missing.get_json()["error"]["message"]
    assert metric_rows(app, publication) == []
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(AuditEntry.id)).where(
            AuditEntry.action == "partner_api.foreign_publication")) == 1


def test_session_users_cannot_report_metrics(app, users, publication):
    from tests.conftest import signed_in

    for role in ("advisor", "compliance", "mcn", "admin"):
        resp = signed_in(app, users[role]).post(url(publication), json=body())
        assert_error(resp, 401)


def test_rate_limit_answers_429_in_the_error_shape(app_factory, users):
    app = app_factory(PARTNER_API_RATE_LIMIT="3 per minute")
    publication = make_publication(app, users)
    key = partner_api_key(app, "星河MCN")
    client = app.test_client()
    statuses = [client.post(url(publication), json=body(i), headers=auth(key)).status_code for i in range(1, 5)]
    assert statuses[:3] == [201, 201, 201]
    assert_error(client.post(url(publication), json=body(9), headers=auth(key)), 429)


def test_identical_reports_sent_at_once_store_one_row(app, publication, key):
    clients = [app.test_client() for _ in range(4)]
    statuses = race(*[lambda c=c: c.post(url(publication), json=body(views=77), headers=auth(key)).status_code
                      for c in clients])
    assert sorted(statuses) == [200, 200, 200, 201]
    assert metric_rows(app, publication) == [(PUBLISHED + timedelta(hours=1), 77, 10, 2, 1)]


def test_conflicting_reports_at_once_store_one_and_refuse_the_others(app, publication, key):
    clients = [app.test_client() for _ in range(3)]
    statuses = race(*[lambda c=c, i=i: c.post(url(publication), json=body(views=10 + i), headers=auth(key))
                      .status_code for i, c in enumerate(clients)])
    assert sorted(statuses) == [201, 409, 409]
    assert len(metric_rows(app, publication)) == 1


def test_reports_out_of_order_at_once_never_store_counters_that_go_backwards(app, publication, key):
    for round_ in range(3):
        base = 10 * (round_ + 1)
        early = body(base, views=500 * (round_ + 1))  # more views at an earlier time: cannot both stand
        late = body(base + 1, views=100 * (round_ + 1))
        statuses = race(*[lambda c=app.test_client(), b=b: c.post(url(publication), json=b, headers=auth(key))
                          .status_code for b in (early, late)])
        assert sorted(statuses) == [201, 422], statuses
    views = [row[1] for row in metric_rows(app, publication)]
    assert views == sorted(views) and len(views) == 3


def test_the_openapi_document_lists_the_metrics_endpoint(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/partner/publications/{publication_id}/metrics"]["post"]
    assert set(operation["responses"]) >= {"200", "201", "400", "401", "404", "409", "422", "429"}
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/MetricsIn")
    schema = spec["components"]["schemas"]["MetricsIn"]
    assert set(schema["required"]) == {"observed_at", "views", "likes", "comments", "shares"}
    assert schema["properties"]["views"]["minimum"] == 0


def test_a_publication_row_keeps_its_partner(app, publication):
    # The scoping above rests on the publication's own partner column, copied from its asset.
    with app.app_context():
        row = db.session.get(Publication, publication)
        assert row.partner_id == row.assignment.partner_id
