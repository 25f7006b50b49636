"""Background re-verification of every stored file of every live approval."""

from __future__ import annotations

from celery import shared_task

from advisor_studio.dbtypes import utcnow
from advisor_studio.extensions import db
from advisor_studio.integrity import services
from advisor_studio.integrity.models import DETECTED_SCHEDULED, RUN_QUEUED, IntegrityRun


@shared_task(name="advisor_studio.integrity.verify_stored_files", acks_late=True)
def verify_stored_files(run_id: int | None = None) -> int | None:
    """Re-hash every live approved rendition and cover; return the run id (beat passes no run: one is made)."""
    if run_id is None:
        run = IntegrityRun(status=RUN_QUEUED, created_at=utcnow())
        db.session.add(run)
        db.session.flush()
    else:
        run = db.session.get(IntegrityRun, run_id)
        if run is None or not run.is_active:
            return run_id  # a redelivered message for a finished run: nothing to do twice
        # A "running" run whose worker died is started over: re-hashing is idempotent.
    try:
        files = services.live_approved_files()
        services.start_run(run, len(files))
        db.session.commit()
        for file in files:
            ok = services.verify_file(file, DETECTED_SCHEDULED, run)
            services.record_progress(run, ok)
            # Commit per file: the page shows live progress, and an alert is kept even if a later file fails.
            db.session.commit()
        services.finish_run(run)
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        run = db.session.get(IntegrityRun, run.id)
        if run is not None:
            services.finish_run(run, error=f"{type(exc).__name__}: {exc}")
            db.session.commit()
        raise
    return run.id
