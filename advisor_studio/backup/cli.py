"""`flask backup create|verify|restore DIR` and `flask retention report` (contract.md, issue 12)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from advisor_studio.backup import retention, services
from advisor_studio.backup.snapshot import SnapshotError
from advisor_studio.extensions import db

backup_cli = AppGroup("backup", help="Back up, verify and restore the database and stored files.")
retention_cli = AppGroup("retention", help="Records past RETENTION_YEARS (never deletes).")

DIRECTORY = click.argument("directory", type=click.Path(path_type=Path))


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(1)


@backup_cli.command("create")
@DIRECTORY
@click.option("--copy-files", is_flag=True,
              help="S3 only: copy every object into DIRECTORY too (local storage is always copied).")
def backup_create(directory: Path, copy_files: bool):
    """Snapshot the database and every stored file into DIRECTORY (new or empty)."""
    try:
        manifest = services.create_backup(directory, copy_files=copy_files)
    except (services.BackupError, SnapshotError) as err:
        _fail(str(err))
    database, files = manifest["database"], manifest["storage"]
    click.echo(f"backup {directory}: {database['dialect']} snapshot {database['file']} sha256 {database['sha256']}, "
               f"schema {database['schema_revision']}, {sum(database['row_counts'].values())} rows in "
               f"{len(database['row_counts'])} tables")
    click.echo(f"{len(files['files'])} stored files ({files['total_bytes']} bytes, "
               f"{'copied' if files['files_copied'] else 'listed with checksums, not copied'}); "
               f"manifest sha256 {manifest['manifest_sha256']}")
    for key in files["skipped"]:
        click.echo(f"warning: skipped {key!r}: not a storage key, so no record refers to it", err=True)


@backup_cli.command("verify")
@DIRECTORY
def backup_verify(directory: Path):
    """Check that the snapshot opens and every hash matches (the snapshot's and the manifest's own); exit 1
    naming each file that does not."""
    report = services.verify_backup(directory)
    if not report.ok:
        for problem in report.problems:
            click.echo(f"FAILED: {problem}", err=True)
        raise SystemExit(1)
    listed = sum(1 for f in report.manifest["storage"]["files"] if not f["copied"])
    note = f"; {listed} S3 objects are listed, not copied (restore checks them in the bucket)" if listed else ""
    click.echo(f"ok: {report.manifest['database']['file']} opens and matches; {report.files_checked} copied files "
               f"match their SHA-256 ({report.bytes_checked} bytes read){note}")


@backup_cli.command("restore")
@DIRECTORY
def backup_restore(directory: Path):
    """Verify DIRECTORY, then restore it into the empty database of DATABASE_URL and the configured storage;
    refuse (exit 1, nothing changed) a target that holds data."""
    try:
        summary = services.restore_backup(directory)
    except (services.BackupError, SnapshotError) as err:
        db.session.rollback()
        _fail(str(err))
    click.echo(f"restored {sum(summary['row_counts'].values())} rows in {len(summary['row_counts'])} tables "
               f"(counts match the manifest), {summary['files']} stored files ({summary['uploaded']} uploaded)")
    if not summary["at_head"]:
        click.echo(f"note: the schema is at {summary['schema_revision']}; run `flask db upgrade` before starting "
                   "the application")


@retention_cli.command("report")
@click.option("--years", type=click.IntRange(min=1, max=200), default=None,
              help="Override RETENTION_YEARS for this report.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of a table.")
def retention_report(years: int | None, as_json: bool):
    """List, per table, the records older than RETENTION_YEARS and the oldest date; deletes nothing."""
    years = years or current_app.config["RETENTION_YEARS"]
    cutoff = retention.cutoff(years)
    rows = retention.report(years)
    if as_json:
        click.echo(json.dumps({
            "retention_years": years, "cutoff": cutoff.isoformat(),
            "tables": [{"table": r.table, "date_column": r.column, "rows": r.total, "past_retention": r.past,
                        "oldest": r.oldest.isoformat() if r.oldest else None} for r in rows],
        }, ensure_ascii=False))
        return
    past = [r for r in rows if r.past]
    click.echo(f"retention {years} years: records dated before {cutoff:%Y-%m-%d %H:%M} UTC are past it")
    if not past:
        click.echo("no record is past retention")
    for r in past:
        click.echo(f"{r.table}: {r.past} of {r.total} rows past retention (by {r.column}; oldest {r.oldest:%Y-%m-%d})")
    undated = [r.table for r in rows if r.column is None and r.total]
    if undated:
        click.echo(f"undated tables (kept with the records they belong to): {', '.join(undated)}")
    click.echo("nothing was deleted: purging a record is a decision for a person, outside this tool")
