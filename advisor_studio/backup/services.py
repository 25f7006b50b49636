"""Backups that restore: a consistent database snapshot plus every stored file, each with its SHA-256.

A backup directory holds::

    manifest.json      what is in the backup: snapshot file and hash, schema revision, rows per
                       table, every stored file (key, size, SHA-256; S3: ETag and version id)
    manifest.sha256    the SHA-256 of manifest.json, so a changed byte in the manifest is found too
    database.sqlite3   SQLite: the online-backup copy        (or)
    database.pgdump    PostgreSQL: pg_dump --format=custom
    files/<key>        local storage: a copy of every stored file (S3: only with --copy-files)

The database is snapshotted first and the files listed afterwards: stored files are write-once under
fresh keys, so every key the snapshot refers to is already stored when the listing runs. The backup is
built in a hidden sibling folder and renamed into place at the end, so a failed run leaves nothing
that looks like a backup. The seal detects corruption and careless edits, not a forger who rewrites
both files: keep backups where they cannot be rewritten (S3 Object Lock, write-once media).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import sqlalchemy as sa
from flask import current_app

from advisor_studio import audit, storage
from advisor_studio.backup import snapshot
from advisor_studio.dbtypes import utcnow
from advisor_studio.extensions import db

FORMAT = "advisor-studio-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SEAL = "manifest.sha256"
FILES = "files"
IN_FLIGHT_PREFIX = ".upload-"  # LocalStorage's temp files of writes in progress
SNAPSHOT_FILES = {"sqlite": snapshot.SQLITE_FILE, "postgresql": snapshot.PG_FILE}
# Rows a migrated but unused database already has: they are not data, restoring replaces them.
SCHEMA_ONLY_TABLES = {"alembic_version"}
PG_RESTORE_LOCK = 0x6F7073  # advisory lock: one restore into a PostgreSQL database at a time


class BackupError(Exception):
    """A backup cannot be made, trusted or restored; the message says which file or table and why."""


@dataclass
class VerifyReport:
    """What ``verify_backup`` found: ``problems`` is empty when every hash matches and the snapshot opens."""

    directory: Path
    problems: list[str] = field(default_factory=list)
    manifest: dict | None = None
    files_checked: int = 0
    bytes_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def _copy_hashing(src: BinaryIO, dst: BinaryIO | None = None) -> tuple[str, int]:
    """Stream ``src`` (into ``dst`` if given) in chunks; its SHA-256 and size."""
    digest = hashlib.sha256()
    size = 0
    while chunk := src.read(storage.CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if dst is not None:
            dst.write(chunk)
    return digest.hexdigest(), size


def _hash_file(path: Path, copy_to: Path | None = None) -> tuple[str, int]:
    with open(path, "rb") as src:
        if copy_to is None:
            return _copy_hashing(src)
        with open(copy_to, "wb") as dst:
            return _copy_hashing(src, dst)


def _valid_key(key: str) -> bool:
    try:
        storage._check_key(key)  # the one definition of a storage key
    except storage.StorageError:
        return False
    return True


# --- create ------------------------------------------------------------------------------------


def _check_new_directory(directory: Path) -> None:
    if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
        raise BackupError(f"{directory} exists and is not a directory: choose a new, empty directory")
    if directory.is_dir() and any(directory.iterdir()):
        raise BackupError(f"{directory} exists and is not empty: refusing to write a backup into it "
                          "(choose a new, empty directory)")


def _pg_counts(conn) -> dict[str, int]:
    tables = conn.execute(sa.text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                                  "ORDER BY tablename")).scalars().all()
    return {t: conn.execute(sa.select(sa.func.count()).select_from(sa.table(t))).scalar_one() for t in tables}


def _revision(counts: dict[str, int], read) -> str | None:
    if "alembic_version" not in counts:
        return None
    return ",".join(sorted(read("SELECT version_num FROM alembic_version"))) or None


def _snapshot_database(staging: Path) -> dict:
    url = db.engine.url
    dialect = db.engine.dialect.name
    if dialect not in SNAPSHOT_FILES:
        raise BackupError(f"backups support SQLite and PostgreSQL, not {dialect}")
    target = staging / SNAPSHOT_FILES[dialect]
    if dialect == "sqlite":
        source = snapshot.sqlite_path(url)
        if not source.is_file():
            raise BackupError(f"the database file {source} does not exist")
        snapshot.sqlite_backup(source, target)
        counts = snapshot.sqlite_counts(target)
        import sqlite3

        conn = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
        try:
            revision = _revision(counts, lambda q: [r[0] for r in conn.execute(q)])
        finally:
            conn.close()
    else:
        # One REPEATABLE READ transaction exports its snapshot to pg_dump and counts the rows itself,
        # so the dump and the counts in the manifest describe the very same state.
        with db.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                snapshot_id = conn.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
                counts = _pg_counts(conn)
                revision = _revision(counts, lambda q: conn.execute(sa.text(q)).scalars().all())
                snapshot.pg_dump(url, target, snapshot_id)
    sha256, size = _hash_file(target)
    return {"dialect": dialect, "file": target.name, "sha256": sha256, "size": size,
            "schema_revision": revision, "row_counts": counts}


def _snapshot_local(store: storage.LocalStorage, staging: Path) -> tuple[list[dict], list[str]]:
    files, skipped = [], []
    for path in sorted(store.root.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        key = path.relative_to(store.root).as_posix()
        if path.name.startswith(IN_FLIGHT_PREFIX):
            continue  # a write in progress, renamed to its key when done; never referenced as is
        if path.is_symlink() or not path.is_file() or not _valid_key(key):
            skipped.append(key)  # no storage key can name it, so no record refers to it
            continue
        copy = staging / FILES / key
        copy.parent.mkdir(parents=True, exist_ok=True)
        sha256, size = _hash_file(path, copy)
        files.append({"key": key, "size": size, "sha256": sha256, "copied": True})
    return files, skipped


def _snapshot_s3(store: storage.S3Storage, staging: Path, copy_files: bool) -> tuple[list[dict], list[str]]:
    files, skipped = [], []
    for page in store.client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if not _valid_key(key):
                skipped.append(key)
                continue
            head = store.client.head_object(Bucket=store.bucket, Key=key, ChecksumMode="ENABLED")
            entry = {"key": key, "size": head["ContentLength"], "etag": head.get("ETag"),
                     "version_id": head.get("VersionId"), "copied": copy_files}
            if copy_files:
                copy = staging / FILES / key
                copy.parent.mkdir(parents=True, exist_ok=True)
                body = store.client.get_object(Bucket=store.bucket, Key=key,
                                               **({"VersionId": head["VersionId"]} if head.get("VersionId")
                                                  else {}))["Body"]
                try:
                    with open(copy, "wb") as dst:
                        entry["sha256"], entry["size"] = _copy_hashing(body, dst)
                finally:
                    body.close()
            else:
                # S3's own whole-object SHA-256 when it keeps one; otherwise the bytes are read once.
                entry["sha256"] = store.stored_sha256(key) or store.sha256_of(key)
            files.append(entry)
    return files, skipped


def create_backup(directory: str | os.PathLike, *, copy_files: bool = False) -> dict:
    """Write a backup of the database and every stored file into ``directory`` (new or empty); its manifest.

    Local storage is always copied; S3 objects are listed with their checksums, and copied too with
    ``copy_files``.
    """
    directory = Path(directory).absolute()
    _check_new_directory(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.partial-", dir=directory.parent))  # 0700
    try:
        database = _snapshot_database(staging)
        store = storage.get_storage()
        if isinstance(store, storage.LocalStorage):
            files, skipped = _snapshot_local(store, staging)
            files_info = {"backend": "local", "files_copied": True}
        elif isinstance(store, storage.S3Storage):
            files, skipped = _snapshot_s3(store, staging, copy_files)
            files_info = {"backend": "s3", "bucket": store.bucket, "files_copied": copy_files}
        else:
            raise BackupError(f"cannot back up the {store.name} storage backend")
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "created_at": utcnow().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "database": database,
            "storage": {**files_info, "files": files, "skipped": skipped,
                        "total_bytes": sum(f["size"] for f in files)},
        }
        data = json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False).encode()
        (staging / MANIFEST).write_bytes(data)
        (staging / SEAL).write_text(f"{hashlib.sha256(data).hexdigest()}  {MANIFEST}\n")
        try:
            os.rename(staging, directory)  # atomic; replaces only a missing or empty directory
        except OSError as exc:
            raise BackupError(f"{directory} was filled by someone else while the backup ran: "
                              "refusing to mix two backups") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    manifest["manifest_sha256"] = hashlib.sha256(data).hexdigest()
    return manifest


# --- verify ------------------------------------------------------------------------------------


def _read_manifest(directory: Path) -> dict:
    """The manifest, once its seal matches and its shape is right; BackupError otherwise."""
    manifest_path, seal_path = directory / MANIFEST, directory / SEAL
    for path in (manifest_path, seal_path):
        if not path.is_file():
            raise BackupError(f"{path.name} is missing: {directory} is not a backup (or is incomplete)")
    seal = seal_path.read_text(errors="replace").split()
    data = manifest_path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if len(seal) != 2 or seal[1] != MANIFEST or len(seal[0]) != 64:
        raise BackupError(f"{SEAL} is damaged: expected '<sha256>  {MANIFEST}'")
    if actual != seal[0].lower():
        raise BackupError(f"{MANIFEST}: its SHA-256 is {actual}, {SEAL} says {seal[0]} (the manifest was "
                          "changed or damaged)")
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise BackupError(f"{MANIFEST} is not JSON: {exc}") from exc
    _check_shape(manifest)
    return manifest


def _check_shape(manifest) -> None:
    def bad(why: str):
        raise BackupError(f"{MANIFEST} is not a backup manifest this version can read: {why}")

    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        bad(f"format is not {FORMAT!r}")
    if manifest.get("version") != FORMAT_VERSION:
        bad(f"version {manifest.get('version')!r} (this code reads version {FORMAT_VERSION})")
    database = manifest.get("database")
    if not isinstance(database, dict) or database.get("dialect") not in SNAPSHOT_FILES:
        bad("database.dialect must be sqlite or postgresql")
    if database.get("file") != SNAPSHOT_FILES[database["dialect"]]:
        bad(f"database.file must be {SNAPSHOT_FILES[database['dialect']]}")
    if not _is_sha256(database.get("sha256")) or not _is_size(database.get("size")):
        bad("database.sha256 and database.size are required")
    counts = database.get("row_counts")
    if not isinstance(counts, dict) or not all(isinstance(k, str) and _is_size(v) for k, v in counts.items()):
        bad("database.row_counts must map table names to row counts")
    files_info = manifest.get("storage")
    if not isinstance(files_info, dict) or not isinstance(files_info.get("files"), list):
        bad("storage.files must be a list")
    seen = set()
    for entry in files_info["files"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str) or not _valid_key(entry["key"]):
            bad(f"invalid storage key {str(entry.get('key') if isinstance(entry, dict) else entry)[:200]!r}")
        if entry["key"] in seen:
            bad(f"storage key {entry['key']!r} is listed twice")
        seen.add(entry["key"])
        if not _is_sha256(entry.get("sha256")) or not _is_size(entry.get("size")):
            bad(f"file {entry['key']!r} has no valid sha256 and size")
        if not isinstance(entry.get("copied"), bool):
            bad(f"file {entry['key']!r} does not say whether it was copied")


def _is_sha256(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _is_size(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_snapshot(directory: Path, database: dict, report: VerifyReport) -> None:
    path = directory / database["file"]
    if not path.is_file():
        report.problems.append(f"{database['file']} is missing")
        return
    with tempfile.TemporaryDirectory(prefix="backup-verify-") as tmp:
        # SQLite is checked on a copy: opening the backup itself could write to it (journal recovery).
        copy = Path(tmp) / path.name if database["dialect"] == "sqlite" else None
        sha256, size = _hash_file(path, copy)
        report.bytes_checked += size
        if sha256 != database["sha256"] or size != database["size"]:
            report.problems.append(f"{database['file']}: SHA-256 {sha256} ({size} bytes), the manifest says "
                                   f"{database['sha256']} ({database['size']} bytes): the snapshot was changed "
                                   "or truncated")
            return
        if copy is not None:
            problem = snapshot.sqlite_check(copy)
            if problem is None:
                counts = snapshot.sqlite_counts(copy)
                if counts != database["row_counts"]:
                    problem = "its rows per table differ from the manifest's"
        else:
            problem = snapshot.pg_check(path)
    if problem:
        report.problems.append(f"{database['file']} does not open: {problem}")


def _check_files(directory: Path, manifest: dict, report: VerifyReport) -> None:
    root = directory / FILES
    for entry in manifest["storage"]["files"]:
        if not entry["copied"]:
            continue
        path = root / entry["key"]
        name = f"{FILES}/{entry['key']}"
        if path.is_symlink() or not path.is_file():
            report.problems.append(f"{name} is missing")
            continue
        sha256, size = _hash_file(path)
        report.files_checked += 1
        report.bytes_checked += size
        if sha256 != entry["sha256"] or size != entry["size"]:
            report.problems.append(f"{name}: SHA-256 {sha256} ({size} bytes), the manifest says {entry['sha256']} "
                                   f"({entry['size']} bytes)")


def _unexpected(directory: Path, manifest: dict) -> list[str]:
    expected = {MANIFEST, SEAL, manifest["database"]["file"]}
    expected |= {f"{FILES}/{e['key']}" for e in manifest["storage"]["files"] if e["copied"]}
    found = []
    for path in sorted(directory.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        name = path.relative_to(directory).as_posix()
        if name not in expected:
            found.append(f"{name} is not in the manifest (something was added to the backup)")
    return found


def verify_backup(directory: str | os.PathLike) -> VerifyReport:
    """Check a backup without changing it: the manifest matches its seal, the snapshot matches its hash and
    opens, and every copied file matches its SHA-256. Problems name the file."""
    directory = Path(directory)
    report = VerifyReport(directory)
    if not directory.is_dir():
        report.problems.append(f"{directory} is not a directory")
        return report
    try:
        manifest = _read_manifest(directory)
    except BackupError as err:
        report.problems.append(str(err))
        return report
    report.manifest = manifest
    _check_snapshot(directory, manifest["database"], report)
    _check_files(directory, manifest, report)
    report.problems.extend(_unexpected(directory, manifest))
    return report


# --- restore -----------------------------------------------------------------------------------


def _known_revisions() -> tuple[set[str], set[str]]:
    """(every revision, the heads) of this code's migrations."""
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", current_app.extensions["migrate"].directory)
    script = ScriptDirectory.from_config(cfg)
    return {rev.revision for rev in script.walk_revisions()}, set(script.get_heads())


def live_counts() -> dict[str, int]:
    """Rows per table of the database named by DATABASE_URL (every table of its default schema)."""
    with db.engine.connect() as conn:
        tables = sa.inspect(conn).get_table_names()
        return {t: conn.execute(sa.select(sa.func.count()).select_from(sa.table(t))).scalar_one()
                for t in sorted(tables)}


def _target_state() -> tuple[dict[str, int], str | None]:
    """(tables holding data, schema revision) of the target database; data excludes the rows every
    migrated database has (the Alembic version and the empty audit chain's head)."""
    counts = live_counts()
    with db.engine.connect() as conn:
        revision = None
        if "alembic_version" in counts:
            revision = ",".join(sorted(conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                                       .scalars().all())) or None
        if counts.get("audit_head"):
            genesis = conn.execute(sa.text("SELECT count(*) FROM audit_head WHERE seq = 0")).scalar_one()
            counts["audit_head"] -= genesis
    return {t: n for t, n in counts.items() if n and t not in SCHEMA_ONLY_TABLES}, revision


def _plan_files(manifest: dict, directory: Path) -> tuple[list[dict], list[str]]:
    """(files to upload from the backup, problems) for the configured storage, reading nothing but hashes."""
    store = storage.get_storage()
    entries = manifest["storage"]["files"]
    if isinstance(store, storage.LocalStorage):
        present = [p for p in store.root.rglob("*") if not p.is_dir()]
        if present:
            sample = ", ".join(p.relative_to(store.root).as_posix() for p in present[:3])
            return [], [f"MEDIA_ROOT {store.root} is not empty ({len(present)} files, e.g. {sample}): restore "
                        "into an empty media root"]
    uploads, problems = [], []
    for entry in entries:
        if not isinstance(store, storage.LocalStorage) and store.exists(entry["key"]):
            actual = store.stored_sha256(entry["key"]) or store.sha256_of(entry["key"])
            if actual != entry["sha256"]:
                problems.append(f"storage object {entry['key']} exists with SHA-256 {actual}, the backup has "
                                f"{entry['sha256']}: refusing to overwrite it")
            continue  # already there, hash-true (S3 versioning kept it)
        if not entry["copied"]:
            problems.append(f"storage object {entry['key']} is missing and the backup holds no copy of it "
                            "(restore it from the bucket's versions first)")
            continue
        uploads.append(entry)
    return uploads, problems


def _upload(directory: Path, uploads: list[dict]) -> list[str]:
    store = storage.get_storage()
    done = []
    try:
        for entry in uploads:
            with open(directory / FILES / entry["key"], "rb") as fh:
                stored = store.put_stream(fh, entry["key"])
            done.append(entry["key"])
            if stored.sha256 != entry["sha256"]:
                raise BackupError(f"{FILES}/{entry['key']} changed while it was restored")
    except BaseException:
        _remove(done)
        raise
    return done


def _remove(keys: list[str]) -> None:
    store = storage.get_storage()
    for key in keys:
        store.delete_unreferenced(key)


def restore_backup(directory: str | os.PathLike, *, actor: str = "cli") -> dict:
    """Restore a verified backup into the empty database named by DATABASE_URL and the configured storage.

    Every check runs before anything is written; a refused restore changes nothing. Returns a summary
    with the restored rows per table (as in the manifest) and the number of files uploaded.
    """
    directory = Path(directory)
    report = verify_backup(directory)
    if not report.ok:
        raise BackupError("the backup does not verify, nothing was restored:\n  " + "\n  ".join(report.problems))
    manifest = report.manifest
    database = manifest["database"]
    dialect = db.engine.dialect.name
    if dialect != database["dialect"]:
        raise BackupError(f"the backup holds a {database['dialect']} snapshot but DATABASE_URL names a {dialect} "
                          "database")
    known, heads = _known_revisions()
    revision = database.get("schema_revision")
    if not revision or not set(revision.split(",")) <= known:
        raise BackupError(f"the backup's schema revision {revision!r} is unknown to this release's migrations "
                          "(restore with the release that made it)")

    lock = None
    if dialect == "postgresql":
        # A transaction-level lock, held by a transaction left open until the end: released whatever
        # happens (a session-level one would outlive this restore on a pooled connection).
        lock = db.engine.connect()
        if not lock.execute(sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": PG_RESTORE_LOCK}).scalar_one():
            lock.rollback()
            lock.close()
            raise BackupError("another restore into this database is running")
    try:
        data, target_revision = _target_state()
        if data:
            listed = ", ".join(f"{t} ({n} rows)" for t, n in sorted(data.items())[:8])
            raise BackupError(f"the target database is not empty: {listed}{' ...' if len(data) > 8 else ''}; "
                              "restore only into an empty database")
        has_schema = target_revision is not None or bool(live_counts())
        if has_schema and target_revision != revision:
            raise BackupError(f"the target database has a schema at revision {target_revision!r}, the backup is at "
                              f"{revision!r}: restore into an empty database (drop and re-create it)")
        uploads, problems = _plan_files(manifest, directory)
        if problems:
            raise BackupError("the storage is not ready, nothing was restored:\n  " + "\n  ".join(problems))

        uploaded = _upload(directory, uploads)
        try:
            db.session.remove()
            db.engine.dispose()  # no pooled connection may see the database while it is replaced
            if dialect == "sqlite":
                snapshot.sqlite_restore(directory / database["file"], snapshot.sqlite_path(db.engine.url))
            else:
                snapshot.pg_restore(directory / database["file"], db.engine.url, clean=has_schema)
        except BaseException:
            _remove(uploaded)
            raise
    finally:
        if lock is not None:
            lock.rollback()
            lock.close()

    restored = live_counts()
    if restored != database["row_counts"]:
        differ = sorted(t for t in set(restored) | set(database["row_counts"])
                        if restored.get(t) != database["row_counts"].get(t))
        raise BackupError(f"restored, but the rows of {', '.join(differ)} differ from the manifest")
    # The restore itself goes on the record, after the count check (so the counts are the backup's).
    audit.record("backup.restored", "backup", hashlib.sha256((directory / MANIFEST).read_bytes()).hexdigest(),
                 actor=actor, details={"created_at": manifest["created_at"], "schema_revision": revision,
                                       "files": len(manifest["storage"]["files"]), "uploaded": len(uploaded)})
    db.session.commit()
    return {"row_counts": restored, "uploaded": len(uploaded), "files": len(manifest["storage"]["files"]),
            "schema_revision": revision, "at_head": set(revision.split(",")) == heads}
