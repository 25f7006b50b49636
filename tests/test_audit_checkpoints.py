"""Signed checkpoints anchor the audit chain outside the database: a DBA who drops the triggers and
truncates or rewrites the chain (recomputing every hash and the head) is caught by `flask audit verify`."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from advisor_studio import audit, checkpoints
from advisor_studio.audit import AuditEntry, AuditHead
from advisor_studio.core import tasks as core_tasks
from advisor_studio.extensions import db
from tests.test_audit import _record_some


def _flask(app, *args: str) -> SimpleNamespace:
    """``flask <args>`` against ``app``, in-process (the commands' code, without a Python start-up each)."""
    result = app.test_cli_runner().invoke(args=list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)


def _as_dba(change) -> None:
    """Run ``change(conn)`` the way a database administrator could: with the append-only triggers off."""
    db.session.rollback()
    engine = db.engine
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("ALTER TABLE audit_entries DISABLE TRIGGER USER"))
            change(conn)
            conn.execute(sa.text("ALTER TABLE audit_entries ENABLE TRIGGER USER"))
        else:
            conn.execute(sa.text("DROP TRIGGER IF EXISTS audit_entries_no_update"))
            conn.execute(sa.text("DROP TRIGGER IF EXISTS audit_entries_no_delete"))
            change(conn)
    db.session.expire_all()


def _truncate_and_rewind(keep: int) -> None:
    """Delete every entry after #keep and point audit_head at #keep: the chain alone looks intact."""
    last_hash = db.session.scalar(sa.select(AuditEntry.entry_hash).where(AuditEntry.seq == keep))

    def change(conn):
        conn.execute(sa.text("DELETE FROM audit_entries WHERE seq > :k"), {"k": keep})
        conn.execute(sa.text("UPDATE audit_head SET seq = :k, last_hash = :h"), {"k": keep, "h": last_hash})

    _as_dba(change)


def _rewrite_and_rehash(seq: int, details: dict) -> None:
    """Change one entry's details and recompute its hash, every later hash and the head."""
    entries = db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.seq)).all()
    prev = entries[seq - 2].entry_hash if seq > 1 else audit.GENESIS_HASH
    rows = []
    for entry in entries[seq - 1:]:
        new_details = details if entry.seq == seq else entry.details
        canonical = audit.canonical_bytes(seq=entry.seq, at=entry.at, actor_id=entry.actor_id,
                                          actor_label=entry.actor_label, action=entry.action,
                                          object_type=entry.object_type, object_id=entry.object_id,
                                          details=new_details, prev_hash=prev)
        new_hash = hashlib.sha256(canonical).hexdigest()
        rows.append({"seq": entry.seq, "details": new_details, "prev_hash": prev, "entry_hash": new_hash})
        prev = new_hash
    table = AuditEntry.__table__

    def change(conn):
        for row in rows:
            conn.execute(sa.update(table).where(table.c.seq == row["seq"])
                         .values(details=row["details"], prev_hash=row["prev_hash"], entry_hash=row["entry_hash"]))
        conn.execute(sa.update(AuditHead.__table__).values(last_hash=prev))

    _as_dba(change)


def _local_app(app_factory):
    return app_factory(STORAGE_BACKEND="local")


def _lines(app) -> list[dict]:
    path = Path(app.instance_path) / "audit-checkpoints.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- the two attacks ------------------------------------------------------------------------------


def test_truncation_with_rewound_head_is_caught_by_an_earlier_checkpoint(app_ctx):
    _record_some(6)
    cli = _flask(app_ctx, "audit", "checkpoint")
    assert cli.returncode == 0, cli.stderr
    assert "entry #6" in cli.stdout
    assert audit.verify().ok
    _truncate_and_rewind(4)
    result = audit.verify()
    assert not result.ok and result.broken_seq == 5
    assert "the chain ends at #4 but the checkpoint of" in result.reason and "saw #6" in result.reason
    cli = _flask(app_ctx, "audit", "verify")
    assert cli.returncode == 1
    assert "#5" in cli.stderr and "saw #6" in cli.stderr


def test_truncation_without_a_checkpoint_is_reported_as_unanchored(app_ctx):
    _record_some(6)
    _truncate_and_rewind(4)
    result = audit.verify()
    # Nothing outside the database saw entries #5 and #6; verify must not claim the chain is anchored.
    assert result.ok and result.count == 4
    assert result.checkpoints == 0 and result.anchored_seq == 0 and result.unanchored == 4
    cli = _flask(app_ctx, "audit", "verify")
    assert cli.returncode == 0
    assert "4 newer entries are not covered by a checkpoint" in cli.stderr


def test_rewrite_with_recomputed_hashes_is_caught_by_an_earlier_checkpoint(app_ctx):
    _record_some(5)
    checkpoints.take()
    _record_some(2, "after.checkpoint")
    checkpoints.take()
    _rewrite_and_rehash(3, {"i": 999, "forged": True})
    db.session.expire_all()
    result = audit.verify()
    assert not result.ok and result.broken_seq == 5
    assert "differs from the checkpoint" in result.reason and "between #1 and #5" in result.reason
    cli = _flask(app_ctx, "audit", "verify")
    assert cli.returncode == 1 and "#5" in cli.stderr


def test_rewrite_after_the_last_checkpoint_is_named_between_the_two_checkpoints(app_ctx):
    _record_some(3)
    checkpoints.take()
    _record_some(3, "later")
    checkpoints.take()
    _rewrite_and_rehash(5, {"i": 0, "forged": True})
    result = audit.verify()
    assert not result.ok and result.broken_seq == 6 and "between #4 and #6" in result.reason


def test_rewrite_without_a_checkpoint_is_reported_as_unanchored(app_ctx):
    _record_some(5)
    _rewrite_and_rehash(3, {"i": 999})
    result = audit.verify()
    assert result.ok and result.anchored_seq == 0 and result.unanchored == 5


def test_checkpoint_anchors_the_chain_up_to_its_entry(app_ctx):
    _record_some(3)
    record = checkpoints.take()
    _record_some(2, "later")
    result = audit.verify()
    assert result.ok and result.count == 5 and result.checkpoints == 1
    assert result.anchored_seq == 3 and result.anchored_at == record["at"] and result.unanchored == 2
    assert result.key_fingerprint == checkpoints.fingerprint(checkpoints.signing_key().public_key())


# --- the checkpoint store and its signatures (local append-only file) -----------------------------


def test_checkpoint_file_holds_signed_records_appended_one_per_line(app_factory):
    app = _local_app(app_factory)
    with app.app_context():
        _record_some(2)
        checkpoints.take()
        _record_some(1, "more")
        checkpoints.take()
        head = db.session.get(AuditHead, audit.HEAD_ID)
        lines = _lines(app)
        assert [line["seq"] for line in lines] == [2, 3]
        assert lines[-1]["entry_hash"] == head.last_hash
        assert set(lines[0]) == {"v", "seq", "entry_hash", "at", "key", "sig"}
        assert (Path(app.instance_path) / "audit-checkpoints.jsonl").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("edit", ["seq", "entry_hash", "at", "signature", "garbage"])
def test_edited_checkpoint_file_fails_verification(app_factory, edit):
    app = _local_app(app_factory)
    with app.app_context():
        _record_some(4)
        checkpoints.take()
        path = Path(app.instance_path) / "audit-checkpoints.jsonl"
        record = _lines(app)[0]
        if edit == "seq":
            record["seq"] = 3  # pretend the checkpoint saw less, to hide a truncation
        elif edit == "entry_hash":
            record["entry_hash"] = "f" * 64
        elif edit == "at":
            record["at"] = "2020-01-01T00:00:00.000000Z"
        elif edit == "signature":
            record["sig"] = base64.b64encode(b"\x00" * 64).decode()
        path.write_text("not json\n" if edit == "garbage" else json.dumps(record) + "\n")
        result = audit.verify()
        assert not result.ok
        assert ("invalid signature" in result.reason) if edit != "garbage" else ("malformed" in result.reason
                                                                                   or "not a JSON" in result.reason)
    cli = _flask(app, "audit", "verify")
    assert cli.returncode == 1 and "line 1" in cli.stderr


def test_checkpoint_signed_by_another_key_fails_verification(app_factory):
    app = _local_app(app_factory)
    with app.app_context():
        _record_some(2)
        forged = checkpoints.sign(2, db.session.get(AuditHead, audit.HEAD_ID).last_hash, audit.utcnow(),
                                  Ed25519PrivateKey.generate())
        checkpoints.get_store().append(forged)
        result = audit.verify()
        assert not result.ok and "was signed by key" in result.reason


def test_regulator_verifies_with_the_public_key_alone_and_a_pinned_fingerprint(app_factory, tmp_path):
    app = _local_app(app_factory)
    with app.app_context():
        _record_some(3)
        checkpoints.take()
    printed = _flask(app, "audit", "public-key")
    assert printed.returncode == 0, printed.stderr
    pem, fingerprint = printed.stdout.rsplit("-----END PUBLIC KEY-----\n", 1)
    key_file = tmp_path / "audit.pub"
    key_file.write_text(pem + "-----END PUBLIC KEY-----\n")
    fingerprint = fingerprint.strip()
    assert fingerprint.startswith("SHA256:")
    ok = _flask(app, "audit", "verify", "--public-key", str(key_file), "--fingerprint", fingerprint)
    assert ok.returncode == 0, ok.stderr
    assert fingerprint in ok.stdout and "anchored up to entry #3" in ok.stdout
    wrong = _flask(app, "audit", "verify", "--fingerprint", "SHA256:" + "0" * 64)
    assert wrong.returncode == 1 and "pinned fingerprint" in wrong.stderr
    other = Ed25519PrivateKey.generate().public_key()
    key_file.write_text(checkpoints.public_key_pem(other))
    stranger = _flask(app, "audit", "verify", "--public-key", str(key_file))
    assert stranger.returncode == 1 and "was signed by key" in stranger.stderr


def test_signing_key_comes_from_the_environment_as_base64_seed(app_factory):
    seed = bytes(range(32))
    app = app_factory(AUDIT_SIGNING_KEY=base64.b64encode(seed).decode(), STORAGE_BACKEND="local")
    with app.app_context():
        expected = Ed25519PrivateKey.from_private_bytes(seed).public_key()
        assert checkpoints.fingerprint(checkpoints.signing_key().public_key()) == checkpoints.fingerprint(expected)
        assert not (Path(app.instance_path) / checkpoints.KEY_FILENAME).exists()


def test_signing_key_is_generated_once_into_the_instance_folder(app_factory):
    app = _local_app(app_factory)
    with app.app_context():
        first = checkpoints.fingerprint(checkpoints.signing_key().public_key())
    key_path = Path(app.instance_path) / checkpoints.KEY_FILENAME
    assert key_path.stat().st_mode & 0o077 == 0
    again = app_factory(STORAGE_BACKEND="local")
    with again.app_context():
        assert checkpoints.fingerprint(checkpoints.signing_key().public_key()) == first
    loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(loaded, Ed25519PrivateKey)


def test_production_config_requires_the_audit_signing_key(monkeypatch):
    from config import ProductionConfig

    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://db/advisor")
    monkeypatch.setenv("CONVERSION_WEBHOOK_SECRET", "y" * 40)
    monkeypatch.delenv("AUDIT_SIGNING_KEY", raising=False)
    with pytest.raises(RuntimeError, match="AUDIT_SIGNING_KEY"):
        ProductionConfig()


def test_bad_signing_key_is_refused_with_a_clear_message(app_factory):
    app = app_factory(AUDIT_SIGNING_KEY="not a key", STORAGE_BACKEND="local")
    with app.app_context(), pytest.raises(checkpoints.CheckpointError, match="AUDIT_SIGNING_KEY"):
        checkpoints.signing_key()


# --- periodic tasks ---------------------------------------------------------------------------------


def test_periodic_checkpoint_skips_an_unchanged_head_and_signs_a_new_one(app_factory):
    app = _local_app(app_factory)
    with app.app_context():
        assert core_tasks.checkpoint_audit_chain.apply().get() is None  # empty chain: nothing to sign
        _record_some(2)
        assert core_tasks.checkpoint_audit_chain.apply().get()["seq"] == 2
        assert core_tasks.checkpoint_audit_chain.apply().get() is None
        _record_some(1, "more")
        assert core_tasks.checkpoint_audit_chain.apply().get()["seq"] == 3
        assert [line["seq"] for line in _lines(app)] == [2, 3]


def test_periodic_verification_uses_the_checkpoints(app_ctx):
    _record_some(4)
    checkpoints.take()
    assert core_tasks.verify_audit_chain.apply().get()["anchored_seq"] == 4
    _truncate_and_rewind(2)
    outcome = core_tasks.verify_audit_chain.apply().get()
    assert outcome["ok"] is False and outcome["broken_seq"] == 3 and "saw #4" in outcome["reason"]


def test_beat_schedules_checkpoints_and_verification_from_config(app_factory):
    app = app_factory(AUDIT_CHECKPOINT_INTERVAL_SECONDS=120, AUDIT_VERIFY_INTERVAL_SECONDS=3600)
    schedule = app.extensions["celery"].conf.beat_schedule
    assert schedule["audit-checkpoint"] == {"task": "advisor_studio.core.checkpoint_audit_chain", "schedule": 120.0}
    assert schedule["audit-verify"] == {"task": "advisor_studio.core.verify_audit_chain", "schedule": 3600.0}


def test_checkpoint_refuses_to_sign_a_head_that_disagrees_with_the_chain(app_ctx):
    _record_some(3)
    _as_dba(lambda conn: conn.execute(sa.text("DELETE FROM audit_entries WHERE seq = 3")))
    with pytest.raises(checkpoints.CheckpointError, match="disagrees"):
        checkpoints.take()
    cli = _flask(app_ctx, "audit", "checkpoint")
    assert cli.returncode == 1 and "cannot checkpoint" in cli.stderr


# --- S3 Object Lock (moto's server over HTTP) ------------------------------------------------------


@pytest.fixture
def s3_app(app_factory, s3_server, tmp_path):
    bucket = "ckpt-" + hashlib.sha256(str(tmp_path).encode()).hexdigest()[:16]
    return app_factory(STORAGE_BACKEND="s3", S3_ENDPOINT_URL=s3_server, S3_BUCKET=bucket, S3_CREATE_BUCKET=True)


def test_s3_checkpoint_is_locked_in_compliance_mode_for_the_retention_period(s3_app):
    with s3_app.app_context():
        _record_some(2)
        record = checkpoints.take()
        store = checkpoints.get_store()
        assert store.bucket == s3_app.config["S3_BUCKET"] + "-audit"
        lock = store.client.get_object_lock_configuration(Bucket=store.bucket)["ObjectLockConfiguration"]
        assert lock["ObjectLockEnabled"] == "Enabled"
        head = store.client.head_object(Bucket=store.bucket, Key=record["where"])
        assert head["ObjectLockMode"] == "COMPLIANCE"
        years = (head["ObjectLockRetainUntilDate"] - audit.utcnow()).days / 365.25
        assert 19.9 < years < 20.2  # AUDIT_RETENTION_YEARS defaults to 20
        assert audit.verify().anchored_seq == 2


def test_s3_checkpoint_cannot_be_deleted_and_overwrites_or_delete_markers_are_reported(s3_app):
    from botocore.exceptions import ClientError

    with s3_app.app_context():
        _record_some(3)
        record = checkpoints.take()
        store = checkpoints.get_store()
        key = record["where"]
        version = store.client.list_object_versions(Bucket=store.bucket, Prefix=key)["Versions"][0]["VersionId"]
        # Deleting the locked version itself is refused by S3 (moto enforces this part of Object Lock).
        with pytest.raises(ClientError, match="AccessDenied"):
            store.client.delete_object(Bucket=store.bucket, Key=key, VersionId=version)
        # An overwrite only adds a version; verify keeps reading the locked original and reports it.
        forged = dict(record, seq=1)
        store.client.put_object(Bucket=store.bucket, Key=key, Body=json.dumps(forged).encode())
        original = json.loads(store.client.get_object(Bucket=store.bucket, Key=key, VersionId=version)["Body"].read())
        assert original["seq"] == 3
        result = audit.verify()
        assert not result.ok and "was overwritten (2 versions)" in result.reason
        # A plain delete leaves a delete marker in front of the locked version: reported too.
        latest = store.client.list_object_versions(Bucket=store.bucket, Prefix=key)["Versions"]
        newest = next(v["VersionId"] for v in latest if v["IsLatest"])
        store.client.delete_object(Bucket=store.bucket, Key=key, VersionId=newest)  # the unlocked forgery
        assert audit.verify().ok
        store.client.delete_object(Bucket=store.bucket, Key=key)
        result = audit.verify()
        assert not result.ok and "delete marker" in result.reason
    cli = _flask(s3_app, "audit", "verify")
    assert cli.returncode == 1 and key in cli.stderr


def test_s3_checkpoint_refuses_a_bucket_without_object_lock(app_factory, s3_server, tmp_path):
    import boto3

    bucket = "nolock-" + hashlib.sha256(str(tmp_path).encode()).hexdigest()[:16]
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=bucket)
    app = app_factory(STORAGE_BACKEND="s3", S3_ENDPOINT_URL=s3_server, S3_BUCKET="media-x",
                      AUDIT_CHECKPOINT_BUCKET=bucket, S3_CREATE_BUCKET=False)
    with app.app_context():
        _record_some(1)
        with pytest.raises(checkpoints.CheckpointError, match="Object Lock"):
            checkpoints.take()


def test_unreachable_checkpoint_store_fails_verification_with_a_clear_message(app_factory, free_s3_port):
    app = app_factory(STORAGE_BACKEND="s3", S3_ENDPOINT_URL=f"http://127.0.0.1:{free_s3_port}", S3_BUCKET="gone",
                      S3_CREATE_BUCKET=False)
    with app.app_context():
        _record_some(1)
        with pytest.raises(checkpoints.CheckpointError, match="gone-audit"):
            audit.verify()
        outcome = core_tasks.verify_audit_chain.apply().get()
        assert outcome["ok"] is False and "gone-audit" in outcome["reason"]
    cli = _flask(app, "audit", "verify")
    assert cli.returncode == 1 and "cannot verify" in cli.stderr and "gone-audit" in cli.stderr


@pytest.fixture
def free_s3_port():
    from tests.conftest import free_port

    return free_port()  # nothing listens there
