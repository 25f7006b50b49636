"""Crafted clicks and conversions for the fraud detection tests (rows written directly, every field chosen)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from advisor_studio.analytics.models import FraudFlag
from advisor_studio.extensions import db
from advisor_studio.referrals.models import Click, Conversion, Customer, ReferralLink

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
NET = "203.0.113.0/24"
_n = itertools.count(1)


def window(minutes: int = 120) -> tuple[datetime, datetime]:
    return T0 - timedelta(minutes=minutes), T0 + timedelta(minutes=minutes)


def add_click(link: ReferralLink, at: datetime, *, visitor: str | None = None, prefix: str | None = NET,
              device: str = "mobile", is_bot: bool = False) -> Click:
    n = next(_n)
    click = Click(click_id=f"c{n:020d}", at=at, day=at.date(), link_id=link.id, advisor_id=link.owner_id,
                  package_id=link.package_id, channel_id=link.channel_id, partner_id=link.partner_id,
                  group_id=link.group_id, campaign=link.campaign, is_bot=is_bot, is_head=False, is_duplicate=False,
                  in_app="wechat", device_class="bot" if is_bot else device,
                  visitor_hash=(visitor or f"v{n}").ljust(32, "0")[:32], ip_prefix=prefix)
    db.session.add(click)
    db.session.flush()
    return click


def add_conversion(link: ReferralLink | None, event: str, at: datetime, *, customer: Customer | None = None,
                   click: Click | None = None, is_employee: bool = False, referrer: Customer | None = None,
                   amount=None) -> Conversion:
    n = next(_n)
    if customer is None:
        customer = Customer(ref_hash=f"{n:064d}", link_id=getattr(link, "id", None),
                            click_id=click.click_id if click is not None else None, attributed_at=at,
                            is_employee=is_employee)
        db.session.add(customer)
        db.session.flush()
    conversion = Conversion(
        idempotency_key=f"k{n}", body_sha256="0" * 64, response={}, event=event, customer_id=customer.id,
        occurred_at=at, day=at.date(), amount=amount, currency="CNY", is_employee=is_employee,
        link_id=getattr(link, "id", None), advisor_id=getattr(link, "owner_id", None),
        package_id=getattr(link, "package_id", None), channel_id=getattr(link, "channel_id", None),
        partner_id=getattr(link, "partner_id", None), group_id=getattr(link, "group_id", None),
        campaign=getattr(link, "campaign", None), referrer_customer_id=getattr(referrer, "id", None))
    db.session.add(conversion)
    db.session.flush()
    return conversion


def flags(kind: str | None = None) -> list[FraudFlag]:
    stmt = sa.select(FraudFlag).order_by(FraudFlag.id)
    if kind:
        stmt = stmt.where(FraudFlag.kind == kind)
    return list(db.session.scalars(stmt))


def item_sets(flag: FraudFlag) -> tuple[set[int], set[int]]:
    return ({i.click_pk for i in flag.items if i.click_pk is not None},
            {i.conversion_pk for i in flag.items if i.conversion_pk is not None})
