"""Read models of the advisor side: the landing section, the "my content" overview and the
summaries the studio pages show (what blocks an item, the last reviewer word). Review rounds and
their comment threads are compliance's (compliance.queries.subject_reviews, comment_threads).

Nothing here changes state. Every function loads what a page needs in a fixed number of queries,
whatever the number of items (eager loads and one query per kind of related row).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_babel import gettext as _
from flask_sqlalchemy.pagination import SelectPagination

from advisor_studio.compliance import approvals
from advisor_studio.compliance.models import STAGE_PACKAGE, STAGE_SCRIPT, Approval, Review, ReviewComment, Scan
from advisor_studio.dbtypes import utcnow
from advisor_studio.extensions import db
from advisor_studio.studio.models import (
    PACKAGE_OPEN,
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
    SCRIPT_OPEN,
    SCRIPT_REJECTED,
    SCRIPT_SUBMITTED,
    Package,
    Script,
)
from advisor_studio.video.models import RENDER_FAILED, RENDER_QUEUED, RENDER_READY, RENDER_RUNNING, Rendition

EXPIRY_WARNING_DAYS = 14
LANDING_ITEMS = 5
EXCERPT_CHARS = 80

# The state filter of the lists: groups of statuses shared by scripts and packages.
STATE_GROUPS = {
    "action": tuple(dict.fromkeys((*SCRIPT_OPEN, *PACKAGE_OPEN))),  # same words for both kinds
    "review": (SCRIPT_SUBMITTED,),
    "approved": (SCRIPT_APPROVED,),
    "closed": (SCRIPT_REJECTED, SCRIPT_ARCHIVED, PKG_WITHDRAWN),
}


@dataclass
class Blocker:
    """What stands between an item and its next step: a stable code for tests and a sentence."""

    code: str
    text: str
    needs_me: bool = False


@dataclass
class Row:
    """One line of the "my content" table (a script or a package)."""

    kind: str
    obj: Script | Package
    blocker: Blocker
    last_word: str | None = None
    last_word_at: datetime | None = None
    extra: dict = field(default_factory=dict)


def my_scripts(user, *, q: str = "", status: str = "") -> sa.Select:
    """The advisor's own scripts, newest change first, optionally searched and filtered by status."""
    stmt = (sa.select(Script).where(Script.author_id == user.id)
            .options(so.lazyload(Script.author), so.selectinload(Script.latest_revision))
            .order_by(Script.updated_at.desc(), Script.id.desc()))
    if q:
        stmt = stmt.where(sa.or_(Script.title.icontains(q, autoescape=True),
                                 Script.caption.icontains(q, autoescape=True)))
    if status:
        stmt = stmt.where(Script.status == status)
    return stmt


def my_packages(user, *, q: str = "", status: str = "") -> sa.Select:
    """The advisor's own packages, newest change first, optionally searched and filtered by status."""
    stmt = (sa.select(Package).where(Package.author_id == user.id)
            .options(so.lazyload(Package.author), so.selectinload(Package.rendition),
                     so.selectinload(Package.channels))
            .order_by(Package.updated_at.desc(), Package.id.desc()))
    if q:
        stmt = stmt.where(Package.title.icontains(q, autoescape=True))
    if status:
        stmt = stmt.where(Package.status == status)
    return stmt


def packages_of_script(script: Script) -> list[Package]:
    """Every package made from ``script``, newest first."""
    return list(db.session.scalars(sa.select(Package).where(Package.script_id == script.id)
                                   .order_by(Package.created_at.desc())))


def excerpt(text: str | None, limit: int = EXCERPT_CHARS) -> str | None:
    """The first ``limit`` characters of ``text`` on one line."""
    if not text:
        return None
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def days_left(when: datetime | None, now: datetime | None = None) -> int | None:
    """Whole days (rounded up) until ``when``; 0 once it has passed."""
    if when is None:
        return None
    seconds = (when - (now or utcnow())).total_seconds()
    return max(0, math.ceil(seconds / 86400))


# --- related rows, loaded in bulk -----------------------------------------------------------------


def latest_renditions(package_ids) -> dict[int, Rendition]:
    """The newest rendition (any status) of each package."""
    ids = list(package_ids)
    if not ids:
        return {}
    newest = sa.select(sa.func.max(Rendition.id)).where(Rendition.package_id.in_(ids)).group_by(Rendition.package_id)
    return {r.package_id: r for r in db.session.scalars(sa.select(Rendition).where(Rendition.id.in_(newest)))}


def live_approvals(package_ids, now: datetime | None = None) -> dict[int, Approval]:
    """The live approval of each package that has one (the rule lives in compliance.approvals)."""
    return approvals.live_approvals_by_package(package_ids, now)


def _subject_filter(script_ids, package_ids):
    conds = []
    if script_ids:
        conds.append(sa.and_(Review.stage == STAGE_SCRIPT, Review.script_id.in_(list(script_ids))))
    if package_ids:
        conds.append(sa.and_(Review.stage == STAGE_PACKAGE, Review.package_id.in_(list(package_ids))))
    return sa.or_(*conds) if conds else None


def _subject_key(review: Review) -> tuple[str, int]:
    return ("package", review.package_id) if review.stage == STAGE_PACKAGE else ("script", review.script_id)


def last_decisions(script_ids, package_ids) -> dict[tuple[str, int], Review]:
    """The newest decided review of each script (pre-approval) and package (final approval)."""
    cond = _subject_filter(script_ids, package_ids)
    if cond is None:
        return {}
    stmt = (sa.select(Review).where(cond, Review.decision.is_not(None))
            .order_by(Review.decided_at, Review.id))
    return {_subject_key(r): r for r in db.session.scalars(stmt)}


def last_reviewer_comments(script_ids, package_ids) -> dict[tuple[str, int], ReviewComment]:
    """The newest comment written by someone other than the author, per script and package."""
    cond = _subject_filter(script_ids, package_ids)
    if cond is None:
        return {}
    rank = sa.func.row_number().over(partition_by=(Review.stage, Review.script_id, Review.package_id),
                                     order_by=ReviewComment.id.desc()).label("rank")
    ranked = (sa.select(ReviewComment.id, rank).join(Review, Review.id == ReviewComment.review_id)
              .where(cond, ReviewComment.author_id != Review.author_id).subquery())
    stmt = (sa.select(ReviewComment).join(ranked, ranked.c.id == ReviewComment.id).where(ranked.c.rank == 1)
            .options(so.joinedload(ReviewComment.review)))
    return {_subject_key(c.review): c for c in db.session.scalars(stmt)}


def package_counts(script_ids) -> dict[int, int]:
    """How many packages (not archived) were made from each script."""
    ids = list(script_ids)
    if not ids:
        return {}
    stmt = (sa.select(Package.script_id, sa.func.count()).where(Package.script_id.in_(ids),
                                                                Package.status != PKG_ARCHIVED)
            .group_by(Package.script_id))
    return dict(db.session.execute(stmt).all())


# --- what blocks an item -------------------------------------------------------------------------


def _with_reason(prefix: str, review: Review | None) -> str:
    reason = excerpt(review.reason) if review is not None else None
    return f"{prefix}: {reason}" if reason else prefix


def script_blocker(script: Script, decision: Review | None, packages_made: int = 0) -> Blocker:
    """What the author (or compliance) must do next with a script."""
    status = script.status
    if status == SCRIPT_DRAFT:
        if not (script.body or "").strip():
            return Blocker("write_body", _("write the script text"), True)
        return Blocker("ready_to_submit", _("draft: pre-check and submit it"), True)
    if status == SCRIPT_SUBMITTED:
        return Blocker("in_review", _("waiting for compliance"))
    if status == SCRIPT_CHANGES_REQUESTED:
        return Blocker("changes_requested", _with_reason(_("changes requested"), decision), True)
    if status == SCRIPT_APPROVED:
        if not packages_made:
            return Blocker("make_package", _("pre-approved: make a package from it"), True)
        return Blocker("approved", _("pre-approved"))
    if status == SCRIPT_REJECTED:
        return Blocker("rejected", _with_reason(_("rejected"), decision))
    return Blocker("archived", _("archived"))


def package_blocker(package: Package, decision: Review | None, latest: Rendition | None,
                    approval: Approval | None, now: datetime | None = None) -> Blocker:
    """What the author (or compliance) must do next with a package."""
    status = package.status
    if status in PACKAGE_OPEN:
        offered = package.rendition
        newer = latest is not None and latest.id != package.rendition_id
        if newer and latest.status in (RENDER_QUEUED, RENDER_RUNNING):
            return Blocker("rendering", _("the rendition is rendering (%(pct)d%%)", pct=int(latest.progress or 0)))
        if newer and latest.status == RENDER_FAILED and offered is None:
            return Blocker("render_failed", _("the render failed: upload the video again"), True)
        if newer and latest.status == RENDER_READY:
            return Blocker("offer_rendition", _("a finished rendition is waiting to be offered"), True)
        if offered is None or not offered.is_ready:
            return Blocker("needs_rendition", _("needs a rendition: upload the video"), True)
        if not package.channels:
            return Blocker("needs_channels", _("choose at least one MCN channel"), True)
        if status == PKG_CHANGES_REQUESTED:
            return Blocker("changes_requested", _with_reason(_("changes requested"), decision), True)
        if status == PKG_EXPIRED:
            return Blocker("expired", _("approval expired: submit it again for renewal"), True)
        return Blocker("ready_to_submit", _("ready to submit for review"), True)
    if status == PKG_SUBMITTED:
        return Blocker("in_review", _("waiting for compliance"))
    if status == PKG_APPROVED:
        left = days_left(approval.expires_at, now) if approval is not None else None
        if left is None:
            return Blocker("approved", _("approved"))
        if left <= EXPIRY_WARNING_DAYS:
            return Blocker("expires_soon", _("approval expires in %(n)d days", n=left), True)
        return Blocker("approved", _("approved; expires in %(n)d days", n=left))
    if status == PKG_REJECTED:
        return Blocker("rejected", _with_reason(_("rejected"), decision))
    if status == PKG_WITHDRAWN:
        return Blocker("withdrawn", _("withdrawn by compliance"))
    return Blocker("archived", _("archived"))


# --- my content ------------------------------------------------------------------------------------


def _row_key(kind: str, id_column):
    """One text column "kind:id": db.paginate yields the first column of each row, so a page of the
    union of scripts and packages is a page of these keys (Flask-SQLAlchemy's public API only)."""
    return (sa.literal(f"{kind}:") + sa.cast(id_column, sa.String)).label("key")


def _search(column, q: str):
    return column.icontains(q, autoescape=True) if q else sa.true()


def content_overview(user, *, q: str = "", kind: str = "", state: str = "", page: int = 1,
                     per_page: int = 25) -> SelectPagination:
    """Every script and package of ``user``, newest first, as ``Row`` items of one pagination."""
    statuses = STATE_GROUPS.get(state)
    parts = []
    for name, model in (("script", Script), ("package", Package)):
        if kind not in ("", name):
            continue
        stmt = sa.select(_row_key(name, model.id), sa.literal(name).label("kind"), model.id.label("id"),
                         model.updated_at.label("updated_at")).where(model.author_id == user.id,
                                                                     _search(model.title, q))
        parts.append(stmt.where(model.status.in_(statuses)) if statuses else stmt)
    union = sa.union_all(*parts).subquery()
    select = sa.select(union.c.key).order_by(union.c.updated_at.desc(), union.c.kind, union.c.id.desc())
    pagination = db.paginate(select, page=page, per_page=per_page, error_out=False)
    keys = [key.split(":", 1) for key in pagination.items]
    pagination.items = build_rows([(kind, int(ident)) for kind, ident in keys])
    return pagination


def build_rows(keys: list[tuple[str, int]]) -> list[Row]:
    """Load the scripts and packages named by ``keys`` with everything their row shows."""
    script_ids = [i for k, i in keys if k == "script"]
    package_ids = [i for k, i in keys if k == "package"]
    scripts = {s.id: s for s in db.session.scalars(
        sa.select(Script).where(Script.id.in_(script_ids))
        .options(so.lazyload(Script.author), so.selectinload(Script.latest_revision)))
    } if script_ids else {}
    packages = {p.id: p for p in db.session.scalars(
        sa.select(Package).where(Package.id.in_(package_ids))
        .options(so.lazyload(Package.author), so.selectinload(Package.rendition), so.selectinload(Package.channels)))
    } if package_ids else {}
    decisions = last_decisions(script_ids, package_ids)
    comments = last_reviewer_comments(script_ids, package_ids)
    made = package_counts(script_ids)
    renditions = latest_renditions(package_ids)
    approvals = live_approvals(package_ids)
    rows = []
    for kind, item_id in keys:
        decision, comment = decisions.get((kind, item_id)), comments.get((kind, item_id))
        if kind == "script":
            obj = scripts[item_id]
            blocker = script_blocker(obj, decision, made.get(item_id, 0))
            extra = {"revision": obj.latest_revision.number if obj.latest_revision else None}
        else:
            obj = packages[item_id]
            approval = approvals.get(item_id)
            blocker = package_blocker(obj, decision, renditions.get(item_id), approval)
            extra = {"expires_at": approval.expires_at if approval else None}
        word, at = _last_word(decision, comment)
        rows.append(Row(kind, obj, blocker, word, at, extra))
    return rows


def _last_word(decision: Review | None, comment: ReviewComment | None) -> tuple[str | None, datetime | None]:
    """The newer of the last decision reason and the last reviewer comment."""
    options = []
    if decision is not None and decision.reason:
        options.append((decision.decided_at, decision.reason))
    if comment is not None:
        options.append((comment.created_at, comment.body))
    if not options:
        return None, None
    at, text = max(options, key=lambda o: o[0])
    return excerpt(text), at


# --- lists -------------------------------------------------------------------------------------------


def package_list_extras(packages: list[Package]) -> dict[int, dict]:
    """For the packages list: the newest rendition and the live approval of each package."""
    ids = [p.id for p in packages]
    renditions, approvals = latest_renditions(ids), live_approvals(ids)
    return {pid: {"rendition": renditions.get(pid), "approval": approvals.get(pid)} for pid in ids}


# --- pages of one item -----------------------------------------------------------------------------


def latest_scan(subject_type: str, subject_id: int) -> Scan | None:
    """The newest stored pre-check of a package or a script revision."""
    stmt = (sa.select(Scan).where(Scan.subject_type == subject_type, Scan.subject_id == subject_id)
            .order_by(Scan.created_at.desc(), Scan.id.desc()))
    return db.session.scalars(stmt).first()


def latest_approval(package: Package) -> Approval | None:
    """The newest approval of a package, live or not (to show when and why it ended)."""
    stmt = sa.select(Approval).where(Approval.package_id == package.id).order_by(Approval.approved_at.desc(),
                                                                                  Approval.id.desc())
    return db.session.scalars(stmt).first()


# --- landing -----------------------------------------------------------------------------------------


def landing_data(user) -> dict:
    """Counts and items for the landing page section of this feature (empty when none apply)."""
    if not getattr(user, "is_authenticated", False) or not user.has_role("advisor"):
        return {}
    now = utcnow()
    open_scripts = list(db.session.scalars(
        sa.select(Script).where(Script.author_id == user.id,
                                Script.status.in_(SCRIPT_OPEN))
        .order_by(Script.updated_at.desc()).limit(50)))
    open_packages = list(db.session.scalars(
        sa.select(Package).where(Package.author_id == user.id,
                                 Package.status.in_(PACKAGE_OPEN))
        .options(so.selectinload(Package.rendition)).order_by(Package.updated_at.desc()).limit(50)))
    renditions = latest_renditions(p.id for p in open_packages)
    horizon = now + timedelta(days=EXPIRY_WARNING_DAYS)
    expiring = list(db.session.execute(
        sa.select(Package, Approval).join(Approval, Approval.package_id == Package.id)
        .where(Package.author_id == user.id, approvals.live_clause(now), Approval.expires_at <= horizon)
        .order_by(Approval.expires_at).limit(LANDING_ITEMS)).all())

    changes = [("script", s) for s in open_scripts if s.status == SCRIPT_CHANGES_REQUESTED]
    changes += [("package", p) for p in open_packages if p.status == PKG_CHANGES_REQUESTED]
    drafts = [("script", s) for s in open_scripts if s.status == SCRIPT_DRAFT]
    drafts += [("package", p) for p in open_packages if p.status == PKG_DRAFT]
    finished, failed = [], []
    for package in open_packages:
        latest = renditions.get(package.id)
        if latest is None or latest.id == package.rendition_id:
            continue
        if latest.status == RENDER_READY:
            finished.append(("package", package))
        elif latest.status == RENDER_FAILED:
            failed.append(("package", package))
    return {
        "advisor": True,
        "changes_requested": changes[:LANDING_ITEMS],
        "renders_finished": finished[:LANDING_ITEMS],
        "renders_failed": failed[:LANDING_ITEMS],
        "expiring": [{"package": p, "approval": a, "days": days_left(a.expires_at, now)} for p, a in expiring],
        "drafts": drafts[:LANDING_ITEMS],
        "counts": {"changes_requested": len(changes), "renders_finished": len(finished),
                   "renders_failed": len(failed), "expiring": len(expiring), "drafts": len(drafts)},
    }
