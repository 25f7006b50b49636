"""The restore drill of issue 12: content made through the services, backed up, restored into a fresh
instance (new database, new media root or bucket); then the audit chain verifies against its signed
checkpoint, every approved rendition is hash-true and every table has the same rows."""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa

from advisor_studio import checkpoints
from advisor_studio.audit import AuditEntry
from advisor_studio.extensions import db
from tests.backup.conftest import cli, make_content, table_counts
from tests.conftest import stored_keys


@pytest.fixture(params=["local", "s3-listed", "s3-copied"])
def setup(request, app_factory, fresh_target):
    """(source app, make the fresh target app, create options) for local storage, an S3 bucket the backup
    lists (the restore finds the objects where they are) and an S3 bucket the backup copies (the restore
    uploads them into a new, empty bucket)."""
    if request.param == "local":
        return app_factory(), fresh_target, []
    endpoint = request.getfixturevalue("s3_server")
    bucket = f"src-{uuid.uuid4().hex[:12]}"
    s3 = {"STORAGE_BACKEND": "s3", "S3_ENDPOINT_URL": endpoint, "S3_CREATE_BUCKET": True, "S3_REGION": "us-east-1",
          "AUDIT_CHECKPOINT_BUCKET": f"{bucket}-audit"}
    source = app_factory(S3_BUCKET=bucket, **s3)
    if request.param == "s3-listed":
        return source, lambda: fresh_target(S3_BUCKET=bucket, **s3), []
    return source, lambda: fresh_target(S3_BUCKET=f"dst-{uuid.uuid4().hex[:12]}", **s3), ["--copy-files"]


def test_restored_instance_verifies_its_audit_chain_renditions_and_row_counts(setup, tmp_path):
    source, make_target, options = setup
    content = make_content(source)
    with source.app_context():
        checkpoints.take()  # the restored chain must still agree with what was signed before the backup
    before = table_counts(source)
    assert before["approvals"] >= 1 and before["clicks"] == 3 and before["conversions"] == 4
    assert before["audit_entries"] > 10 and before["renditions"] == 1

    made = cli(source, "backup", "create", tmp_path / "backup", *options)
    assert made.exit_code == 0, made.output
    assert table_counts(source) == before  # taking a backup changes nothing
    assert cli(source, "backup", "verify", tmp_path / "backup").exit_code == 0

    target = make_target()
    restored = cli(target, "backup", "restore", tmp_path / "backup")
    assert restored.exit_code == 0, restored.output
    assert "counts match the manifest" in restored.output

    after = table_counts(target)
    # Every table agrees; the chain has one more entry: the restore itself, on the record.
    assert after == {**before, "audit_entries": before["audit_entries"] + 1}
    with target.app_context():
        newest = db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).one()
        assert (newest.action, newest.actor_label) == ("backup.restored", "cli")
    assert stored_keys(target) >= {content.package.key, content.package.cover_key}
    if options:  # copied into a new bucket: exactly the source's objects were uploaded
        assert stored_keys(target) == stored_keys(source)

    verified = cli(target, "audit", "verify")
    assert verified.exit_code == 0, verified.output
    assert "chain intact; 1 checkpoints" in verified.output

    integrity = cli(target, "integrity", "verify")
    assert integrity.exit_code == 0, integrity.output
    run = json.loads(integrity.stdout.strip().splitlines()[-1])
    assert (run["status"], run["total"], run["failures"]) == ("finished", 2, 0)  # the video and its cover


def test_restored_files_are_byte_identical_to_the_source(app, fresh_target, tmp_path):
    content = make_content(app)
    assert cli(app, "backup", "create", tmp_path / "b").exit_code == 0
    target = fresh_target()
    assert cli(target, "backup", "restore", tmp_path / "b").exit_code == 0
    from advisor_studio import storage

    for key in (content.package.key, content.package.cover_key):
        with app.app_context():
            original = b"".join(storage.get_storage().iter_range(key))
        with target.app_context():
            assert b"".join(storage.get_storage().iter_range(key)) == original
    assert stored_keys(target) == stored_keys(app)


def test_restore_into_a_migrated_but_unused_database_replaces_its_empty_schema(app, fresh_target, tmp_path):
    make_content(app)
    before = table_counts(app)
    assert cli(app, "backup", "create", tmp_path / "b").exit_code == 0
    target = fresh_target()
    from flask_migrate import upgrade

    with target.app_context():
        upgrade()  # `flask db upgrade` on the new database: schema, version row and the empty chain's head
    assert table_counts(target)["audit_head"] == 1
    restored = cli(target, "backup", "restore", tmp_path / "b")
    assert restored.exit_code == 0, restored.output
    assert table_counts(target) == {**before, "audit_entries": before["audit_entries"] + 1}
    assert cli(target, "audit", "verify").exit_code == 0


def test_restore_refuses_when_a_listed_s3_object_is_missing_or_changed(app_factory, fresh_target, s3_server,
                                                                        tmp_path):
    import io

    from advisor_studio import storage
    from tests.integrity.conftest import tamper

    s3 = {"STORAGE_BACKEND": "s3", "S3_ENDPOINT_URL": s3_server, "S3_CREATE_BUCKET": True, "S3_REGION": "us-east-1",
          "S3_BUCKET": f"src-{uuid.uuid4().hex[:12]}"}
    source = app_factory(**s3)
    with source.app_context():
        store = storage.get_storage()
        kept, changed, lost = (store.put_stream(io.BytesIO(b"approved bytes %d" % n), storage.new_key("covers", ".jpg"))
                               .key for n in range(3))
    assert cli(source, "backup", "create", tmp_path / "b").exit_code == 0
    tamper(source, changed)
    with source.app_context():
        storage.get_storage().delete_unreferenced(lost)
    target = fresh_target(**s3)
    result = cli(target, "backup", "restore", tmp_path / "b")
    assert result.exit_code == 1
    assert f"storage object {changed} exists with SHA-256" in result.stderr
    assert f"storage object {lost} is missing and the backup holds no copy" in result.stderr
    assert kept not in result.stderr
    assert table_counts(target) == {}  # nothing restored
