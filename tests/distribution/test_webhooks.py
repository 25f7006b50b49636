"""Webhooks to partners, against a real HTTP receiver on loopback: signed bodies, retries with capped
jittered back-off, order per asset, one delivery per event under concurrent sweeps, the retry window,
the admin re-send, server-side request forgery refused at send time, and nothing sent for a rolled-back
transaction. Time is driven by passing ``now`` to the sweep; nothing sleeps to wait for a deadline."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from advisor_studio.accounts.models import User
from advisor_studio.audit import AuditEntry
from advisor_studio.compliance import services as compliance
from advisor_studio.distribution import services, tasks, webhooks
from advisor_studio.distribution.models import Assignment, Partner, WebhookAttempt, WebhookEvent
from advisor_studio.extensions import db
from advisor_studio.studio.models import Package
from tests.studio.test_pages import approved_package

SECRET = "partner-secret-for-tests"
ON_POSTGRES = (os.environ.get("DATABASE_URL") or "").startswith("postgresql")


class Receiver:
    """A partner's webhook endpoint: records every request; answers 503 while ``down`` or for the
    first ``fail_first`` requests, 200 otherwise."""

    def __init__(self, fail_first: int = 0, pause: float = 0.0):
        self.fail_first = fail_first
        self.pause = pause  # widens the window in which two senders could overlap
        self.down = False
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if receiver.pause:
                    time.sleep(receiver.pause)
                with receiver.lock:
                    failing = receiver.down or len(receiver.requests) < receiver.fail_first
                    status = 503 if failing else 200
                    receiver.requests.append({"headers": dict(self.headers), "body": body, "path": self.path,
                                              "status": status})
                reply = b'{"ok": false}' if failing else b'{"ok": true}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/advisor-studio?src=test"

    def accepted(self) -> list[dict]:
        """Bodies (parsed) of the requests answered 2xx, in arrival order."""
        return [json.loads(r["body"]) for r in self.requests if r["status"] == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def make_partner(app, url: str | None, name: str = "星河MCN") -> int:
    """The partner the packages' channels belong to (tests.factories.make_channel reuses it by name)."""
    with app.app_context():
        partner = Partner(name=name, webhook_url=url, webhook_secret=SECRET)
        db.session.add(partner)
        db.session.commit()
        return partner.id


def approve(app, users) -> tuple[int, int]:
    """(package id, assignment id) of a newly approved package on a new channel of 星河MCN."""
    package_id = approved_package(app, users["advisor"].id, users["compliance"].id)
    with app.app_context():
        assignment_id = db.session.scalars(sa.select(Assignment.id).where(Assignment.package_id == package_id)).one()
    return package_id, assignment_id


def withdraw(app, users, package_id: int) -> None:
    with app.app_context():
        compliance.withdraw(db.session.get(Package, package_id), db.session.get(User, users["compliance"].id),
                            "误导性表述")
        db.session.commit()


def events(app, **where) -> list[WebhookEvent]:
    with app.app_context():
        stmt = sa.select(WebhookEvent).filter_by(**where).order_by(WebhookEvent.id)
        rows = db.session.scalars(stmt).all()
        for row in rows:
            db.session.expunge(row)
        return rows


def sweep(app, now: datetime) -> dict:
    with app.app_context():
        return tasks.sweep(now)


def run_clock(app, start: datetime, minutes: int, step: int = 1, before=None) -> None:
    """The beat: one sweep per ``step`` minutes from ``start``; ``before(now)`` runs ahead of each."""
    for minute in range(0, minutes + 1, step):
        now = start + timedelta(minutes=minute)
        if before:
            before(now)
        sweep(app, now)


def verify(header: str, body: bytes, secret: str) -> bool:
    """What a partner does (contract.md), written out here rather than calling our signer."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]) and abs(int(fields["t"]) - time.time()) < 300


# --- the request ---------------------------------------------------------------------------------------

def test_delivery_is_signed_with_the_partner_secret_over_the_raw_body(app, users, receiver):
    make_partner(app, receiver.url)
    _package_id, assignment_id = approve(app, users)
    sweep(app, datetime.now(UTC))

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request["path"] == "/hooks/advisor-studio?src=test"
    assert request["headers"]["Content-Type"].startswith("application/json")
    assert request["headers"]["Host"] == f"127.0.0.1:{receiver.port}"
    assert verify(request["headers"]["X-Signature"], request["body"], SECRET)
    assert not verify(request["headers"]["X-Signature"], request["body"] + b" ", SECRET)
    assert not verify(request["headers"]["X-Signature"], request["body"], "another-secret")
    body = json.loads(request["body"])
    [event] = events(app, assignment_id=assignment_id)
    assert set(body) == {"id", "type", "created_at", "data"}
    assert body["id"] == event.event_id and body["type"] == "asset.assigned"
    assert body["data"] == {"asset_id": assignment_id, "status": "ready", "takedown_due_at": None}
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None
    assert event.status == "delivered" and event.attempts == 1
    with app.app_context():
        [attempt] = db.session.scalars(sa.select(WebhookAttempt)).all()
        assert attempt.ok and attempt.status_code == 200 and attempt.latency_ms >= 0
        assert attempt.url == receiver.url and attempt.response_excerpt == '{"ok": true}'


def test_event_id_and_body_bytes_are_the_same_on_every_retry(app, users, receiver):
    receiver.fail_first = 2
    make_partner(app, receiver.url)
    approve(app, users)
    run_clock(app, datetime.now(UTC), minutes=180)

    assert [r["status"] for r in receiver.requests] == [503, 503, 200]
    assert len({r["body"] for r in receiver.requests}) == 1
    assert all(verify(r["headers"]["X-Signature"], r["body"], SECRET) for r in receiver.requests)
    [event] = events(app)
    assert event.status == "delivered" and event.attempts == 3
    with app.app_context():
        attempts = db.session.scalars(sa.select(WebhookAttempt).order_by(WebhookAttempt.id)).all()
        assert [(a.ok, a.status_code) for a in attempts] == [(False, 503), (False, 503), (True, 200)]
        assert attempts[0].error == "HTTP 503" and attempts[0].response_excerpt == '{"ok": false}'


# --- retries, order, concurrency -------------------------------------------------------------------------

def test_receiver_down_for_an_hour_gets_every_event_once_it_is_back(app, users, receiver):
    make_partner(app, receiver.url)
    first_package, first_asset = approve(app, users)
    _second_package, second_asset = approve(app, users)
    withdraw(app, users, first_package)
    start = datetime.now(UTC)
    back_at = start + timedelta(hours=1)

    def outage(now):
        receiver.down = now < back_at

    run_clock(app, start, minutes=4 * 60, before=outage)

    assert any(r["status"] == 503 for r in receiver.requests)
    delivered = receiver.accepted()
    expected = events(app)
    assert len(expected) == 3 and all(e.status == "delivered" for e in expected)
    # Every event exactly once (2xx), and the two events of the first asset in the order they happened.
    assert sorted(b["id"] for b in delivered) == sorted(e.event_id for e in expected)
    first = [b["type"] for b in delivered if b["data"]["asset_id"] == first_asset]
    assert first == ["asset.assigned", "asset.withdrawn"]
    assert [b["type"] for b in delivered if b["data"]["asset_id"] == second_asset] == ["asset.assigned"]
    assert all(r["status"] == 503 for r in receiver.requests[:-3])


def test_a_later_event_of_an_asset_waits_for_the_earlier_even_when_it_is_due_first(app, users, receiver):
    make_partner(app, receiver.url)
    package_id, asset_id = approve(app, users)
    withdraw(app, users, package_id)
    assigned, withdrawn = events(app, assignment_id=asset_id)
    now = datetime.now(UTC)
    with app.app_context():
        # The first event is backing off for another 40 minutes; the second would be due at once.
        db.session.execute(sa.update(WebhookEvent).where(WebhookEvent.id == assigned.id)
                           .values(next_attempt_at=now + timedelta(minutes=40), attempts=3))
        db.session.commit()
        assert tasks.deliver(withdrawn.id, now) == "not_due"

    sweep(app, now)
    assert receiver.requests == []
    assert events(app, id=withdrawn.id)[0].attempts == 0

    sweep(app, now + timedelta(minutes=41))  # the first goes out, and the second right after it
    assert [b["type"] for b in receiver.accepted()] == ["asset.assigned", "asset.withdrawn"]


def test_events_of_different_assets_do_not_block_each_other(app, users, receiver):
    make_partner(app, receiver.url)
    _p1, blocked_asset = approve(app, users)
    _p2, other_asset = approve(app, users)
    [stuck] = events(app, assignment_id=blocked_asset)
    now = datetime.now(UTC)
    with app.app_context():
        db.session.execute(sa.update(WebhookEvent).where(WebhookEvent.id == stuck.id)
                           .values(next_attempt_at=now + timedelta(hours=1)))
        db.session.commit()
    sweep(app, now)
    assert [b["data"]["asset_id"] for b in receiver.accepted()] == [other_asset]


@pytest.mark.skipif(not ON_POSTGRES, reason="concurrent writers: PostgreSQL (SQLite serializes them anyway)")
def test_two_sweeps_at_once_deliver_every_event_exactly_once(app, users):
    receiver = Receiver(pause=0.05)
    try:
        partner_id = make_partner(app, receiver.url)
        approve(app, users)
        with app.app_context():
            partner = db.session.get(Partner, partner_id)
            for _ in range(12):
                webhooks.send_test_event(partner, actor="test")
            db.session.commit()
        now = datetime.now(UTC)
        barrier = threading.Barrier(3)
        errors = []

        def worker():
            try:
                with app.app_context():
                    barrier.wait()
                    tasks.deliver_due(now)
            except Exception as exc:  # noqa: BLE001 - surfaced below; a thread's exception would otherwise vanish
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        ids = [b["id"] for b in receiver.accepted()]
        assert len(ids) == 13 and len(set(ids)) == 13
        assert all(e.status == "delivered" and e.attempts == 1 for e in events(app))
        with app.app_context():
            assert db.session.scalar(sa.select(sa.func.count(WebhookAttempt.id))) == 13
    finally:
        receiver.close()


def test_the_earlier_pending_check_of_each_due_event_reads_one_assets_line(app):
    """The due-events query asks, per due event, whether an earlier event of its asset is pending. The
    migrations give both databases the (assignment, partner, status, id) index for it. SQLite keeps no
    statistics, so its choice is pinned here: with the partner_id index it read every event of the partner
    per candidate (24.6 s instead of 3 ms at 52,000 events; benchmarks/bench_webhooks.py). PostgreSQL
    chooses from its statistics, which a near-empty test table does not have (the benchmark: 5.5 ms)."""
    with app.app_context():
        indexes = {ix["name"]: ix["column_names"] for ix in sa.inspect(db.engine).get_indexes("webhook_events")}
        assert indexes["ix_webhook_events_asset_line"] == ["assignment_id", "partner_id", "status", "id"]
        assert "ix_webhook_events_assignment_id" not in indexes  # the composite index leads with that column
        if ON_POSTGRES:
            return
        stmt = sa.select(WebhookEvent.id).where(webhooks.due_clause(datetime.now(UTC))).order_by(
            WebhookEvent.id).limit(100)
        sql = str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))
        plan = [row[3] for row in db.session.execute(sa.text("EXPLAIN QUERY PLAN " + sql))]
    [earlier] = [step for step in plan if "earlier" in step]
    assert "ix_webhook_events_asset_line (assignment_id=? AND partner_id=? AND status=? AND id<?)" in earlier, plan


def test_backoff_grows_with_full_jitter_and_is_capped():
    ceilings = [webhooks.retry_ceiling(n, base=30, cap=3600) for n in range(1, 12)]
    assert ceilings[:5] == [30, 60, 120, 240, 480]
    assert ceilings[-1] == 3600 and max(ceilings) == 3600
    assert webhooks.retry_ceiling(10_000, base=30, cap=3600) == 3600  # no overflow far out
    rng = random.Random(7)
    for n, ceiling in enumerate(ceilings, start=1):
        samples = [webhooks.retry_delay(n, base=30, cap=3600, rng=rng) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert len({round(s, 3) for s in samples}) > 150  # jittered, not one fixed wait
        assert max(samples) > 0.8 * ceiling  # the whole range up to the ceiling is used


def test_a_failed_attempt_schedules_the_next_within_the_growing_ceiling(app, users):
    make_partner(app, "http://127.0.0.1:9/closed")  # the discard port: connection refused
    approve(app, users)
    [event] = events(app)
    now = datetime.now(UTC)
    for attempt in range(1, 9):
        with app.app_context():
            assert tasks.deliver(event.id, now) == "pending"
            row = db.session.get(WebhookEvent, event.id)
            wait = (row.next_attempt_at - now).total_seconds()
            assert 0 <= wait <= min(3600, 30 * 2 ** (attempt - 1)) + 0.001
            assert row.attempts == attempt and "connection" in row.last_error.lower()
            now = row.next_attempt_at
    with app.app_context():
        attempts = db.session.scalars(sa.select(WebhookAttempt)).all()
        assert len(attempts) == 8 and not any(a.ok for a in attempts)
        assert all(a.status_code is None and a.error for a in attempts)


# --- giving up, re-sending ---------------------------------------------------------------------------------

def test_delivery_gives_up_after_the_window_and_an_admin_resend_delivers(app, users, receiver):
    from tests.conftest import post_form, signed_in

    receiver.down = True
    make_partner(app, receiver.url)
    approve(app, users)
    [event] = events(app)
    start = datetime.now(UTC)
    run_clock(app, start, minutes=25 * 60, step=5)

    [failed] = events(app)
    assert failed.status == "failed" and failed.next_attempt_at is None
    assert failed.attempts == len(receiver.requests) >= 20  # retried through the day, no more after
    last_attempt = max(datetime.fromisoformat(str(a)) for a in _attempt_times(app))
    # The last try is the first sweep at or after the end of the window (sweeps here are 5 minutes apart).
    window_end = failed.created_at + timedelta(hours=24)
    assert window_end <= last_attempt <= window_end + timedelta(minutes=5)
    run_clock(app, start + timedelta(hours=26), minutes=120, step=10)
    assert len(receiver.requests) == failed.attempts  # failed stays failed

    receiver.down = False
    admin = signed_in(app, users["admin"])
    from tests.studio.test_pages import by_testid

    assert by_testid(admin.get("/"), "landing-webhook-failures")  # the admin landing names the failure
    page = f"/admin/webhooks/{event.id}"
    refused = post_form(admin, f"{page}/resend", {}, form_page=page)  # no confirmation ticked
    assert refused.status_code == 302 and events(app)[0].status == "failed"
    resp = post_form(admin, f"{page}/resend", {"confirm": "y"}, form_page=page)
    assert resp.status_code == 302
    sweep(app, datetime.now(UTC))
    [resent] = events(app)
    assert resent.status == "delivered" and resent.run == 2 and resent.event_id == event.event_id
    assert not by_testid(admin.get("/"), "landing-webhook-failures")
    assert receiver.accepted()[0]["id"] == event.event_id
    with app.app_context():
        audit = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "webhook.resent"))
        assert audit.object_id == str(event.id) and audit.actor_id == users["admin"].id
        runs = db.session.scalars(sa.select(WebhookAttempt.run).order_by(WebhookAttempt.id)).all()
        assert runs[-1] == 2 and set(runs[:-1]) == {1}


def _attempt_times(app) -> list:
    with app.app_context():
        return [a.isoformat() for a in db.session.scalars(sa.select(WebhookAttempt.attempted_at))]


# --- server-side request forgery ----------------------------------------------------------------------------

def test_production_config_refuses_a_url_resolving_to_loopback_at_send_time(app, users, receiver):
    # Saved while the host still resolved elsewhere (or by an older rule); the send-time check decides.
    make_partner(app, f"https://localhost:{receiver.port}/hook")
    approve(app, users)
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    sweep(app, datetime.now(UTC))

    assert receiver.requests == []
    [event] = events(app)
    assert event.status == "pending" and event.attempts == 1
    with app.app_context():
        [attempt] = db.session.scalars(sa.select(WebhookAttempt)).all()
        assert not attempt.ok and attempt.status_code is None and attempt.error.startswith("refused:")
        assert "127.0.0.1" in attempt.error or "::1" in attempt.error


def test_no_redirect_is_followed(app, users):
    class Redirector(BaseHTTPRequestHandler):
        hits: list[str] = []

        def do_POST(self):  # noqa: N802
            Redirector.hits.append(self.path)
            self.send_response(307)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        make_partner(app, f"http://127.0.0.1:{server.server_address[1]}/hook")
        approve(app, users)
        sweep(app, datetime.now(UTC))
        assert Redirector.hits == ["/hook"]
        [event] = events(app)
        assert event.status == "pending" and event.last_error == "HTTP 307"
    finally:
        server.shutdown()
        server.server_close()


# --- the outbox and the transaction ---------------------------------------------------------------------

def test_an_event_recorded_in_a_rolled_back_transaction_is_never_sent(app_factory, users, receiver):
    app = app_factory(CELERY_TASK_ALWAYS_EAGER=True)  # a committed event is delivered at once, in-process
    partner_id = make_partner(app, receiver.url)
    with app.app_context():
        partner = db.session.get(Partner, partner_id)
        webhooks.send_test_event(partner, actor="test")
        db.session.rollback()
    assert receiver.requests == [] and events(app) == []
    sweep(app, datetime.now(UTC) + timedelta(days=2))
    assert receiver.requests == []

    with app.app_context():
        webhooks.send_test_event(db.session.get(Partner, partner_id), actor="test")
        db.session.commit()
    assert [b["type"] for b in receiver.accepted()] == ["test"]


def test_overdue_takedown_is_raised_by_the_sweep_and_delivered_once(app, users, receiver):
    make_partner(app, receiver.url)
    package_id, asset_id = approve(app, users)
    with app.app_context():
        services.report_publication(db.session.get(Assignment, asset_id), platform="douyin",
                                    post_url="https://www.douyin.com/video/7301", published_at=datetime.now(UTC),
                                    actor="test")
        db.session.commit()
    withdraw(app, users, package_id)
    later = datetime.now(UTC) + timedelta(hours=25)
    assert sweep(app, later)["overdue_raised"] == 1
    assert sweep(app, later + timedelta(minutes=1))["overdue_raised"] == 0
    types = [b["type"] for b in receiver.accepted()]
    assert types == ["asset.assigned", "asset.withdrawn", "takedown.overdue"]
    overdue = receiver.accepted()[-1]["data"]
    assert overdue["asset_id"] == asset_id and overdue["status"] == "withdrawn" and overdue["takedown_due_at"]


def test_events_of_a_partner_without_url_are_skipped_not_sent(app, users):
    make_partner(app, None)
    approve(app, users)
    [event] = events(app)
    assert event.status == "skipped"
    assert sweep(app, datetime.now(UTC)) == {"overdue_raised": 0}


# --- through a real worker ------------------------------------------------------------------------------------

@pytest.mark.worker
def test_an_approval_is_delivered_as_asset_assigned_through_a_real_worker(app, users, receiver, worker):
    make_partner(app, receiver.url)
    _package_id, asset_id = approve(app, users)  # the commit queues the delivery task
    deadline = time.monotonic() + 90
    while not receiver.accepted() and time.monotonic() < deadline and worker.poll() is None:
        time.sleep(0.2)
    if not receiver.accepted():
        print(worker.log_path.read_text())
    [body] = receiver.accepted()
    assert body["type"] == "asset.assigned" and body["data"]["asset_id"] == asset_id
    assert verify(receiver.requests[0]["headers"]["X-Signature"], receiver.requests[0]["body"], SECRET)
    with app.app_context():
        event = db.session.scalar(sa.select(WebhookEvent))
        for _ in range(50):  # the worker commits the outcome right after the response
            db.session.rollback()
            event = db.session.scalar(sa.select(WebhookEvent))
            if event.status == "delivered":
                break
            time.sleep(0.1)
        assert event.status == "delivered"


# --- the admin pages -----------------------------------------------------------------------------------------

def test_delivery_log_shows_events_with_their_attempts_and_filters(app, users, receiver):
    from tests.conftest import signed_in
    from tests.studio.test_pages import by_testid, html

    receiver.fail_first = 1
    make_partner(app, receiver.url)
    make_partner(app, None, name="月光MCN")
    approve(app, users)
    run_clock(app, datetime.now(UTC), minutes=90)
    [event] = events(app)
    admin = signed_in(app, users["admin"])

    resp = admin.get("/admin/webhooks")
    assert resp.status_code == 200
    page = html(resp)
    assert len(by_testid(resp, "webhook-row")) == 1 and event.event_id in page
    assert len(by_testid(resp, "webhook-attempt")) == 2 and "HTTP 503" in page and "503" in page
    row = page.split('data-testid="webhook-row"')[1].split("</tr>")[0]
    assert 'data-status="delivered"' in row and ">asset.assigned<" not in row  # a label, not the code

    assert len(by_testid(admin.get("/admin/webhooks?status=failed"), "webhook-row")) == 0
    assert len(by_testid(admin.get("/admin/webhooks?type=asset.assigned&status=delivered"), "webhook-row")) == 1
    with app.app_context():
        other = db.session.scalar(sa.select(Partner.id).where(Partner.name == "月光MCN"))
    empty = admin.get(f"/admin/webhooks?partner={other}")
    assert by_testid(empty, "webhook-row") == [] and by_testid(empty, "empty-state")
    assert admin.get("/admin/webhooks?status=bogus").status_code == 400
    assert admin.get("/admin/webhooks?partner=abc").status_code == 400

    detail = admin.get(f"/admin/webhooks/{event.id}")
    assert detail.status_code == 200 and len(by_testid(detail, "webhook-attempt")) == 2
    assert event.event_id in html(detail) and by_testid(detail, "webhook-resend-form")
    assert admin.get("/admin/webhooks/999999").status_code == 404


def test_admin_sends_a_test_event_which_is_delivered_and_audited(app, users, receiver):
    from tests.conftest import post_form, signed_in

    partner_id = make_partner(app, receiver.url)
    make_partner(app, None, name="月光MCN")
    admin = signed_in(app, users["admin"])
    resp = post_form(admin, "/admin/webhooks/test", {"partner_id": str(partner_id)}, form_page="/admin/webhooks")
    assert resp.status_code == 302
    sweep(app, datetime.now(UTC))
    [body] = receiver.accepted()
    assert body["type"] == "test" and body["data"] == {"asset_id": None, "status": None, "takedown_due_at": None}
    assert verify(receiver.requests[0]["headers"]["X-Signature"], receiver.requests[0]["body"], SECRET)
    with app.app_context():
        entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "webhook.test_sent"))
        assert entry.object_id == str(partner_id) and entry.details["event_id"] == body["id"]
        no_url = db.session.scalar(sa.select(Partner.id).where(Partner.name == "月光MCN"))
    # A partner without a URL is not offered, and a forged choice changes nothing.
    resp = post_form(admin, "/admin/webhooks/test", {"partner_id": str(no_url)}, form_page="/admin/webhooks")
    assert resp.status_code == 302 and len(events(app)) == 1


def test_resending_an_event_still_being_delivered_is_refused(app, users, receiver):
    from tests.conftest import post_form, signed_in

    make_partner(app, receiver.url)
    approve(app, users)
    [event] = events(app)
    admin = signed_in(app, users["admin"])
    page = f"/admin/webhooks/{event.id}"
    # The form is not offered while pending; a POST anyway is refused with a message.
    from tests.studio.test_pages import by_testid

    assert by_testid(admin.get(page), "webhook-resend-form") == []
    post_form(admin, f"{page}/resend", {"confirm": "y"}, form_page="/admin/webhooks")
    [same] = events(app)
    assert same.run == 1 and same.status == "pending"
    with app.app_context():
        assert db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "webhook.resent")) is None


@pytest.mark.parametrize("role", ["advisor", "compliance", "mcn"])
def test_only_admins_resend_or_send_test_events(app, users, receiver, role):
    from tests.conftest import csrf_from, signed_in

    partner_id = make_partner(app, receiver.url)
    approve(app, users)
    sweep(app, datetime.now(UTC))
    [event] = events(app)
    client = signed_in(app, users[role])
    token = csrf_from(client.get("/account/password").get_data(as_text=True))
    assert client.post(f"/admin/webhooks/{event.id}/resend", data={"confirm": "y", "csrf_token": token}
                       ).status_code == 403
    assert client.post("/admin/webhooks/test", data={"partner_id": partner_id, "csrf_token": token}
                       ).status_code == 403
    assert [e.run for e in events(app)] == [1]


# --- transport details ---------------------------------------------------------------------------------------

def test_the_request_goes_to_the_checked_address_with_the_urls_host_name(app, users, receiver):
    make_partner(app, f"http://localhost:{receiver.port}/hook")
    approve(app, users)
    sweep(app, datetime.now(UTC))
    [request] = receiver.requests
    assert request["headers"]["Host"] == f"localhost:{receiver.port}" and request["path"] == "/hook"


def test_tls_uses_the_urls_host_name_and_verifies_the_certificate(app, users, tmp_path):
    import ssl

    cert, key = _self_signed(tmp_path, "localhost")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    plain = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    plain.socket = context.wrap_socket(plain.socket, server_side=True)
    threading.Thread(target=plain.serve_forever, daemon=True).start()
    try:
        make_partner(app, f"https://localhost:{plain.server_address[1]}/hook")
        approve(app, users)
        sweep(app, datetime.now(UTC))
    finally:
        plain.shutdown()
        plain.server_close()
    assert names == ["localhost"]  # connected to 127.0.0.1, but the TLS server name is the URL's host
    with app.app_context():
        [attempt] = db.session.scalars(sa.select(WebhookAttempt)).all()
    assert not attempt.ok and "CERTIFICATE_VERIFY_FAILED" in attempt.error  # a self-signed cert is not trusted


def _self_signed(folder, host: str):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_a_receiver_that_never_answers_times_out_and_is_retried(app_factory, users):
    import socket

    app = app_factory(WEBHOOK_TIMEOUT_SECONDS=1)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections (the kernel does) but never answers
    try:
        make_partner(app, f"http://127.0.0.1:{silent.getsockname()[1]}/hook")
        approve(app, users)
        sweep(app, datetime.now(UTC))
    finally:
        silent.close()
    [event] = events(app)
    assert event.status == "pending" and event.attempts == 1 and "timed out" in event.last_error.lower()


def test_a_claim_left_by_a_dead_worker_is_taken_over_once_its_lease_ran_out(app, users, receiver):
    make_partner(app, receiver.url)
    approve(app, users)
    [event] = events(app)
    now = datetime.now(UTC)
    with app.app_context():
        assert webhooks.claim(db.session.get(WebhookEvent, event.id), now) is not None
        db.session.commit()  # ... and the worker dies before sending
    sweep(app, now + timedelta(minutes=1))
    assert receiver.requests == []  # still leased
    sweep(app, now + webhooks.LEASE + timedelta(seconds=1))
    assert [b["id"] for b in receiver.accepted()] == [event.event_id]
