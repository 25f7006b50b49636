"""`flask integrity verify`: re-hash every live approved file now, in this process."""

from __future__ import annotations

import json
import sys

from flask.cli import AppGroup

from advisor_studio.dbtypes import utcnow
from advisor_studio.extensions import db
from advisor_studio.integrity import tasks
from advisor_studio.integrity.models import RUN_QUEUED, IntegrityRun

integrity_cli = AppGroup("integrity", help="Check stored files against their approved SHA-256.")


@integrity_cli.command("verify")
def integrity_verify():
    """Re-verify every live approved file; print the run as JSON; exit 1 when any file failed."""
    run = IntegrityRun(status=RUN_QUEUED, created_at=utcnow())
    db.session.add(run)
    db.session.commit()
    tasks.verify_stored_files.run(run.id)
    run = db.session.get(IntegrityRun, run.id)
    print(json.dumps({"run": run.id, "status": run.status, "total": run.total, "checked": run.checked,
                      "failures": run.failures}))
    sys.exit(1 if run.failures or run.status != "finished" else 0)
