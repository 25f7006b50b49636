"""The audit log as people read it: localized action and object names, links to the objects, details as
labelled values, and one query shared by the page and its CSV export.

The stored entries stay exactly as written (codes and JSON, hash-chained); everything here is
presentation. An action or object type without a label (one added later) still shows, as its code.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import url_for
from flask_babel import lazy_gettext as _l

from advisor_studio.audit import AuditEntry

OBJECT_LABELS = {
    "script": _l("Script"), "package": _l("Package"), "review": _l("Review"), "approval": _l("Approval"),
    "rendition": _l("Rendition"), "user": _l("User"), "partner": _l("Partner"), "channel": _l("Channel"),
    "assignment": _l("Partner asset"), "referral_link": _l("Referral link"),
    "community_group": _l("Community group"), "sharing_task": _l("Sharing task"),
    "conversion": _l("Conversion"), "lexicon_version": _l("Lexicon version"),
    "disclaimer_template": _l("Disclaimer"), "integrity_alert": _l("Integrity alert"),
    "integrity_run": _l("Integrity check"), "webhook_event": _l("Webhook event"),
}

ACTION_LABELS = {
    # content
    "script.created": _l("created a script"), "script.edited": _l("edited a script"),
    "script.submitted": _l("submitted a script for pre-approval"),
    "script.resubmitted": _l("resubmitted a script"), "script.recalled": _l("recalled a script"),
    "script.reopened": _l("reopened a script as a draft"), "script.approved": _l("pre-approved a script"),
    "script.changes_requested": _l("asked for changes to a script"), "script.rejected": _l("rejected a script"),
    "script.archived": _l("archived a script"),
    "package.created": _l("created a package"), "package.edited": _l("edited a package"),
    "package.submitted": _l("submitted a package for final review"),
    "package.resubmitted": _l("resubmitted a package"), "package.recalled": _l("recalled a package"),
    "package.reopened": _l("reopened a package as a draft"), "package.approved": _l("approved a package"),
    "package.changes_requested": _l("asked for changes to a package"),
    "package.rejected": _l("rejected a package"), "package.withdrawn": _l("withdrew a package"),
    "package.expired": _l("a package's approval expired"), "package.archived": _l("archived a package"),
    "review.opened": _l("queued a review"), "review.claimed": _l("claimed a review"),
    "review.released": _l("released a review"), "review.commented": _l("commented on a review"),
    "review.replied": _l("replied to a review comment"),
    "review.superseded": _l("closed a superseded review"), "review.approved": _l("approved in review"),
    "review.changes_requested": _l("asked for changes in review"), "review.rejected": _l("rejected in review"),
    "approval.granted": _l("granted an approval"), "approval.voided": _l("voided an approval"),
    "approval.flagged": _l("flagged an approval after a lexicon change"),
    "lexicon.version_created": _l("published a lexicon version"),
    "disclaimer.published": _l("published a disclaimer"), "evidence.exported": _l("exported an evidence pack"),
    # video and files
    "video.uploaded": _l("uploaded a video"), "video.upload_refused": _l("had a video upload refused"),
    "rendition.queued": _l("queued a render"), "rendition.ready": _l("a render finished"),
    "rendition.failed": _l("a render failed"), "rendition.retried": _l("retried a render"),
    "file.downloaded": _l("downloaded a file"), "file.download_refused": _l("was refused a download"),
    "integrity.run_requested": _l("requested an integrity check"),
    "integrity.run_finished": _l("an integrity check finished"),
    "integrity.alert_raised": _l("an integrity alert was raised"),
    "integrity.alert_resolved": _l("resolved an integrity alert"),
    # distribution
    "partner.created": _l("created a partner"), "partner.updated": _l("updated a partner"),
    "partner.deactivated": _l("deactivated a partner"), "partner.reactivated": _l("reactivated a partner"),
    "partner.api_key_issued": _l("issued an API key"), "partner.api_key_revoked": _l("revoked an API key"),
    "partner.webhook_secret_regenerated": _l("regenerated a webhook secret"),
    "partner.webhook_url_refused": _l("had a webhook address refused"),
    "channel.created": _l("created a channel"), "channel.updated": _l("updated a channel"),
    "assignment.created": _l("made an asset available to a partner"),
    "publication.reported": _l("reported a publication"), "takedown.confirmed": _l("confirmed a take-down"),
    "takedown.overdue": _l("a take-down became overdue"), "webhook.resent": _l("resent a webhook event"),
    "webhook.test_sent": _l("sent a test webhook"),
    # referrals
    "group.created": _l("created a community group"), "group.updated": _l("updated a community group"),
    "group.archived": _l("archived a community group"), "group.imported": _l("imported community groups"),
    "link.created": _l("created a referral link"), "link.enabled": _l("enabled a referral link"),
    "link.disabled": _l("disabled a referral link"), "link.replaced": _l("replaced a referral link"),
    "sharing_task.created": _l("received a sharing task"), "sharing_task.opened": _l("opened a sharing task"),
    "sharing_task.done": _l("completed a sharing task"), "conversion.recorded": _l("recorded a conversion"),
    # accounts
    "user.created": _l("created a user"), "user.updated": _l("updated a user"),
    "user.deactivated": _l("deactivated a user"), "user.login": _l("signed in"),
    "user.login_failed": _l("failed to sign in"), "user.logout": _l("signed out"),
    "user.password_changed": _l("changed a password"), "user.password_reset": _l("reset a password"),
    "user.reauthenticated": _l("confirmed their identity"),
    "user.reauth_failed": _l("failed to confirm their identity"),
    "user.recovery_code_used": _l("used a recovery code"), "user.totp_enabled": _l("turned on two-step sign-in"),
    "user.totp_disabled": _l("turned off two-step sign-in"),
    "user.totp_enrolment_started": _l("started setting up two-step sign-in"),
    "user.failed_logins_reported": _l("was told about failed sign-ins"),
    "user.partner_changed": _l("changed a user's partner"), "advisor.profile_updated": _l("updated an advisor profile"),
    "role.grant_requested": _l("requested a role grant"), "role.grant_confirmed": _l("confirmed a role grant"),
    "role.grant_cancelled": _l("cancelled a role grant"), "role.change_refused": _l("had a role change refused"),
}

# Which page shows an object, and who may open it (the audit log's readers are compliance and admins).
_OBJECT_PAGES = {
    "script": ("studio.script", "script_id", None),
    "package": ("studio.package", "package_id", None),
    "review": ("compliance.review", "review_id", "compliance"),
    "user": ("accounts.user_edit", "user_id", "admin"),
    "partner": ("distribution.partner", "partner_id", "admin"),
    "channel": ("distribution.channel_edit", "channel_id", "admin"),
    "referral_link": ("referrals.link", "link_id", None),
    "webhook_event": ("distribution.webhook_event", "event_pk", "admin"),
}

# The detail keys most entries carry; others show as their key.
DETAIL_LABELS = {
    "from": _l("Status before"), "to": _l("Status after"), "reason": _l("Reason"), "fields": _l("Fields changed"),
    "note": _l("Note"), "name": _l("Name"), "code": _l("Code"), "email": _l("E-mail"), "role": _l("Role"),
    "roles": _l("Roles"), "platform": _l("Platform"), "package_id": _l("Package"), "partner_id": _l("Partner"),
    "review_id": _l("Review"), "approval_id": _l("Approval"), "manifest_sha256": _l("Manifest SHA-256"),
    "scan_id": _l("Pre-check"), "factor": _l("Factor"), "size": _l("Size (bytes)"), "post_url": _l("Post address"),
}

EXPORT_MAX_ROWS = 100_000


def action_label(action: str) -> str:
    label = ACTION_LABELS.get(action)
    return str(label) if label is not None else action


def object_label(object_type: str) -> str:
    label = OBJECT_LABELS.get(object_type)
    return str(label) if label is not None else object_type


def object_url(entry: AuditEntry, user) -> str | None:
    """The page of the entry's object, if there is one and ``user`` may open it."""
    page = _OBJECT_PAGES.get(entry.object_type)
    if page is None or not str(entry.object_id).isdigit():
        return None
    endpoint, arg, role = page
    if role is not None and not user.has_role(role):
        return None
    return url_for(endpoint, **{arg: int(entry.object_id)})


def detail_items(details: dict | None) -> list[tuple[str, str]]:
    """The details as (label, value) pairs for display: known keys and statuses in the user's language,
    nested values as compact JSON, an empty reason left out."""
    import json

    from advisor_studio.studio.models import STATUS_LABELS

    items = []
    for code, value in (details or {}).items():
        if code == "reason" and not value:
            continue
        key = str(DETAIL_LABELS.get(code, code))
        if code in ("from", "to") and isinstance(value, str) and value in STATUS_LABELS:
            value = str(STATUS_LABELS[value])
        if isinstance(value, (dict, list)):
            shown = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
        elif value is None:
            shown = "—"
        else:
            shown = str(value)
        items.append((str(key), shown if len(shown) <= 300 else shown[:300] + "…"))
    return items


def entries_query(*, actor: str = "", action: str = "", object_type: str = "", object_id: str = "",
                  start=None, end=None, tz: ZoneInfo) -> sa.Select:
    """The entries matching the filters, newest first (dates are whole days in ``tz``)."""
    stmt = sa.select(AuditEntry).order_by(AuditEntry.seq.desc())
    if actor:
        stmt = stmt.where(AuditEntry.actor_label.icontains(actor, autoescape=True))
    if action:
        stmt = stmt.where(AuditEntry.action.startswith(action, autoescape=True))
    if object_type:
        stmt = stmt.where(AuditEntry.object_type == object_type)
    if object_id:
        stmt = stmt.where(AuditEntry.object_id == object_id)
    if start:
        stmt = stmt.where(AuditEntry.at >= datetime.combine(start, time.min, tz))
    if end:
        stmt = stmt.where(AuditEntry.at < datetime.combine(end + timedelta(days=1), time.min, tz))
    return stmt
