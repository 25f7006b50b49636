"""State changes of integrity checking: alerts (which suspend the approval), verified-file records,
re-verification runs and the download log. Services flush, never commit, and write the audit entry."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from advisor_studio import audit, storage, system_reasons
from advisor_studio.dbtypes import utcnow
from advisor_studio.errors import Conflict, ValidationError
from advisor_studio.extensions import db
from advisor_studio.integrity.models import (
    DETECTED_RESOLVE,
    FILE_COVER,
    FILE_VIDEO,
    RUN_FAILED,
    RUN_FINISHED,
    RUN_QUEUED,
    RUN_RUNNING,
    DownloadLog,
    IntegrityAlert,
    IntegrityRun,
    VerifiedFile,
)

SYSTEM = "system"


@dataclass(frozen=True)
class StoredFile:
    """One stored file of a rendition and the SHA-256 it must hash to."""

    rendition_id: int
    package_id: int
    file_kind: str
    key: str
    expected_sha256: str


# --- alerts -------------------------------------------------------------------------------------


def open_alert_for(key: str) -> IntegrityAlert | None:
    """The unresolved alert on a stored file, if any."""
    return db.session.scalars(sa.select(IntegrityAlert).where(
        IntegrityAlert.storage_key == key, IntegrityAlert.resolved_at.is_(None)).limit(1)).first()


def open_alert_count() -> int:
    """How many alerts are unresolved."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(IntegrityAlert)
                             .where(IntegrityAlert.resolved_at.is_(None))) or 0


def raise_alert(file: StoredFile, actual_sha256: str | None, detected_by: str,
                run: IntegrityRun | None = None) -> IntegrityAlert:
    """Record that ``file`` no longer hashes to what was recorded and suspend the approval that covers it."""
    alert = open_alert_for(file.key)
    if alert is None:
        alert = IntegrityAlert(storage_key=file.key, file_kind=file.file_kind, rendition_id=file.rendition_id,
                               package_id=file.package_id, expected_sha256=file.expected_sha256,
                               actual_sha256=actual_sha256, detected_by=detected_by,
                               run_id=run.id if run is not None else None, detected_at=utcnow())
        db.session.add(alert)
        db.session.flush()
        audit.record("integrity.alert_raised", "integrity_alert", alert.id, actor=SYSTEM, details={
            "storage_key": file.key, "file": file.file_kind, "rendition_id": file.rendition_id,
            "package_id": file.package_id, "expected_sha256": file.expected_sha256,
            "actual_sha256": actual_sha256, "detected_by": detected_by})
    if _suspend_approval(file, alert):
        alert.approval_suspended = True
        db.session.flush()
    return alert


def _suspend_approval(file: StoredFile, alert: IntegrityAlert) -> bool:
    """Void the live approval covering the file's rendition and move its package out of ``approved``."""
    from advisor_studio.compliance import services as compliance
    from advisor_studio.studio import states
    from advisor_studio.studio.models import PKG_APPROVED, PKG_DRAFT, Package

    package = db.session.get(Package, file.package_id)
    if package is None:
        return False
    approval = compliance.live_approval(package)
    if approval is None or (approval.manifest or {}).get("rendition_id") != file.rendition_id:
        return False
    reason = system_reasons.integrity_alert(alert.id, file.file_kind)
    if package.status == PKG_APPROVED:
        states.transition_package(package, PKG_DRAFT, SYSTEM, reason, {"integrity_alert_id": alert.id})
    compliance.void_approvals(package, SYSTEM, reason)
    return True


def resolve_alert(alert: IntegrityAlert, actor, note: str) -> IntegrityAlert:
    """Close an alert once the stored file hashes to the recorded SHA-256 again (restored from backup)."""
    note = (note or "").strip()
    if not note:
        raise ValidationError(_("Say how the file was restored."), fields={"note": _("required")})
    if not alert.is_open:
        raise Conflict(_("This alert was already resolved."))
    file = StoredFile(alert.rendition_id or 0, alert.package_id or 0, alert.file_kind, alert.storage_key,
                      alert.expected_sha256)
    actual = hash_stored(file.key)
    if actual != file.expected_sha256:
        raise Conflict(_("The stored file still does not match the recorded SHA-256; restore it first."))
    record_verified(file.key, actual, storage.get_storage().fingerprint(file.key))
    alert.resolved_at = utcnow()
    alert.resolved_by_id = actor.id
    alert.resolution = note[:500]
    db.session.flush()
    audit.record("integrity.alert_resolved", "integrity_alert", alert.id, actor=actor,
                 details={"note": note[:500], "sha256": actual, "detected_by": DETECTED_RESOLVE})
    return alert


# --- verification -------------------------------------------------------------------------------


def hash_stored(key: str) -> str | None:
    """The SHA-256 of a stored file read in chunks, or None when it cannot be read."""
    try:
        return storage.get_storage().sha256_of(key)
    except storage.StorageError:
        return None


def record_verified(key: str, sha256: str, fingerprint: str) -> VerifiedFile:
    """Remember that ``key`` hashed to ``sha256`` while the backend reported ``fingerprint``."""
    stmt = sa.select(VerifiedFile).where(VerifiedFile.storage_key == key)
    try:
        # A savepoint: two downloads finishing at once may both insert the first row for a key.
        with db.session.begin_nested():
            row = db.session.scalars(stmt).first()
            if row is None:
                row = VerifiedFile(storage_key=key)
                db.session.add(row)
            row.sha256, row.fingerprint, row.verified_at = sha256, fingerprint, utcnow()
    except IntegrityError:
        row = db.session.scalars(stmt).one()
        row.sha256, row.fingerprint, row.verified_at = sha256, fingerprint, utcnow()
        db.session.flush()
    return row


def range_allowed(file: StoredFile, detected_by: str) -> bool:
    """True when a byte range of ``file`` may be served: it was verified and has not changed since.

    Raises the alert (and returns False) when the bytes no longer match.
    """
    if open_alert_for(file.key) is not None:
        return False
    store = storage.get_storage()
    try:
        fingerprint = store.fingerprint(file.key)
    except storage.StorageError:
        raise_alert(file, None, detected_by)
        return False
    max_age = timedelta(seconds=current_app.config["INTEGRITY_RANGE_MAX_AGE_SECONDS"])
    row = db.session.scalars(sa.select(VerifiedFile).where(VerifiedFile.storage_key == file.key)).first()
    if (row is not None and row.fingerprint == fingerprint and row.sha256 == file.expected_sha256
            and row.verified_at > utcnow() - max_age):
        return True
    # The backend's own whole-object checksum (S3) answers without reading the bytes.
    actual = store.stored_sha256(file.key)
    if actual is None:
        actual = hash_stored(file.key)
    if actual != file.expected_sha256:
        raise_alert(file, actual, detected_by)
        return False
    record_verified(file.key, actual, fingerprint)
    return True


def verify_file(file: StoredFile, detected_by: str, run: IntegrityRun | None = None) -> bool:
    """Re-hash every byte of ``file``; record the result or raise the alert. True when it matches."""
    try:
        fingerprint = storage.get_storage().fingerprint(file.key)
    except storage.StorageError:
        fingerprint = None
    actual = hash_stored(file.key) if fingerprint is not None else None
    if actual != file.expected_sha256:
        raise_alert(file, actual, detected_by, run)
        return False
    record_verified(file.key, actual, fingerprint)
    return True


def rendition_files(rendition, approval=None) -> list[StoredFile]:
    """The stored files of a rendition with the hash each must have (the approved one when approved)."""
    manifest = (approval.manifest or {}) if approval is not None else {}
    files = []
    if rendition.storage_key:
        expected = manifest.get("rendition_sha256") or rendition.sha256 or ""
        files.append(StoredFile(rendition.id, rendition.package_id, FILE_VIDEO, rendition.storage_key, expected))
    if rendition.cover_key:
        expected = manifest.get("cover_sha256") or rendition.cover_sha256 or ""
        files.append(StoredFile(rendition.id, rendition.package_id, FILE_COVER, rendition.cover_key, expected))
    return files


def live_approved_files() -> list[StoredFile]:
    """Every stored file (rendition and cover) of every live package approval, in three queries."""
    from advisor_studio.compliance.approvals import live_clause
    from advisor_studio.compliance.models import Approval
    from advisor_studio.video.models import Rendition

    newest: dict[int, Approval] = {}
    for approval in db.session.scalars(sa.select(Approval).where(live_clause())
                                       .order_by(Approval.approved_at, Approval.id)):
        newest[approval.package_id] = approval  # the newest live approval of each package wins
    by_rendition = {a.manifest.get("rendition_id"): a for a in newest.values()
                    if (a.manifest or {}).get("rendition_id")}
    if not by_rendition:
        return []
    renditions = db.session.scalars(sa.select(Rendition).where(Rendition.id.in_(by_rendition))
                                    .order_by(Rendition.package_id, Rendition.id))
    files: list[StoredFile] = []
    for rendition in renditions:
        files.extend(rendition_files(rendition, by_rendition[rendition.id]))
    return files


# --- runs ---------------------------------------------------------------------------------------


def request_run(actor) -> IntegrityRun:
    """Queue a re-verification of every live approved file (one at a time: a queued or running one is reused)."""
    from advisor_studio.integrity import tasks
    from advisor_studio.tasks_util import enqueue_after_commit

    active = db.session.scalars(sa.select(IntegrityRun).where(
        IntegrityRun.status.in_((RUN_QUEUED, RUN_RUNNING))).order_by(IntegrityRun.id.desc()).limit(1)).first()
    if active is not None:
        return active
    run = IntegrityRun(status=RUN_QUEUED, requested_by_id=getattr(actor, "id", None), created_at=utcnow())
    db.session.add(run)
    db.session.flush()
    audit.record("integrity.run_requested", "integrity_run", run.id, actor=actor)
    enqueue_after_commit(tasks.verify_stored_files, run.id)
    return run


def start_run(run: IntegrityRun, total: int) -> IntegrityRun:
    """Mark a run as running over ``total`` files."""
    run.status, run.started_at, run.total, run.checked, run.failures = RUN_RUNNING, utcnow(), total, 0, 0
    db.session.flush()
    return run


def record_progress(run: IntegrityRun, ok: bool) -> None:
    """Count one checked file."""
    run.checked += 1
    run.failures += 0 if ok else 1
    db.session.flush()


def finish_run(run: IntegrityRun, error: str | None = None) -> IntegrityRun:
    """Close a run with its counts, and audit the result."""
    run.status = RUN_FAILED if error else RUN_FINISHED
    run.error = error[:500] if error else None
    run.finished_at = utcnow()
    db.session.flush()
    audit.record("integrity.run_finished", "integrity_run", run.id, actor=SYSTEM, details={
        "status": run.status, "total": run.total, "checked": run.checked, "failures": run.failures})
    return run


# --- download log -------------------------------------------------------------------------------


def truncate_ip(address: str | None) -> str | None:
    """The network an address belongs to (IPv4 /24, IPv6 /48); the full address is never stored."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def log_download(*, user_id: int | None, partner_id: int | None, rendition_id: int | None,
                 file_kind: str | None, via: str, method: str, status: int, start: int | None = None,
                 end: int | None = None, bytes_sent: int = 0, reason: str | None = None,
                 address: str | None = None, actor=None, api_key_id: int | None = None,
                 assignment_id: int | None = None) -> DownloadLog:
    """One download-log row and its audit entry ("file.downloaded", or "file.download_refused")."""
    row = DownloadLog(at=utcnow(), user_id=user_id, partner_id=partner_id, api_key_id=api_key_id,
                      assignment_id=assignment_id, rendition_id=rendition_id,
                      file_kind=file_kind, via=via, method=method[:8], status=status, range_start=start,
                      range_end=end, bytes_sent=bytes_sent, reason=reason, ip_prefix=truncate_ip(address))
    db.session.add(row)
    db.session.flush()
    refused = status >= 400
    audit.record("file.download_refused" if refused else "file.downloaded", "rendition",
                 rendition_id if rendition_id is not None else "-", actor=actor, details={
                     "download_id": row.id, "file": file_kind, "via": via, "status": status,
                     "partner_id": partner_id, "api_key_id": api_key_id, "assignment_id": assignment_id,
                     "user_id": user_id, "range": None if start is None else [start, end],
                     "bytes": bytes_sent, "reason": reason, "ip_prefix": row.ip_prefix})
    return row
