"""The audit trail: hash chain, tamper detection, append-only storage, concurrent writers."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from advisor_studio import audit
from advisor_studio.audit import AuditEntry, AuditHead
from advisor_studio.extensions import db
from tests.conftest import ROOT, signed_in, subprocess_env


def _record_some(n: int, prefix: str = "test.event") -> None:
    for i in range(n):
        details = {"i": i, "text": "合规 ✓", "nested": {"b": 1, "a": [1, 2]}}
        audit.record(prefix, "thing", i, actor="tester", details=details)
    db.session.commit()


def test_entries_link_into_a_verifiable_chain(app_ctx):
    _record_some(5)
    entries = db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.seq)).all()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == audit.GENESIS_HASH
    for prev, entry in zip(entries, entries[1:], strict=False):
        assert entry.prev_hash == prev.entry_hash
    result = audit.verify()
    assert result.ok and result.count == 5


def test_database_refuses_update_and_delete_of_entries(app_ctx):
    _record_some(2)
    for stmt in (
        sa.update(AuditEntry).where(AuditEntry.seq == 1).values(action="rewritten"),
        sa.delete(AuditEntry).where(AuditEntry.seq == 2),
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            db.session.execute(stmt)
            db.session.flush()
        db.session.rollback()
    assert audit.verify().ok


def _tamper(sql: str, params: dict) -> None:
    """Change stored rows the way a DBA with raw access could: around the append-only triggers."""
    engine = db.engine
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("ALTER TABLE audit_entries DISABLE TRIGGER USER"))
            conn.execute(sa.text(sql), params)
            conn.execute(sa.text("ALTER TABLE audit_entries ENABLE TRIGGER USER"))
        else:
            conn.execute(sa.text("DROP TRIGGER audit_entries_no_update"))
            conn.execute(sa.text("DROP TRIGGER audit_entries_no_delete"))
            conn.execute(sa.text(sql), params)


def _verify_cli(app) -> subprocess.CompletedProcess:
    env = subprocess_env(app)
    return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "audit", "verify"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)


def test_cli_verify_passes_on_intact_chain(app_ctx):
    _record_some(3)
    result = _verify_cli(app_ctx)
    assert result.returncode == 0, result.stderr
    assert "3 entries" in result.stdout


@pytest.mark.parametrize("tampering,broken", [
    ("UPDATE audit_entries SET details = :v WHERE seq = 3", 3),
    ("UPDATE audit_entries SET actor_label = :v WHERE seq = 2", 2),
    ("DELETE FROM audit_entries WHERE seq = 4 AND :v = :v", 4),
])
def test_tampering_is_caught_and_named(app_ctx, tampering, broken):
    _record_some(6)
    value = '{"i": 999}' if "details" in tampering else "someone-else"
    _tamper(tampering, {"v": value})
    db.session.expire_all()
    result = audit.verify()
    assert not result.ok and result.broken_seq == broken
    cli = _verify_cli(app_ctx)
    assert cli.returncode == 1
    assert f"#{broken}" in cli.stderr


def test_removing_the_newest_entries_is_caught_through_the_head(app_ctx):
    _record_some(4)
    _tamper("DELETE FROM audit_entries WHERE seq >= :v", {"v": 3})
    db.session.expire_all()
    result = audit.verify()
    assert not result.ok and result.broken_seq == 3


def test_concurrent_writers_never_fork_the_chain(app):
    threads_n, per_thread = 6, 15
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads_n)

    def writer(k: int) -> None:
        try:
            with app.app_context():
                barrier.wait()
                for i in range(per_thread):
                    audit.record("concurrency.test", "writer", k, actor=f"writer-{k}", details={"i": i})
                    db.session.commit()
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    with app.app_context():
        result = audit.verify()
        assert result.ok, result.reason
        assert result.count == threads_n * per_thread
        prev_hashes = db.session.scalars(sa.select(AuditEntry.prev_hash)).all()
        assert len(set(prev_hashes)) == len(prev_hashes)  # no two entries extend the same predecessor
        assert db.session.get(AuditHead, audit.HEAD_ID).seq == threads_n * per_thread


def test_rolled_back_transaction_leaves_no_gap(app_ctx):
    _record_some(2)
    audit.record("doomed", "thing", 1, actor="tester")
    db.session.rollback()
    _record_some(1, "after")
    result = audit.verify()
    assert result.ok and result.count == 3


def test_audit_page_filters_by_action_actor_and_object(app, users):
    with app.app_context():
        _record_some(3, "lexicon.changed")
    client = signed_in(app, users["compliance"])
    body = client.get("/audit", query_string={"action": "lexicon.changed"}).get_data(as_text=True)
    assert body.count('data-action="lexicon.changed"') == 3
    body = client.get("/audit", query_string={"actor": users["compliance"].email}).get_data(as_text=True)
    assert 'data-action="user.login"' in body and 'data-action="lexicon.changed"' not in body
    body = client.get("/audit", query_string={"object_type": "thing", "object_id": "1"}).get_data(as_text=True)
    assert body.count('data-action="lexicon.changed"') == 1
    body = client.get("/audit", query_string={"from": "2000-01-01", "to": "2000-01-02"}).get_data(as_text=True)
    assert 'data-testid="empty-state"' in body
    # A date that is not YYYY-MM-DD is refused with the expected form (tests/test_input_bounds.py).
    assert client.get("/audit", query_string={"from": "not-a-date"}).status_code == 400


def _english(app, record):
    from tests.conftest import post_form

    client = signed_in(app, record)
    assert post_form(client, "/language/en", {"next": "/audit"}, form_page="/audit").status_code == 302
    return client


def test_audit_timeline_reads_as_sentences_with_linked_objects_in_both_languages(app, users):
    with app.app_context():
        audit.record("package.submitted", "package", 7, actor="advisor@example.com",
                     details={"manifest_sha256": "ab" * 32, "scan_id": 3})
        db.session.commit()
    zh = signed_in(app, users["compliance"]).get("/audit", query_string={"object_type": "package"})
    body = zh.get_data(as_text=True)
    assert "提交作品包终审" in body and "作品包 #7" in body and "北京时间" in body
    assert 'href="/studio/packages/7"' in body  # compliance may open packages
    assert "manifest_sha256" in body and "ab" * 32 in body  # details as labelled values, hashes one click away
    en = _english(app, users["compliance"]).get("/audit", query_string={"object_type": "package"})
    assert "submitted a package for final review" in en.get_data(as_text=True)


def test_objects_are_linked_only_for_readers_who_may_open_them(app, users):
    with app.app_context():
        audit.record("user.updated", "user", users["advisor"].id, actor="admin@example.com")
        db.session.commit()
    link = f'href="/admin/users/{users["advisor"].id}"'
    query = {"object_type": "user", "action": "user.updated"}
    assert link in signed_in(app, users["admin"]).get("/audit", query_string=query).get_data(as_text=True)
    assert link not in signed_in(app, users["compliance"]).get("/audit", query_string=query).get_data(as_text=True)


def test_an_unknown_action_still_shows_as_its_code(app, users):
    with app.app_context():
        audit.record("future.thing_done", "gizmo", "x1", actor="system")
        db.session.commit()
    body = signed_in(app, users["compliance"]).get("/audit", query_string={"action": "future."}).get_data(as_text=True)
    assert "future.thing_done" in body and "gizmo #x1" in body


def test_csv_export_has_exactly_the_filtered_entries(app, users):
    import csv
    import io

    with app.app_context():
        _record_some(4, "lexicon.changed")
        audit.record("package.submitted", "package", 9, actor="=cmd|' /C calc'!A0")
        db.session.commit()
    client = signed_in(app, users["compliance"])
    resp = client.get("/audit/export.csv", query_string={"action": "lexicon.changed"})
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    text = resp.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(rows) == 1 + 4 and {row[4] for row in rows[1:]} == {"lexicon.changed"}
    page = client.get("/audit", query_string={"action": "lexicon.changed"}).get_data(as_text=True)
    assert [row[-1] for row in rows[1:]] == [
        line.split(">", 1)[1].split("<", 1)[0] for line in page.split('data-testid="audit-hash"')[1:]]
    rows = list(csv.reader(io.StringIO(client.get("/audit/export.csv", query_string={
        "object_type": "package"}).get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[1][2].startswith("'=")  # a formula-looking actor is neutralised for Excel

