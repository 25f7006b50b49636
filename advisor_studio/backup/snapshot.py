"""Database snapshots: SQLite's online backup API and PostgreSQL's pg_dump/pg_restore (custom format).

No Flask here. PostgreSQL credentials never reach a command line or the environment of a child
process: the password goes into a private, temporary password file (PGPASSFILE) that is removed as
soon as the command ends, and the connection string given to the tools carries no password.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"
PG_TIMEOUT_SECONDS = 6 * 3600  # a dump or restore that takes longer is stuck, not slow


class SnapshotError(Exception):
    """A snapshot could not be taken, read or restored."""


# --- SQLite ------------------------------------------------------------------------------------


def sqlite_path(url: sa.engine.URL) -> Path:
    """The file behind a SQLite URL (an in-memory database has none and cannot be backed up)."""
    if not url.database or url.database == ":memory:":
        raise SnapshotError("an in-memory SQLite database cannot be backed up or restored")
    return Path(url.database)


def sqlite_backup(source: Path, target: Path) -> None:
    """Copy the live database ``source`` into a new file ``target`` with SQLite's online backup API.

    The copy is one consistent state even while the application writes (the API restarts when a
    writer changes a page it already copied). The copy is switched to a rollback journal, so the
    snapshot is one self-contained file that can be opened read-only without creating -wal files.
    """
    # Not read-only: reading a WAL database may need to create its -shm file; the backup only reads.
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst, pages=1024)
            dst.execute("PRAGMA journal_mode=DELETE")
            dst.commit()
        finally:
            dst.close()
    finally:
        src.close()


def sqlite_tables(conn: sqlite3.Connection) -> list[str]:
    """The application's tables in a SQLite database (SQLite's own are left out)."""
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                        "ORDER BY name").fetchall()
    return [r[0] for r in rows]


def sqlite_counts(path: Path) -> dict[str, int]:
    """Rows per table of the SQLite file ``path``, opened read-only."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        # Names come from the file, which may be a forged backup: quoted as identifiers, quotes doubled.
        quoted = {t: '"' + t.replace('"', '""') + '"' for t in sqlite_tables(conn)}
        return {t: conn.execute(f"SELECT count(*) FROM {q}").fetchone()[0] for t, q in quoted.items()}  # noqa: S608
    finally:
        conn.close()


def sqlite_check(path: Path) -> str | None:
    """None when ``path`` is a sound SQLite database (PRAGMA integrity_check); the problem otherwise."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    result = "; ".join(str(r[0]) for r in rows[:5])
    return None if result == "ok" else result


def sqlite_restore(snapshot: Path, target: Path) -> None:
    """Write the snapshot's pages into the database file ``target`` (created if missing).

    Through the backup API rather than a file copy, so SQLite's own locks apply and a -wal file
    next to the target cannot be left describing a different database.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{snapshot}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(target, timeout=30)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


# --- PostgreSQL --------------------------------------------------------------------------------


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SnapshotError(f"{name} is not installed (Debian: apt-get install postgresql-client)")
    return path


def _conninfo(url: sa.engine.URL) -> str:
    """A libpq URI for ``url`` without its password (safe to show in a process list)."""
    # Built afresh: URL.set(password=None) would keep the password (None there means "unchanged").
    bare = sa.engine.URL.create("postgresql", username=url.username, host=url.host, port=url.port,
                                database=url.database, query=url.query)
    return bare.render_as_string(hide_password=False)


def _escape_passfile(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


@contextlib.contextmanager
def _pg_env(url: sa.engine.URL) -> Iterator[dict]:
    """Environment for a libpq tool: the password in a 0600 temp PGPASSFILE, removed afterwards."""
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    if url.password is None:
        yield env
        return
    fd, path = tempfile.mkstemp(prefix="pgpass-")  # mkstemp creates the file 0600
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(f"*:*:*:*:{_escape_passfile(str(url.password))}\n")
        env["PGPASSFILE"] = path
        yield env
    finally:
        Path(path).unlink(missing_ok=True)


def _run(args: list[str], env: dict, what: str) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=PG_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired as exc:
        raise SnapshotError(f"{what} did not finish within {PG_TIMEOUT_SECONDS} s") from exc
    if done.returncode != 0:
        message = (done.stderr or done.stdout or "").strip().splitlines()
        raise SnapshotError(f"{what} failed: " + (" / ".join(message[-5:]) or f"exit {done.returncode}"))
    return done


def pg_dump(url: sa.engine.URL, target: Path, snapshot_id: str | None = None) -> None:
    """``pg_dump --format=custom`` of the database ``url`` into ``target``, at ``snapshot_id`` if given
    (an exported snapshot, so the dump sees exactly what the exporting transaction sees)."""
    args = [_tool("pg_dump"), "--format=custom", "--no-password", f"--file={target}"]
    if snapshot_id:
        args.append(f"--snapshot={snapshot_id}")
    args.append(f"--dbname={_conninfo(url)}")
    with _pg_env(url) as env:
        _run(args, env, "pg_dump")


def pg_check(dump: Path) -> str | None:
    """None when pg_restore can read every part of ``dump`` (table of contents and all data); the problem
    otherwise. ``--list`` alone reads only the table of contents, so the whole dump is also restored to a
    script that is thrown away."""
    try:
        _run([_tool("pg_restore"), "--list", str(dump)], dict(os.environ), "pg_restore --list")
        _run([_tool("pg_restore"), "--file=/dev/null", str(dump)], dict(os.environ), "pg_restore")
    except SnapshotError as exc:
        return str(exc)
    return None


def pg_restore(dump: Path, url: sa.engine.URL, *, clean: bool) -> None:
    """Restore ``dump`` into the database ``url`` in one transaction: all of it or nothing.

    ``clean`` first drops the dump's objects where they exist (an empty schema already migrated).
    """
    args = [_tool("pg_restore"), "--no-password", "--single-transaction", "--exit-on-error", "--no-owner",
            "--no-privileges"]
    if clean:
        args += ["--clean", "--if-exists"]
    args += [f"--dbname={_conninfo(url)}", str(dump)]
    with _pg_env(url) as env:
        _run(args, env, "pg_restore")
