"""Read-side queries of groups and links: filtered lists, click and conversion counts, daily clicks.

Counts come from the append-only Click and Conversion rows in a constant number of grouped queries
per page (not one per link), over the (link_id, day) indexes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so

from advisor_studio.accounts.models import User, UserRole
from advisor_studio.dbtypes import business_today
from advisor_studio.extensions import db
from advisor_studio.referrals.models import EVENTS, Click, CommunityGroup, Conversion, ReferralLink

CHART_DAYS = 30


@dataclass(frozen=True)
class LinkFilters:
    """The filters of a link list (and its CSV export): every one optional."""

    owner_id: int | None = None
    kind: str | None = None
    enabled: bool | None = None
    group_id: int | None = None
    package_id: int | None = None
    q: str = ""


def links_query(filters: LinkFilters) -> sa.Select:
    """Links matching ``filters``, newest first, with owner, group and package loaded."""
    stmt = (sa.select(ReferralLink)
            .options(so.joinedload(ReferralLink.owner), so.joinedload(ReferralLink.group),
                     so.joinedload(ReferralLink.package), so.joinedload(ReferralLink.channel))
            .order_by(ReferralLink.id.desc()))
    if filters.owner_id is not None:
        stmt = stmt.where(ReferralLink.owner_id == filters.owner_id)
    if filters.kind:
        stmt = stmt.where(ReferralLink.kind == filters.kind)
    if filters.enabled is not None:
        stmt = stmt.where(ReferralLink.enabled.is_(filters.enabled))
    if filters.group_id is not None:
        stmt = stmt.where(ReferralLink.group_id == filters.group_id)
    if filters.package_id is not None:
        stmt = stmt.where(ReferralLink.package_id == filters.package_id)
    if filters.q:
        stmt = stmt.where(sa.or_(ReferralLink.code.icontains(filters.q, autoescape=True),
                                 ReferralLink.campaign.icontains(filters.q, autoescape=True)))
    return stmt


def groups_query(*, owner_id: int | None = None, platform: str | None = None, archived: bool = False,
                 q: str = "") -> sa.Select:
    """Groups (live ones, or only archived ones), by name, with their owner loaded."""
    stmt = sa.select(CommunityGroup).options(so.joinedload(CommunityGroup.owner)).order_by(
        CommunityGroup.name, CommunityGroup.id)
    stmt = stmt.where(CommunityGroup.archived_at.is_not(None) if archived else CommunityGroup.archived_at.is_(None))
    if owner_id is not None:
        stmt = stmt.where(CommunityGroup.owner_id == owner_id)
    if platform:
        stmt = stmt.where(CommunityGroup.platform == platform)
    if q:
        stmt = stmt.where(sa.or_(CommunityGroup.name.icontains(q, autoescape=True),
                                 CommunityGroup.external_id.icontains(q, autoescape=True)))
    return stmt


def link_counts(link_ids) -> dict[int, dict]:
    """{link id: {"clicks": human clicks, "events": {event: count}}} in two grouped queries."""
    ids = list(link_ids)
    counts = {i: {"clicks": 0, "events": dict.fromkeys(EVENTS, 0)} for i in ids}
    if not ids:
        return counts
    clicks = sa.select(Click.link_id, sa.func.count()).where(
        Click.link_id.in_(ids), Click.is_bot.is_(False)).group_by(Click.link_id)
    for link_id, n in db.session.execute(clicks):
        counts[link_id]["clicks"] = n
    events = sa.select(Conversion.link_id, Conversion.event, sa.func.count()).where(
        Conversion.link_id.in_(ids)).group_by(Conversion.link_id, Conversion.event)
    for link_id, event, n in db.session.execute(events):
        counts[link_id]["events"][event] = n
    return counts


def daily_clicks(link_id: int, days: int = CHART_DAYS, today: date | None = None) -> list[tuple[date, int]]:
    """Human clicks of a link on each of the last ``days`` business days (zeros included), oldest first."""
    today = today or business_today()
    first = today - timedelta(days=days - 1)
    stmt = (sa.select(Click.day, sa.func.count()).where(Click.link_id == link_id, Click.is_bot.is_(False),
                                                        Click.day >= first)
            .group_by(Click.day))
    found = {day: n for day, n in db.session.execute(stmt)}
    return [(first + timedelta(days=i), found.get(first + timedelta(days=i), 0)) for i in range(days)]


def bar_chart(series: list[tuple[date, int]], width: int = 600, height: int = 160) -> dict:
    """Geometry of an inline SVG bar chart of ``series`` (no script, no CDN: CSP allows it as is)."""
    top = max((n for _day, n in series), default=0)
    slot = width / max(len(series), 1)
    bars = []
    for index, (day, n) in enumerate(series):
        bar_height = 0 if top == 0 else round((height - 20) * n / top, 1)
        bars.append({"x": round(index * slot + 1, 1), "y": round(height - 14 - bar_height, 1),
                     "w": round(max(slot - 2, 1), 1), "h": bar_height, "day": day, "n": n})
    return {"width": width, "height": height, "bars": bars, "max": top, "total": sum(n for _d, n in series)}


def advisors() -> list[User]:
    """Active advisors by name (the owner select of admin forms and filters)."""
    stmt = (sa.select(User).join(UserRole, UserRole.user_id == User.id)
            .where(UserRole.role == "advisor", User.active.is_(True)).order_by(User.name, User.id))
    return list(db.session.scalars(stmt).unique())


def active_groups_of(owner_id: int) -> list[CommunityGroup]:
    """The owner's live groups (the group select of the link forms)."""
    return list(db.session.scalars(groups_query(owner_id=owner_id).where(CommunityGroup.active.is_(True))))


def approved_packages_of(owner_id: int) -> list:
    """The owner's approved packages, newest first (the package select of the link forms)."""
    from advisor_studio.studio.models import PKG_APPROVED, Package

    stmt = (sa.select(Package).options(so.selectinload(Package.channels))
            .where(Package.author_id == owner_id, Package.status == PKG_APPROVED)
            .order_by(Package.id.desc()).limit(200))
    return list(db.session.scalars(stmt).unique())


def link_history(link: ReferralLink) -> list[ReferralLink]:
    """The links this one replaced and the ones that replaced it, oldest first (walks replaced_by_id)."""
    chain = [link]
    seen = {link.id}
    previous = db.session.scalar(sa.select(ReferralLink).where(ReferralLink.replaced_by_id == link.id))
    while previous is not None and previous.id not in seen and len(chain) < 100:
        chain.insert(0, previous)
        seen.add(previous.id)
        previous = db.session.scalar(sa.select(ReferralLink).where(ReferralLink.replaced_by_id == previous.id))
    current = link
    while current.replaced_by_id is not None and current.replaced_by_id not in seen and len(chain) < 200:
        current = db.session.get(ReferralLink, current.replaced_by_id)
        chain.append(current)
        seen.add(current.id)
    return chain
