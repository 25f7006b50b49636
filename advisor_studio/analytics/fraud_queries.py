"""Read side of fraud flags: the filtered list, item counts and a flag's items (constant query counts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
import sqlalchemy.orm as so

from advisor_studio.accounts.models import User, UserRole
from advisor_studio.analytics.models import FraudFlag, FraudFlagItem
from advisor_studio.extensions import db
from advisor_studio.referrals.models import Click, Conversion, ReferralLink

ITEMS_SHOWN = 200  # per kind of item on a flag's page; the page says how many more there are


@dataclass(frozen=True)
class FlagFilters:
    """What the list is narrowed to; None means any."""

    status: str | None = None
    kind: str | None = None
    advisor_id: int | None = None
    day_from: date | None = None
    day_to: date | None = None


def _covers_advisor(advisor_id: int):
    # A flag names one advisor when its items all belong to one; a network or signup burst over several
    # advisors' links still shows under each of them.
    via_clicks = sa.exists().where(FraudFlagItem.flag_id == FraudFlag.id, FraudFlagItem.click_pk == Click.id,
                                   Click.advisor_id == advisor_id)
    via_conversions = sa.exists().where(FraudFlagItem.flag_id == FraudFlag.id,
                                        FraudFlagItem.conversion_pk == Conversion.id,
                                        Conversion.advisor_id == advisor_id)
    return sa.or_(FraudFlag.advisor_id == advisor_id, via_clicks, via_conversions)


def flags_query(filters: FlagFilters) -> sa.Select:
    """Flags matching ``filters``, newest day first, with the advisor loaded."""
    stmt = sa.select(FraudFlag).options(so.joinedload(FraudFlag.advisor))
    if filters.status:
        stmt = stmt.where(FraudFlag.status == filters.status)
    if filters.kind:
        stmt = stmt.where(FraudFlag.kind == filters.kind)
    if filters.advisor_id is not None:
        stmt = stmt.where(_covers_advisor(filters.advisor_id))
    if filters.day_from is not None:
        stmt = stmt.where(FraudFlag.day >= filters.day_from)
    if filters.day_to is not None:
        stmt = stmt.where(FraudFlag.day <= filters.day_to)
    return stmt.order_by(FraudFlag.day.desc(), FraudFlag.id.desc())


def item_counts(flag_ids: list[int]) -> dict[int, tuple[int, int]]:
    """(clicks, conversions) covered by each flag, in one query."""
    if not flag_ids:
        return {}
    rows = db.session.execute(
        sa.select(FraudFlagItem.flag_id, sa.func.count(FraudFlagItem.click_pk),
                  sa.func.count(FraudFlagItem.conversion_pk))
        .where(FraudFlagItem.flag_id.in_(flag_ids)).group_by(FraudFlagItem.flag_id))
    counts = {flag_id: (clicks, conversions) for flag_id, clicks, conversions in rows}
    return {flag_id: counts.get(flag_id, (0, 0)) for flag_id in flag_ids}


def advisors() -> list[User]:
    """Every advisor, by name, for the advisor filter."""
    return list(db.session.scalars(sa.select(User).join(UserRole, UserRole.user_id == User.id)
                                   .where(UserRole.role == "advisor").order_by(User.name, User.id)))


def flag_clicks(flag: FraudFlag, limit: int = ITEMS_SHOWN) -> list:
    """The first ``limit`` clicks a flag covers, with their link's code."""
    return db.session.execute(
        sa.select(Click, ReferralLink.code).join(FraudFlagItem, FraudFlagItem.click_pk == Click.id)
        .join(ReferralLink, ReferralLink.id == Click.link_id)
        .where(FraudFlagItem.flag_id == flag.id).order_by(Click.at, Click.id).limit(limit)).all()


def flag_conversions(flag: FraudFlag, limit: int = ITEMS_SHOWN) -> list:
    """The first ``limit`` conversions a flag covers, with their link's code (None: unattributed)."""
    return db.session.execute(
        sa.select(Conversion, ReferralLink.code).join(FraudFlagItem, FraudFlagItem.conversion_pk == Conversion.id)
        .outerjoin(ReferralLink, ReferralLink.id == Conversion.link_id)
        .where(FraudFlagItem.flag_id == flag.id).order_by(Conversion.occurred_at, Conversion.id).limit(limit)).all()
