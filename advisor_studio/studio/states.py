"""The two state machines of reviewed content: scripts (pre-approval) and packages (final).

No other code assigns ``status``: every change goes through ``transition_script`` or
``transition_package``, which check the table below, write the new status with a
compare-and-set (the row must still have the status and version this request read) and
write the audit entry. Of two requests racing on one object, exactly one moves it; the
other gets a Conflict (409).
"""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from advisor_studio import audit
from advisor_studio.concurrency import compare_and_set, flush_or_conflict, stale_conflict
from advisor_studio.dbtypes import utcnow
from advisor_studio.errors import Conflict
from advisor_studio.studio.models import (
    PKG_APPROVED,
    PKG_ARCHIVED,
    PKG_CHANGES_REQUESTED,
    PKG_DRAFT,
    PKG_EXPIRED,
    PKG_REJECTED,
    PKG_SUBMITTED,
    PKG_WITHDRAWN,
    SCRIPT_APPROVED,
    SCRIPT_ARCHIVED,
    SCRIPT_CHANGES_REQUESTED,
    SCRIPT_DRAFT,
    SCRIPT_REJECTED,
    SCRIPT_SUBMITTED,
    STATUS_LABELS,
    Package,
    Script,
)

KIND_LABELS = {"script": _l("script"), "package": _l("package")}

# from-status -> {to-status: audit action}
SCRIPT_TRANSITIONS: dict[str, dict[str, str]] = {
    SCRIPT_DRAFT: {SCRIPT_SUBMITTED: "script.submitted", SCRIPT_ARCHIVED: "script.archived"},
    SCRIPT_SUBMITTED: {
        SCRIPT_APPROVED: "script.approved",
        SCRIPT_CHANGES_REQUESTED: "script.changes_requested",
        SCRIPT_REJECTED: "script.rejected",
        SCRIPT_DRAFT: "script.recalled",
    },
    SCRIPT_CHANGES_REQUESTED: {
        SCRIPT_SUBMITTED: "script.resubmitted",
        SCRIPT_DRAFT: "script.reopened",
        SCRIPT_ARCHIVED: "script.archived",
    },
    # Editing an approved script starts a new draft; the approved revision stays approved.
    SCRIPT_APPROVED: {SCRIPT_DRAFT: "script.reopened", SCRIPT_ARCHIVED: "script.archived"},
    SCRIPT_REJECTED: {SCRIPT_ARCHIVED: "script.archived"},
    SCRIPT_ARCHIVED: {},
}

PACKAGE_TRANSITIONS: dict[str, dict[str, str]] = {
    PKG_DRAFT: {PKG_SUBMITTED: "package.submitted", PKG_ARCHIVED: "package.archived"},
    PKG_SUBMITTED: {
        PKG_APPROVED: "package.approved",
        PKG_CHANGES_REQUESTED: "package.changes_requested",
        PKG_REJECTED: "package.rejected",
        PKG_DRAFT: "package.recalled",
    },
    PKG_CHANGES_REQUESTED: {
        PKG_SUBMITTED: "package.resubmitted",
        PKG_DRAFT: "package.reopened",
        PKG_ARCHIVED: "package.archived",
    },
    PKG_APPROVED: {
        PKG_WITHDRAWN: "package.withdrawn",
        PKG_EXPIRED: "package.expired",
        PKG_DRAFT: "package.approval_voided",  # anything in the approved manifest changed
    },
    PKG_EXPIRED: {
        PKG_SUBMITTED: "package.renewal_submitted",
        PKG_WITHDRAWN: "package.withdrawn",
        PKG_DRAFT: "package.reopened",
        PKG_ARCHIVED: "package.archived",
    },
    PKG_REJECTED: {PKG_ARCHIVED: "package.archived"},
    PKG_WITHDRAWN: {},
    PKG_ARCHIVED: {},
}


def _transition(obj, object_type: str, table: dict[str, dict[str, str]], to: str, actor, reason: str,
                details: dict | None) -> str:
    allowed = table.get(obj.status, {})
    if to not in allowed:
        raise Conflict(
            _("This %(kind)s cannot go from %(old)s to %(new)s.", kind=KIND_LABELS.get(object_type, object_type),
              old=STATUS_LABELS.get(obj.status, obj.status), new=STATUS_LABELS.get(to, to)),
            code="transition_refused",
        )
    action = allowed[to]
    old = obj.status
    kind = KIND_LABELS.get(object_type, object_type)
    flush_or_conflict(kind)  # pending edits first, so the version compared below is the one they wrote
    model = type(obj)
    if not compare_and_set(obj, [model.status == old, model.version == obj.version],
                           status=to, updated_at=utcnow(), version=obj.version + 1):
        raise stale_conflict(kind)
    audit.record(action, object_type, obj.id, actor=actor,
                 details={"from": old, "to": to, "reason": (reason or "")[:2000], **(details or {})})
    return action


def transition_script(script: Script, to: str, actor, reason: str = "", details: dict | None = None) -> str:
    """Move a script to ``to`` if the table allows it; write the audit entry."""
    return _transition(script, "script", SCRIPT_TRANSITIONS, to, actor, reason, details)


def transition_package(package: Package, to: str, actor, reason: str = "", details: dict | None = None) -> str:
    """Move a package to ``to`` if the table allows it; write the audit entry.

    A package leaving ``approved`` takes its partner assignments with it (withdrawn or expired, with a
    take-down deadline) in the same transaction; see distribution.services.end_assignments.
    """
    old = package.status
    action = _transition(package, "package", PACKAGE_TRANSITIONS, to, actor, reason, details)
    if old == PKG_APPROVED:
        from advisor_studio.distribution import services as distribution

        distribution.end_assignments(package, to, actor, reason)
    return action
