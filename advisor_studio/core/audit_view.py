"""The audit log as people read it: localized action and object names, links to the objects, details as
labelled values, and one query shared by the page and its CSV export.

The stored entries stay exactly as written (codes and JSON, hash-chained); everything here is
presentation. An action or object type without a label (one added later) still shows, as its code.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from babel.lists import format_list
from flask import url_for
from flask_babel import format_datetime, get_locale, lazy_pgettext
from flask_babel import gettext as _
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
    "fraud_flag": _l("Fraud flag"), "reconciliation_upload": _l("Reconciliation file"),
    "publication": _l("Publication"), "analytics_daily": _l("Daily figures"), "backup": _l("Backup"),
    "request": _l("Request"),
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
    "notification.email_preference": _l("changed their notification e-mail setting"),
    # decisions (review.<decision>, written with the decision's signature), state changes of assets
    "review.approve": _l("approved in review"), "review.request_changes": _l("asked for changes in review"),
    "review.reject": _l("rejected in review"), "review.claim_refused": _l("was refused a review claim"),
    "package.approval_voided": _l("a package's approval was voided by a change"),
    "package.renewal_submitted": _l("submitted a package to renew its approval"),
    "assignment.published": _l("published a partner asset"), "assignment.withdrawn": _l("withdrew a partner asset"),
    "assignment.expired": _l("a partner asset expired"),
    "partner.member_linked": _l("added a member to a partner"),
    "partner.member_unlinked": _l("removed a member from a partner"),
    "publication.metrics_reported": _l("reported a publication's figures"),
    # analytics, fraud and operations
    "fraud_flag.raised": _l("raised a fraud flag"), "fraud_flag.confirmed": _l("confirmed a fraud flag"),
    "fraud_flag.cleared": _l("cleared a fraud flag"), "reconciliation.uploaded": _l("uploaded a reconciliation file"),
    "reconciliation.evidence_mismatch": _l("found a stored reconciliation file changed"),
    "analytics.rebuilt": _l("rebuilt the analytics figures"), "backup.restored": _l("restored a backup"),
    # refusals
    "access.denied": _l("was refused access"), "access.rate_limited": _l("was rate limited"),
    "partner_api.auth_refused": _l("was refused by the partner API"),
    "partner_api.foreign_asset": _l("asked the partner API for another partner's asset"),
    "partner_api.foreign_publication": _l("asked the partner API for another partner's publication"),
    "portal.foreign_asset": _l("asked the portal for another partner's asset"),
    "portal.foreign_publication": _l("asked the portal for another partner's publication"),
}

# Who acted, when it was not a signed-in user (audit.record's actor as a string).
ACTOR_LABELS = {
    "system": _l("System"), "cli": _l("Command line"), "seed-demo": _l("Demo data"), "anonymous": _l("Anonymous"),
    "webhook": _l("Account-opening system"), "worker": _l("Background task"),
    "fraud-detector": _l("Fraud detection"),
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
    "fraud_flag": ("fraud.flag", "flag_id", "compliance"),
    "reconciliation_upload": ("reconciliation.detail", "upload_id", "admin"),
}

# Every detail key the code writes (tests/test_audit_view.py keeps this complete); a key added later
# without a label shows as its code.
DETAIL_LABELS = {
    "from": _l("Status before"), "to": _l("Status after"), "previous_status": _l("Status before"),
    "reason": _l("Reason"), "fields": _l("Fields changed"), "note": _l("Note"),
    "name": lazy_pgettext("audit detail: a person's or an object's name", "Name"),
    "code": _l("Code"), "email": _l("E-mail"), "role": _l("Role"), "roles": _l("Roles"), "platform": _l("Platform"),
    "package_id": _l("Package"), "partner_id": _l("Partner"), "review_id": _l("Review"),
    "approval_id": _l("Approval"), "approval_ids": _l("Approvals"), "manifest_sha256": _l("Manifest SHA-256"),
    "scan_id": _l("Pre-check"), "factor": _l("Factor"), "size": _l("Size (bytes)"), "post_url": _l("Post address"),
    "actual": _l("Actual value"), "actual_sha256": _l("Actual SHA-256"), "expected": _l("Expected value"),
    "expected_sha256": _l("Expected SHA-256"), "sha256": _l("SHA-256"), "address": _l("Network address"),
    "last_address": _l("Last network address"), "last_at": _l("Last time"), "ip_prefix": _l("Network"),
    "advisor_id": _l("Advisor"), "owner_id": _l("Owner"), "user_id": _l("User"), "requested_by": _l("Requested by"),
    "customer_id": _l("Customer"), "is_employee": _l("Employee"), "amount": _l("Amount"), "event": _l("Event"),
    "before": _l("Before"), "after": _l("After"), "changed": _l("What changed"), "previous": _l("Previous value"),
    "anchor_field": _l("Commented field"), "comment_id": _l("Comment"), "parent_id": _l("Replying to"),
    "text": _l("Text"), "timecode_ms": _l("Time in the video (ms)"),
    "api_key_id": _l("API key"), "key_id": _l("API key"), "prefix": _l("Key prefix"),
    "secret_prefix": _l("Secret prefix"), "label": _l("Label"),
    "assignment_id": _l("Partner asset"), "channel_id": _l("Channel"), "channels": _l("Channels"),
    "handle": _l("Handle"), "follower_count": _l("Followers"), "from_partner_id": _l("Partner before"),
    "to_partner_id": _l("Partner after"), "owner_partner_id": _l("Partner that owns it"),
    "publication_id": _l("Publication"), "published_at": _l("Published at"), "removed_at": _l("Taken down at"),
    "takedown_due_at": _l("Take-down due"), "late": _l("Late"), "metric_id": _l("Figures report"),
    "observed_at": _l("Observed at"), "webhook_event_id": _l("Webhook event"), "event_id": _l("Event ID"),
    "webhook_url": _l("Webhook address"), "url": _l("Address"), "type": _l("Type"), "status": _l("Status"),
    "campaign": _l("Campaign"), "destination": _l("Destination"), "link_id": _l("Referral link"),
    "link_ids": _l("Referral links"), "replaced_by": _l("Replaced by"), "replaced_by_id": _l("Replaced by"),
    "group_id": _l("Community group"), "groups": _l("Community groups"), "external_id": _l("External ID"),
    "member_count": _l("Members"), "tags": _l("Tags"), "generated": _l("Links made"), "kind": _l("Kind"),
    "clicks": _l("Clicks"), "conversions": _l("Conversions"), "subject": _l("Subject"), "day": _l("Day"),
    "days": _l("Days"), "detail": _l("Detail"), "total": _l("Total"), "count": _l("Count"), "until": _l("Until"),
    "matched": _l("Matched"), "missing_here": _l("In their file, not here"),
    "missing_there": _l("Here, not in their file"), "period_from": _l("Period from"), "period_to": _l("Period to"),
    "rows": _l("Rows"), "encoding": _l("Encoding"), "uploaded": _l("Files uploaded"),
    "title": _l("Title"), "script_id": _l("Script"), "revision": _l("Revision"),
    "script_revision_id": _l("Script revision"),
    "script_revision_sha256": _l("Script revision SHA-256"), "stage": _l("Stage"),
    "lexicon_version": _l("Lexicon version"), "entries": _l("Entries"),
    "rendition_id": _l("Rendition"), "source_id": _l("Source video"), "recipe_hash": _l("Render recipe"),
    "duration_s": _l("Duration (s)"), "storage_key": _l("Storage key"), "file": _l("File"), "files": _l("Files"),
    "checked": _l("Files checked"), "failures": _l("Failures"), "run": _l("Check run"),
    "detected_by": _l("Detected by"), "integrity_alert_id": _l("Integrity alert"),
    "download_id": _l("Download"), "bytes": _l("Bytes sent"), "range": _l("Byte range"), "via": _l("Via"),
    "created_at": _l("Created at"), "expires_at": _l("Expires at"), "email_enabled": _l("E-mail notifications"),
    "sac_number": _l("SAC registration no."), "request_id": _l("Request ID"), "schema_revision": _l("Schema revision"),
    "endpoint": _l("Page"), "method": _l("Request method"), "path": _l("Path"),
    "contact_name": _l("Contact"), "contact_email": _l("Contact e-mail"), "contact_phone": _l("Contact phone"),
    "signed_factor": _l("Signed with"), "signed_at": _l("Signed at"),
    # inside nested details: a lexicon rule's fields (compliance.services.edit_rule) and "active" of a
    # group or channel
    "phrase": _l("Phrase"), "severity": _l("Severity"), "category": _l("Category"), "group": _l("Group"),
    "suggestion": _l("Suggested wording"), "active": _l("Active"),
}

# Values that are identifiers, hashes or technical names: shown as code, never translated.
CODE_KEYS = {"actual", "actual_sha256", "expected", "expected_sha256", "sha256", "manifest_sha256",
             "script_revision_sha256", "recipe_hash", "storage_key", "request_id", "schema_revision", "prefix",
             "secret_prefix", "event_id", "code", "subject", "endpoint", "method", "path", "range"}

FACTOR_LABELS = {"password": _l("password"), "totp": _l("authenticator code"),
                 "recovery_code": _l("recovery code")}
VIA_LABELS = {"app": _l("in the app"), "signed": _l("signed download link")}
DETECTED_LABELS = {"download": _l("while downloading"), "range": _l("before serving part of the file"),
                   "scheduled": _l("scheduled check"), "resolve": _l("when the alert was resolved")}


def _value_labels(code: str, object_type: str) -> dict | None:
    """The labels of the coded values a detail key holds for an object type (None: shown as stored)."""
    from advisor_studio import system_reasons
    from advisor_studio.accounts.forms import ROLE_LABELS
    from advisor_studio.analytics.fraud_forms import KIND_LABELS as FLAG_KIND_LABELS
    from advisor_studio.compliance.forms import KIND_LABELS as RULE_KIND_LABELS
    from advisor_studio.compliance.forms import SEVERITY_LABELS, STAGE_LABELS
    from advisor_studio.compliance.reasons import CATEGORY_LABELS
    from advisor_studio.distribution.models import ASSET_STATUS_LABELS
    from advisor_studio.distribution.webhook_forms import EVENT_TYPE_LABELS
    from advisor_studio.platforms import PLATFORM_LABELS
    from advisor_studio.referrals.forms import EVENT_LABELS
    from advisor_studio.referrals.forms import KIND_LABELS as LINK_KIND_LABELS
    from advisor_studio.referrals.models import GROUP_PLATFORM_LABELS
    from advisor_studio.studio.models import STATUS_LABELS

    if code in ("from", "to", "previous_status"):
        return ASSET_STATUS_LABELS if object_type == "assignment" else STATUS_LABELS
    return {
        "stage": STAGE_LABELS, "role": ROLE_LABELS, "roles": ROLE_LABELS, "factor": FACTOR_LABELS,
        "signed_factor": FACTOR_LABELS, "event": EVENT_LABELS, "via": VIA_LABELS, "detected_by": DETECTED_LABELS,
        "file": system_reasons.FILE_LABELS, "fields": system_reasons.FIELD_LABELS,
        "platform": GROUP_PLATFORM_LABELS if object_type == "community_group" else PLATFORM_LABELS,
        "kind": {"fraud_flag": FLAG_KIND_LABELS, "referral_link": LINK_KIND_LABELS,
                 "lexicon_version": RULE_KIND_LABELS}.get(object_type),
        "severity": SEVERITY_LABELS, "category": CATEGORY_LABELS,
        "type": EVENT_TYPE_LABELS if object_type == "webhook_event" else None,
    }.get(code)


EXPORT_MAX_ROWS = 100_000


def action_label(action: str) -> str:
    label = ACTION_LABELS.get(action)
    return str(label) if label is not None else action


def object_label(object_type: str) -> str:
    label = OBJECT_LABELS.get(object_type)
    return str(label) if label is not None else object_type


_PARTNER_ACTOR = re.compile(r"partner:(?P<partner>[0-9]+)(?:/key:(?P<key>[A-Za-z0-9_-]+))?")
_USER_ACTOR = re.compile(r"user:(?P<user>[0-9]+)")


def actor_label(label: str) -> str:
    """Who acted: a user's e-mail as recorded, the system's actors, a partner (signed download links, the
    partner API with its key's prefix) and a user known by id in the reader's language."""
    known = ACTOR_LABELS.get(label)
    if known is not None:
        return str(known)
    if match := _PARTNER_ACTOR.fullmatch(label):
        if match["key"]:
            return _("Partner #%(id)s (API key %(key)s…)", id=match["partner"], key=match["key"])
        return _("Partner #%(id)s", id=match["partner"])
    if match := _USER_ACTOR.fullmatch(label):
        return _("User #%(id)s", id=match["user"])
    return label


def object_url(entry: AuditEntry, user) -> str | None:
    """The page of the entry's object, if there is one and ``user`` may open it."""
    page = _OBJECT_PAGES.get(entry.object_type)
    if page is None or not str(entry.object_id).isdigit():
        return None
    endpoint, arg, role = page
    if role is not None and not user.has_role(role):
        return None
    return url_for(endpoint, **{arg: int(entry.object_id)})


_ISO_INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(?:Z|[+-][0-9]{2}:[0-9]{2})")


def _key_label(code: str) -> str:
    """A detail key, or a field name inside a nested detail, in the reader's language (else its code)."""
    from advisor_studio import system_reasons

    label = DETAIL_LABELS.get(code)
    if label is None:
        label = system_reasons.FIELD_LABELS.get(code)
    return str(label) if label is not None else code


def _shown_nested(value: dict | list, object_type: str, depth: int) -> str:
    """A nested detail (a group's before/after, a lexicon rule's from/to) as labelled values, not JSON with
    English keys; past two levels (nothing writes that deep) it stays compact JSON."""
    if depth >= 2:
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    if isinstance(value, dict):
        if not value:
            return "—"
        parts = [f"{_key_label(str(k))}: {_shown(v, _value_labels(str(k), object_type), object_type, depth + 1)}"
                 for k, v in value.items()]
        return "; ".join(parts)
    return ", ".join(_shown(v, None, object_type, depth + 1) for v in value) if value else "—"


def _shown(value, labels: dict | None, object_type: str = "", depth: int = 0) -> str:
    if isinstance(value, str) and _ISO_INSTANT.fullmatch(value):
        # An instant stored as ISO 8601 (a deadline, a publication time): in the reader's time zone.
        return format_datetime(datetime.fromisoformat(value.replace("Z", "+00:00")), "yyyy-MM-dd HH:mm")
    if isinstance(value, bool):
        return str(_l("Yes") if value else _l("No"))
    if value is None:
        return "—"
    if labels is not None and isinstance(value, str) and value in labels:
        return str(labels[value])
    if labels is not None and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return format_list([str(labels.get(v, v)) for v in value], locale=get_locale() or "en") if value else "—"
    if isinstance(value, (dict, list)):
        return _shown_nested(value, object_type, depth)
    return str(value)


class DetailItem(NamedTuple):
    label: str
    value: str
    label_is_code: bool  # a key without a label (one added later) shows as its code
    value_is_code: bool  # identifiers and hashes


def detail_items(details: dict | None, object_type: str = "") -> list[DetailItem]:
    """The details for display: keys, statuses, platforms, roles, events and the system's reasons in the
    user's language, yes/no for flags, identifiers and hashes as code, nested values as labelled values, an
    empty reason left out. A key without a label shows as its code."""
    from advisor_studio import system_reasons

    items = []
    for code, value in (details or {}).items():
        if code == "reason" and not value:
            continue
        label = DETAIL_LABELS.get(code)
        if code == "reason" and isinstance(value, str):
            shown = system_reasons.label(value)
        else:
            shown = _shown(value, _value_labels(code, object_type), object_type)
        shown = shown if len(shown) <= 300 else shown[:300] + "…"
        items.append(DetailItem(str(label) if label is not None else code, shown, label is None,
                                label is None or code in CODE_KEYS))
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
