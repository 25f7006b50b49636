"""Read-side queries of distribution, shared by the partner API, the portal and compliance pages."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_babel import gettext as _

from advisor_studio.distribution.models import (
    ASSET_ENDED_STATUSES,
    ASSET_READY,
    ASSET_STATUSES,
    Assignment,
    Channel,
    Partner,
    Publication,
    Takedown,
)
from advisor_studio.errors import ValidationError
from advisor_studio.extensions import db

PAGE_DEFAULT = 20
PAGE_MAX = 100
_CURSOR_PREFIX = "a1:"


def encode_cursor(last_id: int) -> str:
    """An opaque cursor meaning "assets older than ``last_id``" (ids only grow, so it is stable under inserts)."""
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The id a cursor stands for; a ValidationError for anything this app did not hand out."""
    if cursor is None or cursor == "":
        return None
    try:
        if len(cursor) > 40:
            raise ValueError
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        if not text.startswith(_CURSOR_PREFIX) or not text[len(_CURSOR_PREFIX):].isdigit():
            raise ValueError
        value = int(text[len(_CURSOR_PREFIX):])
        if not 0 < value < 2**31:
            raise ValueError
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ValidationError(_("The cursor is not one this server handed out."),
                              fields={"cursor": _("invalid cursor")}) from None
    return value


def _asset_loads():
    from advisor_studio.studio.models import Package

    return (so.joinedload(Assignment.channel), so.joinedload(Assignment.approval),
            so.joinedload(Assignment.package).joinedload(Package.rendition),
            so.joinedload(Assignment.package).joinedload(Package.author),
            so.selectinload(Assignment.publications).joinedload(Publication.takedown))


def partner_assets(partner_id: int, *, status: str | None = None, channel_id: int | None = None,
                   before_id: int | None = None, limit: int = PAGE_DEFAULT) -> tuple[list[Assignment], int | None]:
    """One page of a partner's assets, newest first, and the id to continue before (None on the last page).

    Keyset pagination on ``id`` (never OFFSET): a deep page costs what the first one does.
    """
    if status is not None and status not in ASSET_STATUSES:
        raise ValidationError(_("Unknown status."), fields={"status": _("one of %(s)s", s=", ".join(ASSET_STATUSES))})
    limit = max(1, min(int(limit), PAGE_MAX))
    stmt = sa.select(Assignment).where(Assignment.partner_id == partner_id)
    if status is not None:
        stmt = stmt.where(Assignment.status == status)
    if channel_id is not None:
        stmt = stmt.where(Assignment.channel_id == channel_id)
    if before_id is not None:
        stmt = stmt.where(Assignment.id < before_id)
    rows = db.session.scalars(stmt.options(*_asset_loads()).order_by(Assignment.id.desc()).limit(limit + 1)
                              ).unique().all()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


def partner_asset(partner_id: int, asset_id: int) -> Assignment | None:
    """One asset of this partner, or None (another partner's asset does not exist for it)."""
    return db.session.scalar(sa.select(Assignment).where(Assignment.id == asset_id, Assignment.partner_id == partner_id)
                             .options(*_asset_loads()))


def partner_status_counts(partner_id: int, *, channel_id: int | None = None) -> dict[str, int]:
    """How many of a partner's assets are in each status (every status present, zero when none)."""
    stmt = (sa.select(Assignment.status, sa.func.count(Assignment.id)).where(Assignment.partner_id == partner_id)
            .group_by(Assignment.status))
    if channel_id is not None:
        stmt = stmt.where(Assignment.channel_id == channel_id)
    counts = dict.fromkeys(ASSET_STATUSES, 0)
    counts.update({status: n for status, n in db.session.execute(stmt).all()})
    return counts


def partner_channels(partner_id: int) -> list[Channel]:
    """A partner's channels (active or not: assets of a deactivated channel stay listed), by platform."""
    return db.session.scalars(sa.select(Channel).where(Channel.partner_id == partner_id)
                              .order_by(Channel.platform, Channel.handle, Channel.id)).all()


# Take-down state of one reported post. "not_needed": the asset is live; "outstanding": ended, not yet
# confirmed removed, deadline ahead; "overdue": the same past the deadline; "confirmed": removal confirmed.
TAKEDOWN_NOT_NEEDED = "not_needed"
TAKEDOWN_OUTSTANDING = "outstanding"
TAKEDOWN_OVERDUE = "overdue"
TAKEDOWN_CONFIRMED = "confirmed"
TAKEDOWN_STATES = (TAKEDOWN_NOT_NEEDED, TAKEDOWN_OUTSTANDING, TAKEDOWN_OVERDUE, TAKEDOWN_CONFIRMED)


def publication_takedown_state(publication: Publication, now: datetime | None = None) -> str:
    """Python twin of ``publication_state_clause`` for a publication with its assignment and take-down loaded."""
    from advisor_studio.dbtypes import utcnow

    now = now or utcnow()
    if publication.takedown is not None:
        return TAKEDOWN_CONFIRMED
    assignment = publication.assignment
    if assignment.status not in ASSET_ENDED_STATUSES:
        return TAKEDOWN_NOT_NEEDED
    due = assignment.takedown_due_at
    return TAKEDOWN_OVERDUE if due is not None and due <= now else TAKEDOWN_OUTSTANDING


def publication_state_clause(state: str, now: datetime | None = None) -> sa.ColumnElement[bool]:
    """SQL condition on ``Publication`` (joined to its ``Assignment``) for one take-down state."""
    from advisor_studio.dbtypes import utcnow

    now = now or utcnow()
    confirmed = sa.exists().where(Takedown.publication_id == Publication.id)
    ended = Assignment.status.in_(ASSET_ENDED_STATUSES)
    past_due = sa.and_(Assignment.takedown_due_at.is_not(None), Assignment.takedown_due_at <= now)
    return {
        TAKEDOWN_CONFIRMED: confirmed,
        TAKEDOWN_NOT_NEEDED: sa.and_(~confirmed, ~ended),
        TAKEDOWN_OVERDUE: sa.and_(~confirmed, ended, past_due),
        TAKEDOWN_OUTSTANDING: sa.and_(~confirmed, ended, ~past_due),
    }[state]


def partner_publications(partner_id: int, *, state: str | None = None, channel_id: int | None = None,
                         page: int = 1, per_page: int = PAGE_DEFAULT, now: datetime | None = None):
    """One page (Flask-SQLAlchemy Pagination) of a partner's reported posts, newest report first."""
    from advisor_studio.studio.models import Package

    stmt = (sa.select(Publication).join(Assignment, Assignment.id == Publication.assignment_id)
            .where(Publication.partner_id == partner_id, Assignment.partner_id == partner_id))
    if state is not None:
        stmt = stmt.where(publication_state_clause(state, now))
    if channel_id is not None:
        stmt = stmt.where(Assignment.channel_id == channel_id)
    stmt = stmt.options(so.contains_eager(Publication.assignment).options(
        so.joinedload(Assignment.channel),
        so.joinedload(Assignment.package).options(so.load_only(Package.id, Package.title),
                                                  so.lazyload(Package.author))),
        so.joinedload(Publication.takedown)).order_by(Publication.id.desc())
    return db.paginate(stmt, page=page, per_page=per_page, error_out=False, count=True)


def package_assignments(package_id: int) -> list[Assignment]:
    """Every assignment of a package (all approvals), newest first, with channel, partner and posts."""
    return db.session.scalars(
        sa.select(Assignment).where(Assignment.package_id == package_id)
        .options(so.joinedload(Assignment.channel).joinedload(Channel.partner),
                 so.selectinload(Assignment.publications).joinedload(Publication.takedown))
        .order_by(Assignment.id.desc())).unique().all()


def package_distribution(package_id: int, now: datetime | None = None) -> dict:
    """What the package pages show under "Distribution": its assignments with posts, and their states."""
    from advisor_studio.dbtypes import utcnow

    return {"assignments": package_assignments(package_id), "now": now or utcnow(),
            "state_of": publication_takedown_state}


def overdue_takedowns(now: datetime | None = None, *, limit: int = 50) -> list[Assignment]:
    """Ended assignments past their take-down deadline with a post not yet confirmed removed."""
    from advisor_studio.distribution.services import takedown_overdue_clause

    return db.session.scalars(
        sa.select(Assignment).where(takedown_overdue_clause(now))
        .options(so.joinedload(Assignment.channel).joinedload(Channel.partner), so.joinedload(Assignment.package),
                 so.selectinload(Assignment.publications).joinedload(Publication.takedown))
        .order_by(Assignment.takedown_due_at, Assignment.id).limit(limit)).unique().all()


def count_overdue_takedowns(now: datetime | None = None) -> int:
    """How many assignments ``overdue_takedowns`` would list without its limit."""
    from advisor_studio.distribution.services import takedown_overdue_clause

    return db.session.scalar(sa.select(sa.func.count(Assignment.id)).where(takedown_overdue_clause(now))) or 0


# --- admin pages: partners, channels, keys, members ---------------------------------------------------

def partners_page(*, q: str = "", active: bool | None = None, page: int = 1, per_page: int = 25):
    """Partners by name (a case-insensitive substring search), with their channel and key counts."""
    from advisor_studio.distribution.models import Partner

    stmt = sa.select(Partner).order_by(Partner.name, Partner.id)
    if q:
        stmt = stmt.where(Partner.name.icontains(q, autoescape=True))
    if active is not None:
        stmt = stmt.where(Partner.active.is_(active))
    return db.paginate(stmt.options(so.selectinload(Partner.channels)), page=page, per_page=per_page,
                       error_out=False)


def channels_page(*, partner_id: int | None = None, platform: str | None = None, active: bool | None = None,
                  page: int = 1, per_page: int = 25):
    """Channels with their partner, filtered, by partner name then platform and handle."""
    from advisor_studio.distribution.models import Partner

    stmt = (sa.select(Channel).join(Channel.partner).options(so.contains_eager(Channel.partner))
            .order_by(Partner.name, Channel.platform, Channel.handle, Channel.id))
    if partner_id is not None:
        stmt = stmt.where(Channel.partner_id == partner_id)
    if platform:
        stmt = stmt.where(Channel.platform == platform)
    if active is not None:
        stmt = stmt.where(Channel.active.is_(active))
    return db.paginate(stmt, page=page, per_page=per_page, error_out=False)


def partner_choices() -> list[tuple[int, str]]:
    """(id, name) of every partner, by name, for select boxes."""
    from advisor_studio.distribution.models import Partner

    return [(row.id, row.name) for row in db.session.execute(sa.select(Partner.id, Partner.name)
                                                             .order_by(Partner.name, Partner.id))]


def partner_keys(partner_id: int) -> list:
    """A partner's API keys, newest first, as (key, issued by, revoked by) with the users' names or None."""
    from advisor_studio.accounts.models import User
    from advisor_studio.distribution.models import PartnerApiKey

    issuer, revoker = so.aliased(User), so.aliased(User)
    return db.session.execute(
        sa.select(PartnerApiKey, issuer.name, revoker.name)
        .outerjoin(issuer, issuer.id == PartnerApiKey.created_by_id)
        .outerjoin(revoker, revoker.id == PartnerApiKey.revoked_by_id)
        .where(PartnerApiKey.partner_id == partner_id).order_by(PartnerApiKey.id.desc())).all()


def partner_members(partner_id: int) -> list:
    """The users who work for a partner, by name."""
    from advisor_studio.accounts.models import User

    return db.session.scalars(sa.select(User).where(User.partner_id == partner_id).order_by(User.name, User.id)).all()


def linkable_mcn_users() -> list:
    """Active mcn users who belong to no partner yet: the candidates of a partner's members section."""
    from advisor_studio.accounts.models import User, UserRole

    return db.session.scalars(
        sa.select(User).where(User.partner_id.is_(None), User.active.is_(True),
                              User.id.in_(sa.select(UserRole.user_id).where(UserRole.role == "mcn")))
        .order_by(User.name, User.id)).all()


LANDING_ITEMS = 5


def partner_landing(partner_id: int, now: datetime | None = None, *, limit: int = LANDING_ITEMS) -> dict:
    """The mcn landing card: the partner, its newest assets waiting to be published and the assets whose
    posts must come down (a few of each, with how many there are), in a fixed number of queries."""
    from advisor_studio.dbtypes import utcnow
    from advisor_studio.distribution.models import Partner
    from advisor_studio.studio.models import Package

    now = now or utcnow()

    def posts(state: str) -> int:
        return db.session.scalar(
            sa.select(sa.func.count(Publication.id)).join(Assignment, Assignment.id == Publication.assignment_id)
            .where(Publication.partner_id == partner_id, publication_state_clause(state, now))) or 0

    counts = partner_status_counts(partner_id)
    ready_items, _more = partner_assets(partner_id, status=ASSET_READY, limit=limit)
    owed = sa.or_(publication_state_clause(TAKEDOWN_OUTSTANDING, now), publication_state_clause(TAKEDOWN_OVERDUE, now))
    with_posts_owed = (sa.select(Publication.assignment_id).join(Assignment, Assignment.id == Publication.assignment_id)
                       .where(Publication.partner_id == partner_id, owed).correlate(None))
    takedown_items = db.session.scalars(
        sa.select(Assignment).where(Assignment.partner_id == partner_id, Assignment.id.in_(with_posts_owed))
        .options(so.joinedload(Assignment.channel),
                 so.joinedload(Assignment.package).options(so.load_only(Package.id, Package.title),
                                                           so.lazyload(Package.author)))
        .order_by(Assignment.takedown_due_at, Assignment.id).limit(limit)).unique().all()
    outstanding, overdue = posts(TAKEDOWN_OUTSTANDING), posts(TAKEDOWN_OVERDUE)
    return {"partner": db.session.get(Partner, partner_id), "assets": sum(counts.values()),
            "ready": counts[ASSET_READY], "ready_items": ready_items, "takedown_items": takedown_items,
            "to_take_down": outstanding + overdue, "overdue": overdue, "now": now}


def channel_groups() -> list[tuple[Partner, list[Channel]]]:
    """Active channels of active partners, grouped by partner (name order): what a package can target."""
    channels = db.session.scalars(
        sa.select(Channel).join(Partner).where(Channel.active.is_(True), Partner.active.is_(True))
        .options(so.contains_eager(Channel.partner))
        .order_by(Partner.name, Channel.platform, Channel.handle))
    groups: dict[int, tuple[Partner, list[Channel]]] = {}
    for channel in channels:
        groups.setdefault(channel.partner_id, (channel.partner, []))[1].append(channel)
    return list(groups.values())
