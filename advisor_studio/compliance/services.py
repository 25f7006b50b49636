"""Every state change of compliance: lexicon versions, scans, claims, comments, decisions,
withdrawals, expiry and re-scans. Services flush, never commit, and write the audit trail."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from advisor_studio import audit, system_reasons
from advisor_studio.compliance import approvals
from advisor_studio.compliance import scanner as scan_logic
from advisor_studio.compliance.models import (
    DECISION_APPROVE,
    DECISION_REJECT,
    DECISION_REQUEST_CHANGES,
    DECISIONS,
    NOTE_ADD,
    NOTE_DEFAULT,
    NOTE_EDIT,
    NOTE_IMPORT,
    NOTE_REMOVE,
    STAGE_PACKAGE,
    STAGE_SCRIPT,
    Approval,
    LexiconRule,
    LexiconVersion,
    Review,
    ReviewComment,
    Scan,
)
from advisor_studio.concurrency import compare_and_set
from advisor_studio.dbtypes import utcnow
from advisor_studio.errors import Conflict, PermissionDenied, ValidationError
from advisor_studio.extensions import db
from advisor_studio.notifications import models as notes
from advisor_studio.notifications import queries as notification_queries
from advisor_studio.notifications import services as notifications
from advisor_studio.tasks_util import enqueue_after_commit

COMMENT_MAX = 5000
REASON_MAX = 2000
FIELD_ORDER = ("title", "body", "caption", "hashtags", "subtitles")
FIELD_SEPARATOR = "\n\n"

# --- lexicon ------------------------------------------------------------------------------------

_scanner_cache: dict[tuple[int, str], scan_logic.Scanner] = {}
_scanner_lock = threading.Lock()


def current_lexicon_version() -> int:
    """The newest lexicon version number (0 before any lexicon exists)."""
    return db.session.scalar(sa.select(sa.func.coalesce(sa.func.max(LexiconVersion.number), 0)))


def rules_in_version_query(version: int) -> sa.Select:
    return sa.select(LexiconRule).where(
        LexiconRule.added_in <= version,
        sa.or_(LexiconRule.removed_in.is_(None), LexiconRule.removed_in > version),
    ).order_by(LexiconRule.kind, LexiconRule.category, LexiconRule.phrase)


def rules_in_version(version: int) -> list[LexiconRule]:
    """The rules in force in ``version``."""
    return list(db.session.scalars(rules_in_version_query(version)))


def _to_scanner_entries(rules):
    entries, allows = [], []
    for rule in rules:
        platforms = frozenset(rule.platforms or [])
        if rule.kind == scan_logic.ALLOW:
            allows.append(scan_logic.AllowEntry(rule.phrase, rule.note, platforms))
        else:
            entries.append(scan_logic.LexiconEntry(rule.phrase, rule.kind, rule.severity, rule.category,
                                                   rule.note, platforms, rule.group, rule.suggestion or ""))
    return entries, allows


def get_scanner(version: int | None = None) -> tuple[scan_logic.Scanner, int]:
    """The compiled scanner of ``version`` (default: current), built once per process and version.

    The cache key includes the version's creation time, so a database that was reset (tests,
    a restored backup) never reuses a scanner compiled from another database's version N.
    """
    if version is None:
        version = current_lexicon_version()
    created = db.session.scalar(sa.select(LexiconVersion.created_at).where(LexiconVersion.number == version))
    key = (version, created.isoformat() if created else "")
    with _scanner_lock:
        cached = _scanner_cache.get(key)
    if cached is not None:
        return cached, version
    entries, allows = _to_scanner_entries(rules_in_version(version))
    built = scan_logic.Scanner(entries, allows)
    with _scanner_lock:
        if len(_scanner_cache) > 8:
            _scanner_cache.clear()
        _scanner_cache[key] = built
    return built, version


def _new_version(actor, note: str, code: str | None = None, args: dict | None = None) -> LexiconVersion:
    """A new version; ``code`` and ``args`` let pages say what made it in the reader's language."""
    number = current_lexicon_version() + 1
    version = LexiconVersion(number=number, note=(note or "")[:500], note_code=code, note_args=args,
                             created_by_id=getattr(actor, "id", None))
    db.session.add(version)
    db.session.flush()
    return version


def _finish_version(version: LexiconVersion, actor, details: dict) -> LexiconVersion:
    version.entry_count = db.session.scalar(sa.select(sa.func.count()).select_from(
        rules_in_version_query(version.number).order_by(None).subquery()))
    db.session.flush()
    audit.record("lexicon.version_created", "lexicon_version", version.number, actor=actor,
                 details={"note": version.note, "entries": version.entry_count, **details})
    from advisor_studio.compliance import tasks

    enqueue_after_commit(tasks.rescan_approved_packages, version.number)
    return version


def _validated_rule(phrase, kind, severity, category, note, platforms, group, suggestion="") -> dict:
    phrase = (phrase or "").strip()
    kind = (kind or "").strip().lower()
    severity = (severity or "").strip().lower()
    category = (category or "").strip().lower()
    platforms = sorted({p.strip().lower() for p in (platforms or []) if p and p.strip()})
    suggestion = (suggestion or "").strip()
    if len(suggestion) > scan_logic.MAX_SUGGESTION_LENGTH:
        raise ValidationError(_("The suggested wording is too long."), fields={"suggestion": _("too long")})
    try:
        if kind == scan_logic.ALLOW:
            scan_logic.AllowEntry(phrase, note or "", frozenset(platforms))
            severity, category, group, suggestion = "", "", "", ""
        else:
            entry = scan_logic.LexiconEntry(phrase, kind, severity, category, note or "", frozenset(platforms),
                                            group or "")
            category = entry.category
    except ValueError as exc:
        raise ValidationError(_("Invalid lexicon entry: %(why)s", why=str(exc).split(": ", 1)[-1]),
                              fields={"phrase": str(exc)}) from exc
    if len(note or "") > scan_logic.MAX_NOTE_LENGTH:
        raise ValidationError(_("The note is too long."), fields={"note": _("too long")})
    return {"phrase": phrase, "kind": kind, "severity": severity, "category": category, "note": note or "",
            "platforms": platforms, "group": group or "", "suggestion": suggestion}


def _live_duplicate(phrase: str, exclude_id: int | None = None) -> LexiconRule | None:
    key = scan_logic.normalize_phrase(phrase)
    for rule in db.session.scalars(sa.select(LexiconRule).where(LexiconRule.removed_in.is_(None))):
        if rule.id != exclude_id and scan_logic.normalize_phrase(rule.phrase) == key:
            return rule
    return None


def add_rule(*, phrase, kind, severity="", category="", note="", platforms=(), group="", suggestion="",
             actor) -> LexiconRule:
    """Add one phrase; makes a new lexicon version."""
    data = _validated_rule(phrase, kind, severity, category, note, platforms, group, suggestion)
    clash = _live_duplicate(data["phrase"])
    if clash is not None:
        raise Conflict(_("The lexicon already has this phrase: %(p)s", p=clash.phrase),
                       fields={"phrase": _("duplicate")})
    version = _new_version(actor, f"add {data['phrase']}", NOTE_ADD, {"phrase": data["phrase"]})
    rule = LexiconRule(**data, added_in=version.number)
    db.session.add(rule)
    db.session.flush()
    _finish_version(version, actor, {"added": [data]})
    return rule


def update_rule(rule: LexiconRule, *, actor, **changes) -> LexiconRule:
    """Replace a live rule by an edited copy; the old row stays for older versions."""
    if rule.removed_in is not None:
        raise Conflict(_("This entry was already removed from the lexicon."))
    merged = {k: changes.get(k, getattr(rule, k)) for k in
              ("phrase", "kind", "severity", "category", "note", "platforms", "group", "suggestion")}
    data = _validated_rule(**merged)
    clash = _live_duplicate(data["phrase"], exclude_id=rule.id)
    if clash is not None:
        raise Conflict(_("The lexicon already has this phrase: %(p)s", p=clash.phrase),
                       fields={"phrase": _("duplicate")})
    old = {k: getattr(rule, k) or "" if k == "suggestion" else getattr(rule, k) for k in data}
    if old == data:
        return rule
    version = _new_version(actor, f"edit {rule.phrase}", NOTE_EDIT, {"phrase": rule.phrase})
    rule.removed_in = version.number
    replacement = LexiconRule(**data, added_in=version.number)
    db.session.add(replacement)
    db.session.flush()
    _finish_version(version, actor, {"changed": {"from": old, "to": data}})
    return replacement


def remove_rule(rule: LexiconRule, *, actor, reason: str) -> None:
    """Take a rule out of force; it stays in the history of older versions."""
    if not (reason or "").strip():
        raise ValidationError(_("A reason is required to remove a lexicon entry."), fields={"reason": _("required")})
    if rule.removed_in is not None:
        raise Conflict(_("This entry was already removed from the lexicon."))
    version = _new_version(actor, f"remove {rule.phrase}: {reason.strip()}", NOTE_REMOVE,
                           {"phrase": rule.phrase, "reason": reason.strip()[:400]})
    rule.removed_in = version.number
    db.session.flush()
    _finish_version(version, actor, {"removed": [rule.phrase], "reason": reason.strip()[:500]})


def import_csv(source, *, actor, note: str = "", note_code: str | None = None,
               note_args: dict | None = None) -> tuple[LexiconVersion | None, dict]:
    """Merge a CSV into the lexicon as one new version; any bad row imports nothing.

    ``source`` is a CSV (path, text or bytes), or the already parsed ``(entries, allows)`` of one.
    ``note`` is what a person typed; without one the version's note says how many rows came in.
    """
    if isinstance(source, tuple):
        (entries, allows), errors = source, []
    else:
        entries, allows, errors = scan_logic.load_csv(source)
    if errors:
        raise ValidationError(
            _("The CSV has errors; nothing was imported."),
            fields={f"row {e.row}": e.reason for e in errors[:200]},
            code="csv_invalid",
        )
    rows = [{"phrase": e.phrase, "kind": e.kind, "severity": e.severity, "category": e.category, "note": e.note,
             "platforms": sorted(e.platforms), "group": e.group, "suggestion": e.suggestion} for e in entries]
    rows += [{"phrase": a.phrase, "kind": scan_logic.ALLOW, "severity": "", "category": "", "note": a.note,
              "platforms": sorted(a.platforms), "group": "", "suggestion": ""} for a in allows]
    live = {scan_logic.normalize_phrase(r.phrase): r
            for r in db.session.scalars(sa.select(LexiconRule).where(LexiconRule.removed_in.is_(None)))}
    to_add, to_replace = [], []
    for row in rows:
        existing = live.get(scan_logic.normalize_phrase(row["phrase"]))
        if existing is None:
            to_add.append(row)
        elif {k: getattr(existing, k) for k in row} != row:
            to_replace.append((existing, row))
    counts = {"added": len(to_add), "updated": len(to_replace), "unchanged": len(rows) - len(to_add) - len(to_replace)}
    if not to_add and not to_replace:
        return None, counts
    if not note:
        note, note_code, note_args = f"import of {len(rows)} rows", NOTE_IMPORT, {"rows": len(rows)}
    version = _new_version(actor, note, note_code, note_args)
    for existing, _row in to_replace:
        existing.removed_in = version.number
    db.session.flush()
    # One multi-row INSERT rather than an ORM object per rule: a 10,000-row import stays one statement.
    db.session.execute(sa.insert(LexiconRule), [{**row, "added_in": version.number}
                                                for row in [r for _e, r in to_replace] + to_add])
    _finish_version(version, actor, {"import": counts})
    return version, counts


def ensure_default_lexicon(actor) -> LexiconVersion | None:
    """Load the bundled default lexicon when the lexicon is empty (seed-demo, first run)."""
    if current_lexicon_version() > 0:
        return None
    version, _counts = import_csv(scan_logic.load_default_lexicon(), actor=actor, note="default lexicon",
                                  note_code=NOTE_DEFAULT)
    return version


# --- scanning -----------------------------------------------------------------------------------


def compose(fields: dict[str, str]) -> tuple[str, list[tuple[str, int, int]]]:
    """Join the fields of a submission into one document; return it with each field's span."""
    parts, spans, offset = [], [], 0
    for name in FIELD_ORDER:
        value = fields.get(name)
        if not value:
            continue
        if parts:
            parts.append(FIELD_SEPARATOR)
            offset += len(FIELD_SEPARATOR)
        spans.append((name, offset, offset + len(value)))
        parts.append(value)
        offset += len(value)
    return "".join(parts), spans


def scan_text(text: str, *, platforms=(), advisor_name: str | None = None, sac_number: str | None = None,
              version: int | None = None) -> tuple[scan_logic.ScanResult, int]:
    """Scan one document for every target platform (none: all rules) and merge the findings."""
    scanner, version = get_scanner(version)
    seen, findings, blocking = set(), [], False
    for platform in (sorted(set(platforms)) or [None]):
        result = scanner.scan(text, platform=platform, advisor_name=advisor_name, sac_number=sac_number)
        blocking = blocking or result.blocking
        for finding in result.findings:
            key = (finding.rule, finding.start, finding.end, finding.severity, finding.phrase)
            if key not in seen:
                seen.add(key)
                findings.append(finding)
    findings.sort(key=lambda f: (f.start, f.end, f.rule))
    return scan_logic.ScanResult(tuple(findings), blocking), version


def scan_fields(fields: dict[str, str], *, platforms=(), advisor=None, version: int | None = None) -> dict:
    """Scan a submission's fields as one document; findings carry field-relative offsets."""
    text, spans = compose(fields)
    profile = getattr(advisor, "advisor_profile", None)
    result, version = scan_text(text, platforms=platforms, version=version,
                                advisor_name=profile.real_name if profile else None,
                                sac_number=profile.sac_number if profile else None)
    by_field: dict[str, list[dict]] = {name: [] for name, _s, _e in spans}
    document: list[dict] = []
    for finding in result.findings:
        item = finding.to_dict()
        if finding.start == finding.end:
            document.append(item)
            continue
        for name, start, end in spans:
            if start <= finding.start and finding.end <= end:
                by_field[name].append({**item, "start": finding.start - start, "end": finding.end - start})
                break
        else:
            document.append(item)
    return {"lexicon_version": version, "blocking": result.blocking, "fields": by_field,
            "document": document, "text_sha256": hashlib.sha256(text.encode()).hexdigest()}


def record_scan(subject_type: str, subject_id: int, report: dict, platform: str | None = None) -> Scan:
    """Store a scan report."""
    scan = Scan(subject_type=subject_type, subject_id=subject_id, lexicon_version=report["lexicon_version"],
                platform=platform, text_sha256=report["text_sha256"], blocking=report["blocking"],
                findings={k: report[k] for k in ("fields", "document", "subtitle_lines") if k in report})
    db.session.add(scan)
    db.session.flush()
    return scan


# --- manifests ----------------------------------------------------------------------------------


def manifest_hash(manifest: dict) -> str:
    """SHA-256 of the canonical JSON of a manifest."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False).encode()).hexdigest()


def script_manifest(revision, lexicon_version: int) -> dict:
    """What a script pre-approval covers."""
    return {"stage": STAGE_SCRIPT, "script_revision_id": revision.id, "script_revision_sha256": revision.sha256,
            "lexicon_version": lexicon_version}


def package_manifest(package, lexicon_version: int, *, with_links: bool = True) -> dict:
    """What a package approval covers: revision, rendition, caption, subtitles, channels, lexicon and
    (``with_links``; manifests made before referral links existed have no such key) each channel's link."""
    rendition = package.rendition
    manifest = {
        "stage": STAGE_PACKAGE,
        "package_id": package.id,
        "title": package.title,
        "script_revision_id": package.script_revision_id,
        "script_revision_sha256": package.script_revision.sha256,
        "rendition_id": rendition.id if rendition else None,
        "rendition_sha256": rendition.sha256 if rendition else None,
        "rendition_recipe_hash": rendition.recipe_hash if rendition else None,
        "cover_sha256": rendition.cover_sha256 if rendition else None,
        "caption": package.caption,
        "hashtags": list(package.hashtags or []),
        "subtitles_sha256": package.subtitles_sha256,
        "channel_ids": sorted(c.id for c in package.channels),
        "lexicon_version": lexicon_version,
    }
    if with_links:
        from advisor_studio.referrals import sharing

        manifest["referral_links"] = sharing.manifest_links(package)
    return manifest


def current_manifest(review: Review) -> dict:
    """The manifest of the review's subject as it is now, with the lexicon version it was scanned with."""
    version = review.manifest["lexicon_version"]
    if review.stage == STAGE_SCRIPT:
        return script_manifest(review.script_revision, version)
    # A review submitted before package links existed is compared without them, so it stays decidable.
    return package_manifest(review.package, version, with_links="referral_links" in review.manifest)


# --- reviews ------------------------------------------------------------------------------------


def _sla(stage: str) -> timedelta:
    hours = current_app.config.get("REVIEW_SLA_HOURS", {}).get(stage, 24)
    return timedelta(hours=hours)


# "Open" in SQL; Review.is_open is the same rule in Python, and the partial unique indexes
# on reviews use it too.
REVIEW_IS_OPEN = (Review.decision.is_(None), Review.superseded_at.is_(None))


def _open_reviews_of(*, package=None, script=None):
    if package is not None:
        subject = sa.and_(Review.package_id == package.id, Review.stage == STAGE_PACKAGE)
    else:
        subject = sa.and_(Review.script_id == script.id, Review.stage == STAGE_SCRIPT)
    return sa.select(Review).where(subject, *REVIEW_IS_OPEN).order_by(Review.id)


def _supersede_open(stmt, actor, reason: str) -> int:
    """Supersede each review of ``stmt`` that is still open when we write; a review decided in the
    meantime keeps its decision and is left alone."""
    count = 0
    for review in db.session.scalars(stmt).all():
        if compare_and_set(review, REVIEW_IS_OPEN, superseded_at=utcnow()):
            audit.record("review.superseded", "review", review.id, actor=actor, details={"reason": reason})
            count += 1
    return count


def open_review(*, stage: str, script, revision, package=None, author, manifest: dict, scan: Scan | None,
                priority: int = 0) -> Review:
    """Put a submission in the queue; an older open review of the same subject is superseded."""
    _supersede_open(_open_reviews_of(package=package, script=script), author, "resubmitted")
    now = utcnow()
    review = Review(stage=stage, script_id=script.id, script_revision_id=revision.id,
                    package_id=package.id if package is not None else None, author_id=author.id,
                    submitted_at=now, due_at=now + _sla(stage), priority=priority, manifest=manifest,
                    manifest_sha256=manifest_hash(manifest), scan_id=scan.id if scan else None)
    db.session.add(review)
    db.session.flush()
    audit.record("review.opened", "review", review.id, actor=author,
                 details={"stage": stage, "manifest_sha256": review.manifest_sha256,
                          "script_id": script.id, "package_id": review.package_id})
    # Due for review: every officer who may decide it (not the author) is told, one row each.
    notifications.notify(notes.REVIEW_DUE, notification_queries.reviewing_officer_ids(exclude_user_id=author.id),
                         object_type="review", object_id=review.id,
                         params={"stage": stage, "title": package.title if package is not None else revision.title,
                                 "author": author.name, "due_at": review.due_at.isoformat()})
    return review


def supersede_open_reviews(package, actor, reason: str) -> int:
    """Close the open review of a package whose content changed (recall or edit)."""
    return _supersede_open(_open_reviews_of(package=package), actor, reason)


def supersede_open_script_reviews(script, actor, reason: str) -> int:
    """Close the open pre-approval review of a script (recall)."""
    return _supersede_open(_open_reviews_of(script=script), actor, reason)


def _require_officer(actor, review: Review | None = None) -> None:
    from advisor_studio.accounts.queries import held_admin_recently

    if actor is None or not actor.has_role("compliance"):
        raise PermissionDenied(_("Only compliance officers review content."))
    if review is not None and review.author_id == actor.id:
        raise PermissionDenied(_("Nobody may review content they authored (four-eyes principle)."))
    if review is not None and held_admin_recently(actor):
        raise PermissionDenied(_("Someone who was an admin in the last %(n)d days may not decide reviews "
                                 "(separation of duties).", n=current_app.config["ADMIN_REVIEW_COOLDOWN_DAYS"]),
                               code="recent_admin")


def _require_open(review: Review) -> None:
    if not review.is_open:
        raise Conflict(_("This review is already closed."), code="review_closed")


def _refuse_claim(review: Review, actor, now) -> None:
    """Raise the Conflict that says why ``actor`` cannot hold the claim now."""
    _require_open(review)
    if review.claimed_by_id not in (None, actor.id) and review.claimed_until and review.claimed_until > now:
        raise Conflict(_("%(name)s is reviewing this item until %(time)s.", name=review.claimed_by.name,
                         time=review.claimed_until.strftime("%H:%M UTC")), code="claimed")


def claim(review: Review, actor) -> Review:
    """Lock a review for one officer for REVIEW_CLAIM_MINUTES so two officers do not duplicate work."""
    _require_officer(actor, review)
    now = utcnow()
    _refuse_claim(review, actor, now)
    until = now + timedelta(minutes=current_app.config.get("REVIEW_CLAIM_MINUTES", 30))
    claimable = sa.or_(Review.claimed_by_id.is_(None), Review.claimed_by_id == actor.id,
                       Review.claimed_until.is_(None), Review.claimed_until <= now)
    # Checked again in the UPDATE itself: of officers claiming at the same moment, one wins.
    if not compare_and_set(review, [*REVIEW_IS_OPEN, claimable], claimed_by_id=actor.id, claimed_until=until,
                           claimed_manifest_sha256=manifest_hash(current_manifest(review))):
        db.session.refresh(review)
        _refuse_claim(review, actor, now)
        raise Conflict(_("Someone else changed this review just now. Reload the page and try again."),
                       code="changed_concurrently")
    audit.record("review.claimed", "review", review.id, actor=actor,
                 details={"until": review.claimed_until.isoformat(), "manifest_sha256": review.claimed_manifest_sha256})
    return review


def release(review: Review, actor) -> Review:
    """Give a claimed review back to the queue."""
    _require_officer(actor)
    if review.claimed_by_id != actor.id or not compare_and_set(
            review, [Review.claimed_by_id == actor.id], claimed_by_id=None, claimed_until=None,
            claimed_manifest_sha256=None):
        raise Conflict(_("You have not claimed this review."), code="not_claimed")
    audit.record("review.released", "review", review.id, actor=actor)
    return review


def _field_text(review: Review, field: str) -> str | None:
    revision = review.script_revision
    if field in ("title", "body", "caption"):
        if review.stage == STAGE_PACKAGE and field in ("title", "caption"):
            return getattr(review.package, field)
        return getattr(revision, field)
    if field == "subtitles" and review.package is not None:
        return review.package.subtitles_srt or ""
    return None


def add_comment(review: Review, actor, body: str, *, parent: ReviewComment | None = None,
                anchor_field: str | None = None, anchor_start: int | None = None, anchor_end: int | None = None,
                timecode_ms: int | None = None) -> ReviewComment:
    """A threaded comment by a compliance officer or the author, anchored to a span or a timecode; with
    ``parent``, a reply in that comment's thread. The author comments only while the content is in
    discussion (permissions.in_discussion). Comments are never changed or deleted."""
    from advisor_studio.compliance.permissions import in_discussion

    if actor is None or not (actor.has_role("compliance") or actor.id == review.author_id):
        raise PermissionDenied(_("Only compliance officers and the author comment on a review."))
    if actor.id == review.author_id and not in_discussion(review.subject):
        raise Conflict(_("This content is no longer in review: its comments are kept as they are and take no "
                         "more replies. Submit it again to start a new round."), code="discussion_closed")
    body = (body or "").strip()
    if not body:
        raise ValidationError(_("The comment is empty."), fields={"body": _("required")})
    if len(body) > COMMENT_MAX:
        raise ValidationError(_("The comment is too long."), fields={"body": _("too long")})
    if parent is not None and parent.review_id != review.id:
        raise ValidationError(_("The reply belongs to another review."))
    anchor_text = None
    if anchor_field:
        text = _field_text(review, anchor_field)
        if text is None:
            raise ValidationError(_("Unknown field for the anchor."), fields={"anchor_field": _("invalid")})
        if anchor_start is None or anchor_end is None or not 0 <= anchor_start < anchor_end <= len(text):
            raise ValidationError(_("The selected text span is outside the text."),
                                  fields={"anchor_start": _("invalid")})
        anchor_text = text[anchor_start:anchor_end]
    else:
        anchor_start = anchor_end = None
    if timecode_ms is not None:
        duration = review.package.rendition.duration_s if review.package and review.package.rendition else None
        if review.stage != STAGE_PACKAGE or timecode_ms < 0 or (duration and timecode_ms > duration * 1000 + 1):
            raise ValidationError(_("The timecode is outside the video."), fields={"timecode_ms": _("invalid")})
    comment = ReviewComment(review_id=review.id, parent_id=parent.id if parent else None, author_id=actor.id,
                            body=body, anchor_field=anchor_field or None, anchor_start=anchor_start,
                            anchor_end=anchor_end, anchor_text=anchor_text, timecode_ms=timecode_ms)
    db.session.add(comment)
    db.session.flush()
    if parent is not None:
        audit.record("review.replied", "review", review.id, actor=actor,
                     details={"comment_id": comment.id, "parent_id": parent.id})
    else:
        audit.record("review.commented", "review", review.id, actor=actor,
                     details={"comment_id": comment.id, "anchor_field": anchor_field, "timecode_ms": timecode_ms})
    return comment


def decide(review: Review, actor, decision: str, reason: str = "", *, expected_manifest_sha256: str | None = None,
           signed_factor: str | None = None, signed_at=None) -> Review:
    """Approve, request changes or reject exactly what was claimed; nothing else is decided.

    ``signed_factor`` and ``signed_at`` are the officer's last identity confirmation (step-up): an
    approval is a signature, so they are stored on it and in its audit entry.
    """
    from advisor_studio.studio import states
    from advisor_studio.studio.models import (
        PKG_APPROVED,
        PKG_CHANGES_REQUESTED,
        PKG_REJECTED,
        SCRIPT_APPROVED,
        SCRIPT_CHANGES_REQUESTED,
        SCRIPT_REJECTED,
    )

    _require_officer(actor, review)
    _require_open(review)
    if decision not in DECISIONS:
        raise ValidationError(_("Unknown decision."), fields={"decision": _("invalid")})
    reason = (reason or "").strip()
    if decision != DECISION_APPROVE and not reason:
        raise ValidationError(_("Explain what must change, or why it is rejected."), fields={"reason": _("required")})
    if len(reason) > REASON_MAX:
        raise ValidationError(_("The reason is too long."), fields={"reason": _("too long")})
    now = utcnow()
    if review.claimed_by_id != actor.id or not review.claimed_until or review.claimed_until <= now:
        raise Conflict(_("Claim this review before deciding (your claim may have expired)."), code="not_claimed")
    current = manifest_hash(current_manifest(review))
    if current != review.manifest_sha256 or current != review.claimed_manifest_sha256 or (
            expected_manifest_sha256 and expected_manifest_sha256 != current):
        raise Conflict(_("The submission changed since you claimed it. Reload it and review again."),
                       code="changed_since_claim")
    if decision == DECISION_APPROVE and review.scan is not None and review.scan.blocking:
        raise Conflict(_("The pre-check has blocking findings; this cannot be approved."), code="blocking_findings")
    if decision == DECISION_APPROVE and review.stage == STAGE_PACKAGE and not _rendition_is_current(review.package):
        raise Conflict(_("The video was not made from the package's current inputs; it cannot be approved. "
                         "Request changes so the author renders it again."), code="rendition_stale")

    # The checks above read the review; the UPDATE repeats them so that only one decision is ever
    # written, however many arrive at once (a double-clicked form, two officers).
    if not compare_and_set(review, [*REVIEW_IS_OPEN, Review.claimed_by_id == actor.id, Review.claimed_until > now,
                                    Review.claimed_manifest_sha256 == current],
                           decision=decision, decided_by_id=actor.id, decided_at=now, reason=reason or None):
        raise Conflict(_("Someone else decided or changed this review just now. Reload the page and try again."),
                       code="changed_concurrently")
    signature = {"signed_factor": signed_factor, "signed_at": signed_at.isoformat() if signed_at else None}
    audit.record(f"review.{decision}", "review", review.id, actor=actor,
                 details={"manifest_sha256": current, "reason": reason[:500], **signature})

    if review.stage == STAGE_SCRIPT:
        target = {DECISION_APPROVE: SCRIPT_APPROVED, DECISION_REQUEST_CHANGES: SCRIPT_CHANGES_REQUESTED,
                  DECISION_REJECT: SCRIPT_REJECTED}[decision]
        if decision == DECISION_APPROVE:
            review.script.approved_revision_id = review.script_revision_id
        states.transition_script(review.script, target, actor, reason, {"review_id": review.id})
    else:
        target = {DECISION_APPROVE: PKG_APPROVED, DECISION_REQUEST_CHANGES: PKG_CHANGES_REQUESTED,
                  DECISION_REJECT: PKG_REJECTED}[decision]
        states.transition_package(review.package, target, actor, reason, {"review_id": review.id})
    if decision == DECISION_APPROVE:
        if review.stage == STAGE_PACKAGE:
            # A renewal replaces the expired approval: one unvoided approval per package.
            void_approvals(review.package, actor, system_reasons.renewed(review.id))
        days = current_app.config["APPROVAL_VALID_DAYS"]
        approval = Approval(review_id=review.id, stage=review.stage, script_revision_id=review.script_revision_id,
                            package_id=review.package_id, manifest=review.manifest, manifest_sha256=current,
                            approved_by_id=actor.id, approved_at=now, signed_factor=signed_factor,
                            signed_at=signed_at,
                            expires_at=now + timedelta(days=days) if review.stage == STAGE_PACKAGE else None)
        db.session.add(approval)
        db.session.flush()
        audit.record("approval.granted", "approval", approval.id, actor=actor,
                     details={"manifest_sha256": current, "expires_at": approval.expires_at.isoformat()
                              if approval.expires_at else None, "stage": review.stage, **signature})
        if review.stage == STAGE_PACKAGE:
            from advisor_studio.distribution import services as distribution

            distribution.assign_approval(approval, review.package, actor)
            from advisor_studio.referrals import sharing

            sharing.create_sharing_task(approval, review.package, actor)
    _notify_author(review, decision, reason)
    return review


# (stage, decision) -> the notification its author gets.
_DECISION_NOTIFICATIONS = {
    (STAGE_SCRIPT, DECISION_APPROVE): notes.SCRIPT_APPROVED,
    (STAGE_SCRIPT, DECISION_REQUEST_CHANGES): notes.SCRIPT_CHANGES_REQUESTED,
    (STAGE_SCRIPT, DECISION_REJECT): notes.SCRIPT_REJECTED,
    (STAGE_PACKAGE, DECISION_APPROVE): notes.PACKAGE_APPROVED,
    (STAGE_PACKAGE, DECISION_REQUEST_CHANGES): notes.PACKAGE_CHANGES_REQUESTED,
    (STAGE_PACKAGE, DECISION_REJECT): notes.PACKAGE_REJECTED,
}


def _notify_author(review: Review, decision: str, reason: str) -> None:
    if review.stage == STAGE_SCRIPT:
        subject_id, title = review.script_id, review.script_revision.title
    else:
        subject_id, title = review.package_id, review.package.title
    notifications.notify(_DECISION_NOTIFICATIONS[(review.stage, decision)], [review.author_id],
                         object_type=review.stage, object_id=subject_id, params={"title": title, "reason": reason})


def _rendition_is_current(package) -> bool:
    from advisor_studio.video import services as video

    return video.rendition_is_current(package)


def live_approval(package) -> Approval | None:
    """The package's live approval (see compliance.approvals), if any."""
    return approvals.live_approvals_by_package([package.id]).get(package.id)


def void_approvals(package, actor, reason: str) -> list[Approval]:
    """Void every unvoided approval of a package (it changed, was withdrawn or expired)."""
    voided = []
    now = utcnow()
    for approval in db.session.scalars(sa.select(Approval).where(Approval.package_id == package.id,
                                                                 Approval.voided_at.is_(None))).all():
        # Voided once: of two requests voiding at the same moment, only one writes and audits it.
        if not compare_and_set(approval, [Approval.voided_at.is_(None)], voided_at=now, void_reason=reason[:500]):
            continue
        voided.append(approval)
        audit.record("approval.voided", "approval", approval.id, actor=actor, details={"reason": reason[:500]})
    return voided


def withdraw(package, actor, reason: str):
    """Compliance stops an approved package everywhere, with a reason."""
    from advisor_studio.studio import states
    from advisor_studio.studio.models import PKG_WITHDRAWN

    _require_officer(actor)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(_("A reason is required to withdraw a package."), fields={"reason": _("required")})
    states.transition_package(package, PKG_WITHDRAWN, actor, reason)
    void_approvals(package, actor, system_reasons.withdrawn(reason))
    return package


def expire_due_approvals(now=None) -> int:
    """Move approved packages whose approval period ended to ``expired``; return how many."""
    from advisor_studio.studio import states
    from advisor_studio.studio.models import PKG_APPROVED, PKG_EXPIRED, Package

    now = now or utcnow()
    stmt = (sa.select(Approval).join(Package, Package.id == Approval.package_id)
            .where(Approval.voided_at.is_(None), Approval.expires_at <= now, Package.status == PKG_APPROVED))
    count = 0
    for approval in db.session.scalars(stmt).all():
        package = db.session.get(Package, approval.package_id)
        try:
            states.transition_package(package, PKG_EXPIRED, "system", system_reasons.APPROVAL_PERIOD_ENDED,
                                      {"approval_id": approval.id})
        except Conflict:
            continue  # withdrawn or edited at this very moment: nothing left to expire (nothing was written)
        count += 1
    return count


def rescan_live_approvals(version: int) -> int:
    """Re-scan approved packages with lexicon ``version``; flag those with new blocking findings."""
    from advisor_studio.studio.models import PKG_APPROVED, Package

    flagged = 0
    live = approvals.live_approvals_by_package(db.session.scalars(
        sa.select(Package.id).where(Package.status == PKG_APPROVED).order_by(Package.id)).all())
    for package_id, approval in sorted(live.items()):
        package = db.session.get(Package, package_id)
        report = precheck_package(package, version=version)
        scan = record_scan("package", package.id, report)
        if report["blocking"] and approval.flagged_at is None:
            approval.flagged_at = utcnow()
            approval.flag_scan_id = scan.id
            flagged += 1
            db.session.flush()
            audit.record("approval.flagged", "approval", approval.id, actor="system",
                         details={"lexicon_version": version, "scan_id": scan.id})
    return flagged


def precheck_package(package, *, version: int | None = None) -> dict:
    """The pre-check of a package's texts for the platforms it targets (nothing stored)."""
    return scan_fields(package_fields(package), platforms=package_platforms(package), advisor=package.author,
                       version=version)


def queue_package_review(package, actor, report: dict) -> Review:
    """A package submission's one step in compliance: record its pre-check, pin the manifest (with its
    referral links) and open the final review, superseding an older open one."""
    scan = record_scan("package", package.id, report)
    manifest = package_manifest(package, report["lexicon_version"])
    return open_review(stage=STAGE_PACKAGE, script=package.script, revision=package.script_revision,
                       package=package, author=actor, manifest=manifest, scan=scan, priority=package.priority)


def subtitle_text(srt: str | None) -> str:
    """The words of an SRT file, one cue a line (what is scanned and compared); unparsable SRT as is."""
    from advisor_studio.video.srt import SubtitleError, parse_srt

    if not srt:
        return ""
    try:
        return "\n".join(cue.text for cue in parse_srt(srt))
    except SubtitleError:
        return srt


def package_fields(package) -> dict[str, str]:
    """The texts of a package that are scanned."""
    return {"title": package.title, "body": package.script_revision.body, "caption": package.caption,
            "hashtags": " ".join(f"#{t}" for t in package.hashtags or []),
            "subtitles": subtitle_text(package.subtitles_srt)}


def package_platforms(package) -> list[str]:
    """The platforms a package targets: those of its channels, else those of its script revision."""
    from advisor_studio.compliance.scanner import PLATFORMS

    # A channel on an unlisted ("other") platform is scanned with every rule (platform None, strictest).
    platforms = {c.platform if c.platform in PLATFORMS else None for c in package.channels}
    if None in platforms:
        return [None]
    return sorted(platforms) or list(package.script_revision.platforms or [])
