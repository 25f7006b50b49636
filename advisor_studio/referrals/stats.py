"""Per-link totals of `flask links stats` (contract): clicks and conversions recorded so far.

Read-only and a handful of aggregate queries on indexed columns (clicks and conversions by link_id);
the analytics rollups will answer the same numbers for many links at once.
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from advisor_studio.extensions import db
from advisor_studio.referrals.models import Click, Conversion, ReferralLink

CENT = Decimal("0.01")


def _event_count(link_id: int, event: str) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Conversion)
                             .where(Conversion.link_id == link_id, Conversion.event == event)) or 0


def _event_sum(link_id: int, event: str) -> Decimal:
    total = db.session.scalar(sa.select(sa.func.sum(Conversion.amount))
                              .where(Conversion.link_id == link_id, Conversion.event == event))
    return Decimal(total or 0)


def link_stats(link: ReferralLink) -> dict:
    """The contract's JSON object for one link (drain the click spool first to include every click)."""
    human = sa.and_(Click.is_bot.is_(False), Click.is_head.is_(False))
    clicks, bot_clicks = db.session.execute(
        sa.select(sa.func.count().filter(human), sa.func.count().filter(sa.not_(human)))
        .where(Click.link_id == link.id)).one()
    # A visitor counts once per link per day: the hash's key changes every business day anyway.
    visitors = sa.select(Click.day, Click.visitor_hash).where(Click.link_id == link.id, human).distinct().subquery()
    unique_visitors = db.session.scalar(sa.select(sa.func.count()).select_from(visitors)) or 0
    opened = _event_count(link.id, "account_opened")
    # account_rejected reverses the account_opened of the same customer (nothing is deleted).
    opened_customers = sa.select(Conversion.customer_id).where(Conversion.link_id == link.id,
                                                               Conversion.event == "account_opened")
    rejected = db.session.scalar(
        sa.select(sa.func.count()).select_from(Conversion)
        .where(Conversion.link_id == link.id, Conversion.event == "account_rejected",
               Conversion.customer_id.in_(opened_customers))) or 0
    funded = _event_sum(link.id, "funded") - _event_sum(link.id, "withdrawal")
    return {
        "code": link.code,
        "clicks": int(clicks or 0),
        "bot_clicks": int(bot_clicks or 0),
        "unique_visitors": int(unique_visitors),
        "signups": _event_count(link.id, "signup"),
        "accounts_opened": max(0, opened - rejected),
        "funded_amount": str(funded.quantize(CENT)),
        "first_trades": _event_count(link.id, "first_trade"),
    }
