"""Package links (one per target channel, part of the approval manifest) and sharing tasks ("share to
your groups": one prepared group link per active group when a package is approved). Services flush,
never commit, and write the audit entry."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from advisor_studio import audit
from advisor_studio.concurrency import compare_and_set
from advisor_studio.dbtypes import utcnow
from advisor_studio.errors import Conflict, PermissionDenied
from advisor_studio.extensions import db
from advisor_studio.referrals import services
from advisor_studio.referrals.models import LINK_GROUP, LINK_PACKAGE, CommunityGroup, ReferralLink, SharingTask


def default_destination() -> str:
    """The account-opening page links made by the system lead to (REFERRAL_DEFAULT_DESTINATION)."""
    return current_app.config["REFERRAL_DEFAULT_DESTINATION"]


# --- package links ------------------------------------------------------------------------------


def package_links(package) -> dict[int, ReferralLink]:
    """The live package link of each channel of ``package`` that has one (the newest wins)."""
    channel_ids = [c.id for c in package.channels]
    if package.id is None or not channel_ids:
        return {}
    stmt = (sa.select(ReferralLink).where(ReferralLink.package_id == package.id, ReferralLink.kind == LINK_PACKAGE,
                                          ReferralLink.channel_id.in_(channel_ids), services.link_live_clause())
            .order_by(ReferralLink.id))
    return {link.channel_id: link for link in db.session.scalars(stmt)}


def ensure_package_links(package, actor) -> list[ReferralLink]:
    """One live package link per target channel, created where missing (at submission for review)."""
    existing = package_links(package)
    links = []
    for channel in sorted(package.channels, key=lambda c: c.id):
        link = existing.get(channel.id)
        if link is None:
            link = services.create_link(owner=package.author, destination=default_destination(), actor=actor,
                                        package=package, channel=channel, kind=LINK_PACKAGE,
                                        utm={"utm_source": channel.platform, "utm_medium": "mcn"})
        links.append(link)
    return links


def manifest_links(package) -> list[dict]:
    """What the approval manifest pins of the package's links: channel, code and destination."""
    return [{"channel_id": channel_id, "code": link.code, "destination": link.destination}
            for channel_id, link in sorted(package_links(package).items())]


# --- sharing tasks ------------------------------------------------------------------------------


def active_groups(advisor_id: int) -> list[CommunityGroup]:
    """The advisor's groups that take new links (active, not archived)."""
    return list(db.session.scalars(sa.select(CommunityGroup).where(
        CommunityGroup.owner_id == advisor_id, CommunityGroup.active.is_(True),
        CommunityGroup.archived_at.is_(None)).order_by(CommunityGroup.id)))


def group_link(package, group: CommunityGroup, actor) -> ReferralLink:
    """The live link of ``group`` for ``package``, created if there is none."""
    link = db.session.scalar(sa.select(ReferralLink).where(
        ReferralLink.package_id == package.id, ReferralLink.group_id == group.id, ReferralLink.kind == LINK_GROUP,
        services.link_live_clause()).order_by(ReferralLink.id.desc()).limit(1))
    if link is None:
        link = services.create_link(owner=package.author, destination=default_destination(), actor=actor,
                                    package=package, group=group, kind=LINK_GROUP,
                                    utm={"utm_source": group.platform, "utm_medium": "community"})
    return link


def create_sharing_task(approval, package, actor) -> SharingTask:
    """The author's "share to your groups" task for a new approval, with one link per active group."""
    task = db.session.scalar(sa.select(SharingTask).where(SharingTask.approval_id == approval.id))
    if task is not None:
        return task
    links = [group_link(package, group, actor) for group in active_groups(package.author_id)]
    task = SharingTask(advisor_id=package.author_id, package_id=package.id, approval_id=approval.id, links=links)
    db.session.add(task)
    db.session.flush()
    audit.record("sharing_task.created", "sharing_task", task.id, actor=actor,
                 details={"package_id": package.id, "approval_id": approval.id, "link_ids": [x.id for x in links]})
    return task


def can_work_on(user, task: SharingTask) -> bool:
    """Only the advisor a task was made for opens it and marks it done."""
    return user is not None and getattr(user, "id", None) == task.advisor_id


def mark_opened(task: SharingTask, actor) -> bool:
    """Record the first time the advisor opened the task; True when this call recorded it."""
    if not can_work_on(actor, task):
        raise PermissionDenied(_("This task is another advisor's."))
    if task.opened_at is not None:
        return False
    if not compare_and_set(task, [SharingTask.opened_at.is_(None)], opened_at=utcnow()):
        return False  # opened in another tab at the same moment: recorded once
    audit.record("sharing_task.opened", "sharing_task", task.id, actor=actor, details={"package_id": task.package_id})
    return True


def mark_done(task: SharingTask, actor) -> SharingTask:
    """The advisor says the content was shared; recorded once."""
    if not can_work_on(actor, task):
        raise PermissionDenied(_("This task is another advisor's."))
    now = utcnow()
    if not compare_and_set(task, [SharingTask.done_at.is_(None)], done_at=now,
                           opened_at=task.opened_at or now):
        raise Conflict(_("This task is already marked done."), code="already_done")
    audit.record("sharing_task.done", "sharing_task", task.id, actor=actor, details={"package_id": task.package_id})
    return task


def share_message(caption: str, link: ReferralLink) -> str:
    """The copyable message: the approved caption and the link's public address, nothing else."""
    return f"{caption.strip()}\n{services.public_url(link)}"


def approved_referral_url(approval, channel_id: int) -> str:
    """The public URL of the package link the approval pinned for ``channel_id`` ("" when it pinned none,
    as approvals made before package links existed): what a partner posts is what was approved."""
    for item in (approval.manifest or {}).get("referral_links") or []:
        if item.get("channel_id") == channel_id and item.get("code"):
            return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + "/r/" + item["code"]
    return ""
