"""The read side of compliance: the queries behind the queue, the approved list, the lexicon pages
and the landing page section. Nothing here changes state; every query is bounded (eager loads
and grouped counts), so a page costs the same number of SQL statements at any size."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_babel import gettext as _
from flask_babel import ngettext

from advisor_studio.accounts.models import User
from advisor_studio.compliance import approvals, reasons, services
from advisor_studio.compliance.highlight import mark_findings, usable_findings
from advisor_studio.compliance.models import (
    NOTE_ADD,
    NOTE_DEFAULT,
    NOTE_EDIT,
    NOTE_IMPORT,
    NOTE_IMPORT_FILE,
    NOTE_REMOVE,
    STAGE_PACKAGE,
    STAGE_SCRIPT,
    STAGES,
    Approval,
    LexiconRule,
    LexiconVersion,
    Review,
    ReviewComment,
)
from advisor_studio.compliance.permissions import can_comment, can_decide, is_officer
from advisor_studio.dbtypes import utcnow
from advisor_studio.extensions import db
from advisor_studio.studio.textdiff import side_by_side

AGE_BUCKETS = ("lt24", "24to72", "gt72")
# Fields a comment can be anchored to by selecting text (services.add_comment resolves them).
ANCHOR_FIELDS = ("title", "body", "caption")
SHOWN_FIELDS = ("title", "body", "caption", "hashtags")
EXPIRING_DAYS = 14
LANDING_ITEMS = 5


def _open():
    return sa.and_(Review.decision.is_(None), Review.superseded_at.is_(None))


def _json_list_has(column, value: str):
    """The JSON list in ``column`` contains ``value`` (a known identifier such as a platform name).

    Portable across SQLite and PostgreSQL: the JSON text holds each item as ``"value"``.
    """
    return sa.cast(column, sa.Text).like(f'%"{value}"%')


def _package_on_platform(package_id_column, platform: str):
    from advisor_studio.distribution.models import Channel
    from advisor_studio.studio.models import package_channels

    return sa.exists().where(package_channels.c.package_id == package_id_column,
                             package_channels.c.channel_id == Channel.id, Channel.platform == platform)


# --- queue --------------------------------------------------------------------------------------


def _user_light():
    """Load a user for display (name, email) without its roles and profile."""
    return (so.load_only(User.id, User.name, User.email), so.lazyload(User.role_rows),
            so.lazyload(User.advisor_profile))


def open_reviews_query(*, stage: str = "", platform: str = "", advisor_id: int | None = None,
                       older_than_hours: int | None = None, high_priority: bool = False,
                       overdue: bool = False, claimed_by_id: int | None = None, sort: str = "due",
                       now: datetime | None = None) -> sa.Select:
    """Ids of the open reviews matching the queue filters, in queue order.

    Only ids: sorting narrow rows keeps late pages cheap; ``load_queue_rows`` then loads one
    page with everything a row shows.
    """
    from advisor_studio.studio.models import ScriptRevision

    now = now or utcnow()
    stmt = sa.select(Review.id).where(_open())
    if stage in STAGES:
        stmt = stmt.where(Review.stage == stage)
    if platform:
        revision_has = sa.exists().where(ScriptRevision.id == Review.script_revision_id,
                                         _json_list_has(ScriptRevision.platforms, platform))
        stmt = stmt.where(sa.or_(
            sa.and_(Review.stage == STAGE_PACKAGE, _package_on_platform(Review.package_id, platform)),
            sa.and_(Review.stage != STAGE_PACKAGE, revision_has),
        ))
    if advisor_id:
        stmt = stmt.where(Review.author_id == advisor_id)
    if older_than_hours:
        stmt = stmt.where(Review.submitted_at < now - timedelta(hours=older_than_hours))
    if high_priority:
        stmt = stmt.where(Review.priority > 0)
    if overdue:
        stmt = stmt.where(Review.due_at < now)
    if claimed_by_id:
        stmt = stmt.where(Review.claimed_by_id == claimed_by_id, Review.claimed_until > now)
    order = {
        "priority": (Review.priority.desc(), Review.due_at, Review.id),
        "oldest": (Review.submitted_at, Review.id),
        "newest": (Review.submitted_at.desc(), Review.id.desc()),
    }.get(sort, (Review.due_at, Review.priority.desc(), Review.id))
    return stmt.order_by(*order)


def load_queue_rows(ids: list[int]) -> list[Review]:
    """The reviews with ``ids``, in that order, with author, claimer, revision and package channels loaded."""
    from advisor_studio.studio.models import Package, ScriptRevision

    if not ids:
        return []
    stmt = sa.select(Review).where(Review.id.in_(ids)).options(
        so.defer(Review.manifest), so.defer(Review.reason),
        so.joinedload(Review.author).options(*_user_light()),
        so.joinedload(Review.claimed_by).options(*_user_light()),
        so.joinedload(Review.script_revision).load_only(ScriptRevision.id, ScriptRevision.number,
                                                        ScriptRevision.title, ScriptRevision.platforms),
        so.joinedload(Review.package).options(
            so.load_only(Package.id, Package.title, Package.status, Package.priority),
            so.lazyload(Package.author),
            so.selectinload(Package.channels),
        ),
    )
    by_id = {review.id: review for review in db.session.scalars(stmt).unique()}
    return [by_id[i] for i in ids if i in by_id]


def paginate_open_reviews(*, page: int = 1, per_page: int, **filters):
    """One page of the queue: ids paginated in SQL, then that page's rows loaded eagerly."""
    page = db.paginate(open_reviews_query(**filters), page=page, per_page=per_page, error_out=False)
    page.items = load_queue_rows(list(page.items))
    return page


def queue_counts(now: datetime | None = None) -> dict:
    """Open reviews by stage and age bucket, and how many are past due, in one grouped query."""
    now = now or utcnow()
    bucket = sa.case(
        (Review.submitted_at < now - timedelta(hours=72), "gt72"),
        (Review.submitted_at < now - timedelta(hours=24), "24to72"),
        else_="lt24",
    ).label("bucket")
    overdue = sa.func.sum(sa.case((Review.due_at < now, 1), else_=0))
    rows = db.session.execute(
        sa.select(Review.stage, bucket, sa.func.count(), overdue).where(_open()).group_by(Review.stage, bucket))
    counts = {
        "total": 0, "overdue": 0,
        "by_stage": {stage: 0 for stage in STAGES},
        "overdue_by_stage": {stage: 0 for stage in STAGES},
        "by_age": {stage: {b: 0 for b in AGE_BUCKETS} for stage in STAGES},
    }
    for stage, age, count, late in rows:
        counts["total"] += count
        counts["overdue"] += late or 0
        counts["by_stage"][stage] = counts["by_stage"].get(stage, 0) + count
        counts["overdue_by_stage"][stage] = counts["overdue_by_stage"].get(stage, 0) + (late or 0)
        counts["by_age"].setdefault(stage, {b: 0 for b in AGE_BUCKETS})[age] += count
    return counts


def queue_advisors(limit: int = 500) -> list[tuple[int, str, int]]:
    """(id, name, open reviews) of every author with something in the queue, for the filter."""
    stmt = (sa.select(User.id, User.name, sa.func.count(Review.id))
            .join(Review, Review.author_id == User.id).where(_open())
            .group_by(User.id, User.name).order_by(User.name).limit(limit))
    return [tuple(row) for row in db.session.execute(stmt)]


# --- review page --------------------------------------------------------------------------------


def load_review(review_id: int) -> Review | None:
    """A review with its subject, people and comments loaded for the review page."""
    from advisor_studio.distribution.models import Channel
    from advisor_studio.studio.models import Package

    stmt = sa.select(Review).where(Review.id == review_id).options(
        so.joinedload(Review.author), so.joinedload(Review.claimed_by), so.joinedload(Review.decided_by),
        so.joinedload(Review.script_revision), so.joinedload(Review.script), so.joinedload(Review.scan),
        so.joinedload(Review.package).options(
            so.selectinload(Package.channels).joinedload(Channel.partner), so.joinedload(Package.rendition)),
        so.selectinload(Review.comments).joinedload(ReviewComment.author).options(*_user_light()),
    )
    return db.session.scalars(stmt).unique().one_or_none()


def approval_of(review: Review) -> Approval | None:
    """The approval a review granted, if it did."""
    return db.session.scalars(sa.select(Approval).where(Approval.review_id == review.id)).first()


# --- comment threads and rounds -----------------------------------------------------------------


@dataclass
class Thread:
    """A comment and the replies to it, each a thread of its own, oldest first."""

    comment: ReviewComment
    replies: list[Thread] = field(default_factory=list)


def comment_threads(comments: list[ReviewComment]) -> list[Thread]:
    """A review's comments as threads: each reply under the comment it answers, oldest first (a reply
    whose parent is not among ``comments`` starts a thread of its own)."""
    nodes = {c.id: Thread(c) for c in comments}
    roots: list[Thread] = []
    for comment in sorted(comments, key=lambda c: c.id):
        parent = nodes.get(comment.parent_id) if comment.parent_id else None
        (parent.replies if parent is not None else roots).append(nodes[comment.id])
    return roots


def subject_reviews(*, script_id: int | None = None, package_id: int | None = None) -> list[Review]:
    """Every round of a script's pre-approval (``script_id``) or of a package's final review
    (``package_id``), newest first, with comments, their authors and the deciding officer loaded:
    the same three statements however many rounds and comments there are."""
    stmt = sa.select(Review).options(
        so.selectinload(Review.comments).joinedload(ReviewComment.author).options(*_user_light()),
        so.joinedload(Review.decided_by).options(*_user_light()), so.joinedload(Review.script_revision))
    if package_id is not None:
        stmt = stmt.where(Review.stage == STAGE_PACKAGE, Review.package_id == package_id)
    else:
        stmt = stmt.where(Review.stage == STAGE_SCRIPT, Review.script_id == script_id)
    return list(db.session.scalars(stmt.order_by(Review.submitted_at.desc(), Review.id.desc())).unique())


@dataclass
class Round:
    """One earlier review of the same subject as shown on a later round's page."""

    number: int
    review: Review
    threads: list[Thread]
    reviewer_comments: int
    author_replies: int


def rounds_before(review: Review) -> list[Round]:
    """The earlier rounds of ``review``'s subject (decided, recalled or replaced), newest first,
    numbered from the first submission."""
    if review.stage == STAGE_PACKAGE:
        reviews = subject_reviews(package_id=review.package_id)
    else:
        reviews = subject_reviews(script_id=review.script_id)
    numbers = {r.id: n for n, r in enumerate(sorted(reviews, key=lambda r: r.id), start=1)}
    return [Round(numbers[r.id], r, comment_threads(list(r.comments)),
                  sum(1 for c in r.comments if c.author_id != r.author_id),
                  sum(1 for c in r.comments if c.author_id == r.author_id))
            for r in reviews if r.id < review.id]


def round_texts(review: Review) -> dict[str, str | None]:
    """The texts a round reviewed, as submitted (not as they are now); None where that text is not
    on record.

    A script round: its frozen revision. A package round: title, caption and hashtags from its
    manifest, the body of the script revision the manifest pins, and the subtitles the rendition it
    pins was rendered from (only when they hash to the manifest's subtitles hash).
    """
    from advisor_studio.studio.models import ScriptRevision
    from advisor_studio.studio.services import script_fields
    from advisor_studio.video.models import Rendition

    if review.stage != STAGE_PACKAGE:
        return script_fields(review.script_revision)
    manifest = review.manifest or {}
    revision = db.session.get(ScriptRevision, manifest.get("script_revision_id") or review.script_revision_id)
    rendition = db.session.get(Rendition, manifest.get("rendition_id") or 0)
    pinned = ((rendition.recipe or {}).get("request") if rendition is not None else None) or {}
    srt = pinned.get("subtitles_srt") or None  # the inputs the render was pinned to (video.services.recipe_inputs)
    subtitles = None
    if (hashlib.sha256(srt.encode()).hexdigest() if srt else None) == manifest.get("subtitles_sha256"):
        subtitles = services.subtitle_text(srt)
    hashtags = manifest.get("hashtags") if isinstance(manifest.get("hashtags"), list) else []
    return {"title": str(manifest.get("title") or ""), "body": revision.body if revision is not None else None,
            "caption": str(manifest.get("caption") or ""), "hashtags": " ".join(f"#{t}" for t in hashtags),
            "subtitles": subtitles}


DIFF_FIELDS = ("title", "body", "caption", "hashtags", "subtitles")
# What else a package round covers, named as "also changed" when it differs between two rounds
# (the subtitles only when their text is not on record for both rounds, so no diff shows them).
MANIFEST_ITEMS = ("rendition_sha256", "cover_sha256", "channel_ids", "referral_links", "lexicon_version",
                  "subtitles_sha256")


def changes_since(previous: Review, review: Review) -> dict:
    """What changed from the round ``previous`` saw to what ``review`` was submitted with: a
    side-by-side diff of each changed text, and the other manifest items that differ."""
    old, new = round_texts(previous), round_texts(review)
    diffs = [{"field": name, "rows": side_by_side(old[name], new[name])} for name in DIFF_FIELDS
             if old.get(name) is not None and new.get(name) is not None and old[name] != new[name]]
    others = []
    if review.stage == STAGE_PACKAGE:
        before, after = previous.manifest or {}, review.manifest or {}
        shown = {d["field"] for d in diffs}
        others = [item for item in MANIFEST_ITEMS if item in before and before.get(item) != after.get(item)
                  and not (item == "subtitles_sha256" and "subtitles" in shown)]
    return {"diffs": diffs, "others": others}


def previous_decided(rounds: list[Round]) -> Round | None:
    """The round whose decision the current one answers: the newest earlier round with a decision."""
    return next((r for r in rounds if r.review.decision is not None), None)


def _field_texts(review: Review) -> dict[str, str]:
    """The texts the pre-check scanned, keyed by field (the offsets of findings index these)."""
    from advisor_studio.studio.services import script_fields

    if review.stage == STAGE_PACKAGE and review.package is not None:
        return services.package_fields(review.package)
    return script_fields(review.script_revision)


def _subtitle_cues(review: Review, findings: list[dict], flagged: set[int]) -> list[dict]:
    """Cues of the package's subtitles, findings highlighted, lines not in the script flagged."""
    from advisor_studio.video.srt import SubtitleError, parse_srt

    package = review.package
    if package is None or not package.subtitles_srt:
        return []
    try:
        cues = parse_srt(package.subtitles_srt)
    except SubtitleError:
        return []
    rows, offset = [], 0
    titled = reasons.with_titles(findings)
    for number, cue in enumerate(cues, start=1):  # services.package_fields joins cue texts with "\n"
        rows.append({"number": number, "start": cue.start_s, "end": cue.end_s, "flagged": number in flagged,
                     "html": mark_findings(cue.text, titled, base=offset)})
        offset += len(cue.text) + 1
    return rows


def review_page(review: Review, user, now: datetime | None = None) -> dict:
    """Everything the review page shows: highlighted fields, findings, diff, video, comments, claim state."""
    from advisor_studio.compliance.models import Scan
    from advisor_studio.video import services as video_services
    from advisor_studio.video.models import Rendition

    now = now or utcnow()
    scan = review.scan
    stored = (scan.findings if scan is not None else None) or {}
    by_field = stored.get("fields") or {}
    texts = _field_texts(review)
    fields = []
    for name in SHOWN_FIELDS:
        text = texts.get(name) or ""
        fields.append({"name": name, "text": text, "anchorable": name in ANCHOR_FIELDS,
                       "html": mark_findings(text, reasons.with_titles(by_field.get(name) or [])),
                       "count": len(by_field.get(name) or [])})
    findings = [{**f, "field": name} for name in (*SHOWN_FIELDS, "subtitles") for f in by_field.get(name) or []]
    findings += [{**f, "field": ""} for f in stored.get("document") or []]
    flagged_lines = stored.get("subtitle_lines") or []
    cues = _subtitle_cues(review, usable_findings(texts.get("subtitles") or "", by_field.get("subtitles") or []),
                          {line.get("cue") for line in flagged_lines})

    rounds = rounds_before(review)
    previous = previous_decided(rounds)
    changes = changes_since(previous.review, review) if previous is not None else {"diffs": [], "others": []}

    rendition, inputs_hash = None, None
    if review.stage == STAGE_PACKAGE:
        rendition = db.session.get(Rendition, (review.manifest or {}).get("rendition_id") or 0)
        inputs_hash = video_services.current_recipe_hash(review.package)
    current_sha = services.manifest_hash(services.current_manifest(review))
    approval = approval_of(review) if review.decision == "approve" else None
    flag_scan = db.session.get(Scan, approval.flag_scan_id) if approval is not None and approval.flag_scan_id else None
    claimed = bool(review.claimed_by_id and review.claimed_until and review.claimed_until > now)
    return {
        "review": review, "fields": fields, "findings": findings, "cues": cues, "flagged_lines": flagged_lines,
        "scan": scan, "rounds": rounds, "round_number": (rounds[0].number if rounds else 0) + 1,
        "previous": previous, "diffs": changes["diffs"], "changed_items": changes["others"], "rendition": rendition,
        "inputs_hash": inputs_hash,
        "inputs_match": rendition is not None and inputs_hash is not None and rendition.recipe_hash == inputs_hash,
        "current_manifest_sha256": current_sha, "manifest_changed": current_sha != review.manifest_sha256,
        "approval": approval, "flag_scan": flag_scan, "threads": comment_threads(list(review.comments)),
        "now": now, "claimed": claimed, "claimed_by_me": claimed and review.claimed_by_id == user.id,
        "can_decide": can_decide(user, review) and review.is_open, "can_comment": can_comment(user, review),
    }


# --- approved list ------------------------------------------------------------------------------


def live_approvals_query(*, q: str = "", platform: str = "", flagged_only: bool = False,
                         expiring_only: bool = False, now: datetime | None = None) -> sa.Select:
    """Live approvals of packages, flagged ones first, then by expiry; rows eagerly loaded."""
    from advisor_studio.studio.models import Package

    now = now or utcnow()
    stmt = (sa.select(Approval).join(Package, Package.id == Approval.package_id)
            .join(User, User.id == Package.author_id)
            .where(approvals.live_clause(now))
            .options(so.joinedload(Approval.approved_by).options(*_user_light()),
                     so.joinedload(Approval.review).options(
                         so.load_only(Review.id, Review.package_id, Review.author_id, Review.stage),
                         so.joinedload(Review.author).options(*_user_light()),
                         so.joinedload(Review.package).options(
                             so.load_only(Package.id, Package.title, Package.status),
                             so.lazyload(Package.author), so.selectinload(Package.channels)))))
    if q:
        stmt = stmt.where(sa.or_(Package.title.icontains(q, autoescape=True), User.name.icontains(q, autoescape=True)))
    if platform:
        stmt = stmt.where(_package_on_platform(Package.id, platform))
    if flagged_only:
        stmt = stmt.where(Approval.flagged_at.is_not(None))
    if expiring_only:
        stmt = stmt.where(Approval.expires_at <= now + timedelta(days=EXPIRING_DAYS))
    return stmt.order_by(sa.case((Approval.flagged_at.is_not(None), 0), else_=1), Approval.expires_at,
                         Approval.id)


# --- lexicon ------------------------------------------------------------------------------------


def _in_version(version: int):
    return sa.and_(LexiconRule.added_in <= version,
                   sa.or_(LexiconRule.removed_in.is_(None), LexiconRule.removed_in > version))


def lexicon_rules_query(version: int, *, q: str = "", kind: str = "", category: str = "", severity: str = "",
                        platform: str = "") -> sa.Select:
    """Rules in force in ``version`` matching the filters: forbidden, then required, then allowed contexts."""
    stmt = sa.select(LexiconRule).where(_in_version(version))
    if q:
        stmt = stmt.where(sa.or_(LexiconRule.phrase.icontains(q, autoescape=True),
                                 LexiconRule.note.icontains(q, autoescape=True)))
    if kind:
        stmt = stmt.where(LexiconRule.kind == kind)
    if category:
        stmt = stmt.where(LexiconRule.category == category)
    if severity:
        stmt = stmt.where(LexiconRule.severity == severity)
    if platform:
        # A rule without platforms applies everywhere.
        stmt = stmt.where(sa.or_(_json_list_has(LexiconRule.platforms, platform),
                                 sa.cast(LexiconRule.platforms, sa.Text).not_like('%"%')))
    kind_order = sa.case((LexiconRule.kind == "forbidden", 0), (LexiconRule.kind == "required", 1), else_=2)
    return stmt.order_by(kind_order, LexiconRule.category, LexiconRule.phrase, LexiconRule.id)


def lexicon_categories(version: int) -> list[str]:
    """The categories used in ``version``."""
    stmt = (sa.select(LexiconRule.category).where(_in_version(version), LexiconRule.category != "")
            .distinct().order_by(LexiconRule.category))
    return list(db.session.scalars(stmt))


def lexicon_versions_query() -> sa.Select:
    """Lexicon versions, newest first."""
    return sa.select(LexiconVersion).order_by(LexiconVersion.number.desc())


def version_note(version: LexiconVersion) -> str:
    """What made a lexicon version, in the reader's language: the system's notes are stored as a code
    with parameters and worded here; a typed note, and every note stored before codes, as written."""
    args = version.note_args if isinstance(version.note_args, dict) else {}

    def arg(name: str) -> str:
        value = args.get(name)
        return value if isinstance(value, str) else ""

    code = version.note_code
    if code == NOTE_DEFAULT:
        return _("Default lexicon loaded")
    if code == NOTE_ADD and arg("phrase"):
        return _("Added “%(phrase)s”", phrase=arg("phrase"))
    if code == NOTE_EDIT and arg("phrase"):
        return _("Edited “%(phrase)s”", phrase=arg("phrase"))
    if code == NOTE_REMOVE and arg("phrase"):
        return _("Removed “%(phrase)s”: %(reason)s", phrase=arg("phrase"), reason=arg("reason"))
    if code == NOTE_IMPORT and isinstance(args.get("rows"), int):
        return ngettext("Imported %(num)d row", "Imported %(num)d rows", args["rows"])
    if code == NOTE_IMPORT_FILE and arg("file"):
        return _("Imported from %(file)s", file=arg("file"))
    return version.note or ""


def user_names(ids) -> dict[int, str]:
    """Names of the users with ``ids`` in one query."""
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return dict(db.session.execute(sa.select(User.id, User.name).where(User.id.in_(ids))).all())


def export_rows(version: int) -> list[list[str]]:
    """The rules of ``version`` as CSV rows in the import format (so an export re-imports unchanged)."""
    rows = [["phrase", "kind", "severity", "note", "category", "platforms", "group", "suggestion"]]
    for rule in services.rules_in_version(version):
        rows.append([rule.phrase, rule.kind, rule.severity or "", rule.note or "", rule.category or "",
                     "|".join(sorted(rule.platforms or [])), rule.group or "", rule.suggestion or ""])
    return rows


# --- landing page -------------------------------------------------------------------------------


def landing_data(user) -> dict:
    """Counts and items for the landing page section of this feature (empty when none apply)."""
    if not is_officer(user):
        return {}
    from advisor_studio.studio.models import Package

    now = utcnow()
    overdue_ids = list(db.session.scalars(open_reviews_query(overdue=True, now=now).limit(LANDING_ITEMS)))
    live = approvals.live_clause(now)
    base = sa.select(Approval).join(Package, Package.id == Approval.package_id).where(live)
    counted = db.session.execute(
        sa.select(sa.func.count(Approval.flagged_at),
                  sa.func.sum(sa.case((Approval.expires_at <= now + timedelta(days=EXPIRING_DAYS), 1), else_=0)))
        .join(Package, Package.id == Approval.package_id).where(live)).one()
    eager = (so.joinedload(Approval.review).options(
        so.load_only(Review.id, Review.package_id),
        so.joinedload(Review.package).options(so.load_only(Package.id, Package.title), so.lazyload(Package.author))),)
    flagged = db.session.scalars(base.where(Approval.flagged_at.is_not(None)).options(*eager)
                                 .order_by(Approval.flagged_at.desc()).limit(LANDING_ITEMS)).all()
    expiring = db.session.scalars(base.where(Approval.expires_at <= now + timedelta(days=EXPIRING_DAYS))
                                  .options(*eager).order_by(Approval.expires_at).limit(LANDING_ITEMS)).all()
    from advisor_studio.integrity.queries import open_alerts_summary

    integrity_count, integrity_alerts = open_alerts_summary(LANDING_ITEMS)
    from advisor_studio.distribution import queries as distribution_queries

    return {
        "takedowns": {"count": distribution_queries.count_overdue_takedowns(now),
                      "rows": distribution_queries.overdue_takedowns(now, limit=LANDING_ITEMS)},
        "now": now,
        "integrity_count": integrity_count,
        "integrity_alerts": integrity_alerts,
        "counts": queue_counts(now),
        "overdue_items": load_queue_rows(overdue_ids),
        "flagged_count": counted[0] or 0,
        "flagged": flagged,
        "expiring_count": counted[1] or 0,
        "expiring": expiring,
        "expiring_days": EXPIRING_DAYS,
    }
