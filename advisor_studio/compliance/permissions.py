"""Named permission predicates of compliance, used by routes and templates alike."""

from __future__ import annotations


def _signed_in(user) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False))


def is_officer(user) -> bool:
    """Compliance officers work the queue, the approved list and the lexicon."""
    return _signed_in(user) and user.has_role("compliance")


def can_work_queue(user) -> bool:
    """Compliance officers see the review queue."""
    return is_officer(user)


def can_manage_lexicon(user) -> bool:
    """Compliance officers read and change the lexicon."""
    return is_officer(user)


def can_view_review(user, review) -> bool:
    """Compliance officers see every review; the author sees the reviews of their own submissions."""
    return _signed_in(user) and review is not None and (is_officer(user) or review.author_id == user.id)


def in_discussion(subject) -> bool:
    """Whether a script or package is still in discussion with compliance (studio.models *_IN_DISCUSSION)."""
    from advisor_studio.studio.models import PACKAGE_IN_DISCUSSION, SCRIPT_IN_DISCUSSION, Package

    if subject is None:
        return False
    return subject.status in (PACKAGE_IN_DISCUSSION if isinstance(subject, Package) else SCRIPT_IN_DISCUSSION)


def can_reply(user, subject) -> bool:
    """The author (still an advisor) answers comments on the review rounds of their own script or
    package while it is in discussion; approved, rejected, withdrawn or archived content takes no replies."""
    return (_signed_in(user) and subject is not None and subject.author_id == user.id and user.has_role("advisor")
            and in_discussion(subject))


def can_comment(user, review) -> bool:
    """Officers comment on any review; the author replies on their own while it is in discussion."""
    return _signed_in(user) and review is not None and (is_officer(user) or can_reply(user, review.subject))


def can_decide(user, review) -> bool:
    """An officer other than the author (four-eyes), who has not been an admin within
    ADMIN_REVIEW_COOLDOWN_DAYS (separation of duties), claims, releases and decides a review."""
    from advisor_studio.accounts.queries import held_admin_recently

    return (is_officer(user) and review is not None and review.author_id != user.id
            and not held_admin_recently(user))


def can_view_rendition(user, review) -> bool:
    """Whoever may see the review may play the rendition under review."""
    return can_view_review(user, review) and review.package_id is not None


def can_withdraw(user, package) -> bool:
    """Compliance officers withdraw approved packages."""
    return is_officer(user) and package is not None


def can_export_evidence(user, package=None) -> bool:
    """Compliance officers and admins download any package's evidence pack (the regulator's export)."""
    return _signed_in(user) and user.has_any_role("compliance", "admin")
