"""Bad input for backups (issue 12): a directory that is not empty, a truncated or changed snapshot, a
changed file or manifest, a forged manifest, a target with rows: a clear error naming what is wrong, and
nothing changed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from advisor_studio.backup import snapshot
from advisor_studio.backup.services import FILES, MANIFEST, SEAL, verify_backup
from tests.backup.conftest import cli, flip_byte, make_content, reseal, table_counts


@pytest.fixture(autouse=True)
def local_storage(monkeypatch):
    """Local media even in the S3 pass of CI: these tests damage copied media files (the restore drill covers S3)."""
    monkeypatch.delenv("S3_ENDPOINT_URL", raising=False)


def tree(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` with its bytes."""
    if not directory.exists():
        return {}
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture
def backup(app, tmp_path) -> Path:
    """A good backup of some content, on the app's database and local media."""
    make_content(app)
    directory = tmp_path / "backup"
    made = cli(app, "backup", "create", directory)
    assert made.exit_code == 0, made.output
    return directory


def snapshot_file(directory: Path) -> Path:
    return directory / json.loads((directory / MANIFEST).read_bytes())["database"]["file"]


def a_copied_file(directory: Path) -> Path:
    entry = next(f for f in json.loads((directory / MANIFEST).read_bytes())["storage"]["files"] if f["copied"])
    return directory / FILES / entry["key"]


def assert_untouched_target(target, counts_before, media_before):
    assert table_counts(target) == counts_before
    assert tree(Path(target.config["MEDIA_ROOT"])) == media_before


# --- create ----------------------------------------------------------------------------------------


def test_create_refuses_a_directory_that_exists_and_is_not_empty(app, tmp_path):
    directory = tmp_path / "taken"
    directory.mkdir()
    (directory / "yesterday.txt").write_text("an older backup")
    result = cli(app, "backup", "create", directory)
    assert result.exit_code == 1
    assert "exists and is not empty" in result.stderr and str(directory) in result.stderr
    assert tree(directory) == {"yesterday.txt": b"an older backup"}
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no half-made backup left


def test_create_refuses_a_file_in_place_of_the_directory(app, tmp_path):
    target = tmp_path / "a-file"
    target.write_text("x")
    result = cli(app, "backup", "create", target)
    assert result.exit_code == 1 and "is not a directory" in result.stderr
    assert target.read_text() == "x"


def test_create_fills_an_existing_empty_directory(app, tmp_path):
    directory = tmp_path / "empty"
    directory.mkdir()
    assert cli(app, "backup", "create", directory).exit_code == 0
    assert {MANIFEST, SEAL} <= set(os.listdir(directory))
    assert verify_backup(directory).ok


def test_a_failed_create_leaves_nothing_behind(app, tmp_path, monkeypatch):
    from advisor_studio.backup import services

    def broken(*args, **kwargs):
        raise snapshot.SnapshotError("disk full")

    monkeypatch.setattr(services, "_snapshot_local", broken)
    make_content(app)
    result = cli(app, "backup", "create", tmp_path / "b")
    assert result.exit_code == 1 and "disk full" in result.stderr
    assert sorted(os.listdir(tmp_path)) == sorted(n for n in os.listdir(tmp_path) if not n.startswith(".")) and \
        not (tmp_path / "b").exists()


# --- verify ----------------------------------------------------------------------------------------


def test_verify_of_a_good_backup_exits_0(app, backup):
    result = cli(app, "backup", "verify", backup)
    assert result.exit_code == 0, result.output
    assert "opens and matches" in result.output


def test_a_truncated_snapshot_fails_verify_naming_it(app, backup):
    path = snapshot_file(backup)
    os.truncate(path, path.stat().st_size - 4096)
    result = cli(app, "backup", "verify", backup)
    assert result.exit_code == 1
    assert f"FAILED: {path.name}: SHA-256" in result.stderr and "changed or truncated" in result.stderr


def test_a_truncated_snapshot_with_a_forged_manifest_still_does_not_open(app, backup):
    path = snapshot_file(backup)
    os.truncate(path, path.stat().st_size * 2 // 3)
    reseal(backup, snapshot=True)  # every hash agrees now: only opening the snapshot can tell
    result = cli(app, "backup", "verify", backup)
    assert result.exit_code == 1
    assert f"{path.name} does not open" in result.stderr


@pytest.mark.parametrize("where", ["snapshot", "media file", "manifest", "seal"])
def test_one_flipped_byte_anywhere_fails_verify_naming_the_file(app, backup, where):
    path = {"snapshot": snapshot_file(backup), "media file": a_copied_file(backup), "manifest": backup / MANIFEST,
            "seal": backup / SEAL}[where]
    flip_byte(path, 10 if where == "seal" else None)
    result = cli(app, "backup", "verify", backup)
    assert result.exit_code == 1
    name = path.relative_to(backup).as_posix()
    assert name in result.stderr if where != "seal" else MANIFEST in result.stderr
    assert "FAILED" in result.stderr


def test_a_missing_or_added_file_fails_verify(app, backup):
    extra = backup / FILES / "renditions" / "planted.mp4"
    extra.write_bytes(b"not from the backup")
    result = cli(app, "backup", "verify", backup)
    assert result.exit_code == 1 and "files/renditions/planted.mp4 is not in the manifest" in result.stderr
    extra.unlink()
    gone = a_copied_file(backup)
    gone.unlink()
    result = cli(app, "backup", "verify", backup)
    assert result.exit_code == 1 and f"{gone.relative_to(backup).as_posix()} is missing" in result.stderr


@pytest.mark.parametrize("forged", [
    {"key": "../../etc/passwd"},
    {"key": "/etc/passwd"},
    {"sha256": "not-a-hash"},
    {"size": -1},
])
def test_a_forged_manifest_entry_is_refused_before_any_file_is_touched(app, backup, forged):
    manifest = json.loads((backup / MANIFEST).read_bytes())
    manifest["storage"]["files"][0].update(forged)
    (backup / MANIFEST).write_text(json.dumps(manifest))
    reseal(backup)
    result = cli(app, "backup", "verify", backup)
    assert result.exit_code == 1 and "is not a backup manifest this version can read" in result.stderr


def test_verify_of_something_that_is_not_a_backup(app, tmp_path):
    (tmp_path / "junk").mkdir()
    result = cli(app, "backup", "verify", tmp_path / "junk")
    assert result.exit_code == 1 and "manifest.json is missing" in result.stderr
    result = cli(app, "backup", "verify", tmp_path / "nowhere")
    assert result.exit_code == 1 and "is not a directory" in result.stderr


def test_verify_changes_nothing_in_the_backup(app, backup):
    before = tree(backup)
    assert cli(app, "backup", "verify", backup).exit_code == 0
    assert tree(backup) == before


# --- restore ---------------------------------------------------------------------------------------


def test_restore_into_a_database_with_rows_is_refused_and_changes_nothing(app, backup):
    # The source itself is the most likely wrong target: it has rows.
    before, media = table_counts(app), tree(Path(app.config["MEDIA_ROOT"]))
    result = cli(app, "backup", "restore", backup)
    assert result.exit_code == 1
    assert "the target database is not empty" in result.stderr and "audit_entries" in result.stderr
    assert_untouched_target(app, before, media)


def test_restore_into_an_unused_database_with_one_row_is_refused(app, backup, fresh_target):
    from flask_migrate import upgrade

    from tests.factories import make_user

    target = fresh_target()
    with target.app_context():
        upgrade()
        make_user("admin")
        from advisor_studio.extensions import db

        db.session.commit()
    before, media = table_counts(target), tree(Path(target.config["MEDIA_ROOT"]))
    result = cli(target, "backup", "restore", backup)
    assert result.exit_code == 1 and "users (1 rows)" in result.stderr
    assert_untouched_target(target, before, media)


def test_restore_into_a_media_root_with_files_is_refused_and_changes_nothing(backup, fresh_target):
    target = fresh_target()
    media = Path(target.config["MEDIA_ROOT"])
    (media / "covers").mkdir(parents=True)
    (media / "covers" / "old.jpg").write_bytes(b"kept")
    before = table_counts(target)
    result = cli(target, "backup", "restore", backup)
    assert result.exit_code == 1 and "MEDIA_ROOT" in result.stderr and "is not empty" in result.stderr
    assert_untouched_target(target, before, {"covers/old.jpg": b"kept"})


@pytest.mark.parametrize("damage", ["truncated snapshot", "flipped media byte", "flipped manifest byte"])
def test_restore_of_a_damaged_backup_is_refused_and_changes_nothing(backup, fresh_target, damage):
    if damage == "truncated snapshot":
        path = snapshot_file(backup)
        os.truncate(path, path.stat().st_size // 2)
    elif damage == "flipped media byte":
        flip_byte(a_copied_file(backup))
    else:
        flip_byte(backup / MANIFEST)
    target = fresh_target()
    before, media = table_counts(target), tree(Path(target.config["MEDIA_ROOT"]))
    result = cli(target, "backup", "restore", backup)
    assert result.exit_code == 1
    assert "the backup does not verify, nothing was restored" in result.stderr
    assert_untouched_target(target, before, media)
    assert before == {}  # a new database: still no table at all


def test_a_failed_database_restore_removes_the_files_it_had_uploaded(backup, fresh_target, monkeypatch):
    from advisor_studio.backup import services

    def broken(*args, **kwargs):
        raise snapshot.SnapshotError("pg_restore failed: out of disk")

    monkeypatch.setattr(services.snapshot, "sqlite_restore", broken)
    monkeypatch.setattr(services.snapshot, "pg_restore", broken)
    target = fresh_target()
    result = cli(target, "backup", "restore", backup)
    assert result.exit_code == 1 and "out of disk" in result.stderr
    assert tree(Path(target.config["MEDIA_ROOT"])) == {}
    assert table_counts(target) == {}


def test_restore_refuses_a_snapshot_of_the_other_database_kind(backup, fresh_target):
    manifest = json.loads((backup / MANIFEST).read_bytes())
    other = "postgresql" if manifest["database"]["dialect"] == "sqlite" else "sqlite"
    src = snapshot_file(backup)
    src.rename(backup / snapshot.SQLITE_FILE if other == "sqlite" else backup / snapshot.PG_FILE)
    manifest["database"].update(dialect=other, file=snapshot.SQLITE_FILE if other == "sqlite" else snapshot.PG_FILE)
    (backup / MANIFEST).write_text(json.dumps(manifest))
    reseal(backup)
    target = fresh_target()
    result = cli(target, "backup", "restore", backup)
    assert result.exit_code == 1
    assert table_counts(target) == {}


# --- credentials ------------------------------------------------------------------------------------


def test_pg_tools_get_no_password_on_the_command_line_or_in_the_environment(tmp_path, monkeypatch):
    import sqlalchemy as sa

    seen = []

    def fake_run(args, env, **kwargs):
        seen.append((args, env, Path(env["PGPASSFILE"]).read_text(), oct(Path(env["PGPASSFILE"]).stat().st_mode)))

        class Done:
            returncode, stdout, stderr = 0, "", ""
        return Done()

    monkeypatch.setattr(snapshot.subprocess, "run", fake_run)
    monkeypatch.setenv("PGPASSWORD", "inherited-secret")
    url = sa.make_url("postgresql+psycopg://advisor:s3cr%3At%5Cx@db.internal:5433/advisor_studio?sslmode=require")
    snapshot.pg_dump(url, tmp_path / "d.pgdump", "00000003-0000001B-1")
    snapshot.pg_restore(tmp_path / "d.pgdump", url, clean=False)
    assert len(seen) == 2
    for args, env, passfile, mode in seen:
        assert not any("s3cr" in a for a in args) and "PGPASSWORD" not in env
        assert "--dbname=postgresql://advisor@db.internal:5433/advisor_studio?sslmode=require" in args
        assert passfile == "*:*:*:*:s3cr\\:t\\\\x\n" and mode.endswith("600")
        assert not Path(env["PGPASSFILE"]).exists()  # removed once the tool ended


# --- two at once -------------------------------------------------------------------------------------


def test_two_backups_into_one_directory_the_second_is_refused_and_leaves_nothing(app, tmp_path, monkeypatch):
    from advisor_studio.backup import services

    directory = tmp_path / "b"
    assert cli(app, "backup", "create", directory).exit_code == 0
    first = tree(directory)
    # The second started while the directory was still empty: its check passed, the final rename must not.
    monkeypatch.setattr(services, "_check_new_directory", lambda d: None)
    result = cli(app, "backup", "create", directory)
    assert result.exit_code == 1 and "was filled by someone else" in result.stderr
    assert tree(directory) == first
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_second_restore_into_the_same_postgresql_database_waits_its_turn(backup, fresh_target):
    import sqlalchemy as sa

    from advisor_studio.backup.services import PG_RESTORE_LOCK
    from advisor_studio.extensions import db

    target = fresh_target()
    if target.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("PostgreSQL only: the restore's advisory lock")
    with target.app_context():
        engine = sa.create_engine(db.engine.url)
    with engine.connect() as other:  # a restore already running holds the lock
        assert other.execute(sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": PG_RESTORE_LOCK}).scalar_one()
        result = cli(target, "backup", "restore", backup)
        assert result.exit_code == 1 and "another restore into this database is running" in result.stderr
        assert table_counts(target) == {}
    assert cli(target, "backup", "restore", backup).exit_code == 0
    with engine.connect() as conn:  # the restore let go of its lock (its process may live on: a worker, a test)
        assert conn.execute(sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :k"),
                            {"k": PG_RESTORE_LOCK}).scalar_one() == 0
    engine.dispose()
