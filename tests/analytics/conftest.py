"""Builders of analytics test data: links, clicks and conversions through the real referral services.

Clicks are recorded with ``conversions.record_click`` (as seed-demo does, any day) or through the real
redirect (``/r/<code>``, today, which also gives HEAD and duplicate clicks); conversions through the
webhook's own service ``record_conversion``, so attribution, employees and customer links are real.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from advisor_studio.accounts.models import User
from advisor_studio.analytics.models import AdvisorDailyRollup, DailyRollup
from advisor_studio.extensions import db
from advisor_studio.referrals import conversions
from advisor_studio.referrals import services as referrals
from advisor_studio.referrals.models import Click, ReferralLink

DEST = "https://kaihu.example.com/open"
_keys = itertools.count(1)


def at(days_ago: int, hour: int = 10, minute: int = 0) -> datetime:
    """A UTC instant ``days_ago`` days before today, at hour:minute."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago) + timedelta(hours=hour, minutes=minute)


def new_link(owner_id: int, **kwargs) -> ReferralLink:
    """A link of ``owner_id`` (flushed); kwargs as referrals.services.create_link."""
    owner = db.session.get(User, owner_id)
    return referrals.create_link(owner=owner, destination=DEST, actor=owner, **kwargs)


def click(link: ReferralLink, when: datetime, visitor: str = "", *, bot: bool = False) -> Click:
    """One click on ``link`` at ``when`` (flushed)."""
    return conversions.record_click(link, at=when, visitor=visitor, is_bot=bot)


def event(ref: str, name: str, when: datetime, *, click_id: str | None = None, code: str | None = None,
          amount: str | None = None, employee: bool = False) -> dict:
    """Record one conversion through the webhook's service; its response body."""
    ev = conversions.Event(event=name, customer_ref=ref, occurred_at=when,
                           amount=Decimal(amount) if amount is not None else None, is_employee=employee,
                           click_id=click_id, referral_code=code)
    key = f"test-{next(_keys)}-{ref}-{name}"
    return conversions.record_conversion(ev, idempotency_key=key,
                                         digest=conversions.attribution.body_sha256(key.encode())).body


def journey(ref: str, first_click: Click, steps, *, employee: bool = False) -> None:
    """A customer's events after ``first_click``: steps are (event, hours after the click, amount)."""
    for index, (name, hours, amount) in enumerate(steps):
        event(ref, name, first_click.at + timedelta(hours=hours), click_id=first_click.click_id if index == 0 else None,
              amount=amount, employee=employee)


def rollup_snapshot() -> list[tuple]:
    """Every row of analytics_daily and of its advisor slices without its id (the table's name last),
    sorted: what 'the same rollups' means."""
    snapshot = []
    for model in (DailyRollup, AdvisorDailyRollup):
        columns = [c for c in model.__table__.columns if c.name != "id"]
        snapshot += [(*("" if v is None else str(v) for v in row), model.__tablename__)
                     for row in db.session.execute(sa.select(*columns))]
    return sorted(snapshot)


def make_channel_link(owner_id: int, platform: str = "douyin", partner: str = "星河MCN", **kwargs) -> ReferralLink:
    """A link of ``owner_id`` placed on a partner's channel (so platform, channel and partner are set)."""
    from tests.factories import make_channel

    return new_link(owner_id, channel=make_channel(partner, platform), **kwargs)


def make_group_link(owner_id: int, name: str = "价值投资交流群", **kwargs) -> ReferralLink:
    """A link of a new community group of ``owner_id``."""
    from advisor_studio.referrals import groups as group_services

    owner = db.session.get(User, owner_id)
    group = group_services.create_group(owner=owner, actor=owner, platform="wecom", name=name, external_id=None,
                                        member_count=50, tags="")
    return new_link(owner_id, group=group, **kwargs)


def traffic_batch(links: list[ReferralLink], batch: int, *, prefix: str = "") -> None:
    """A varied slice of traffic on ``links``: human, bot and repeated clicks over a few days, and
    customers who sign up, open (some rejected), fund (some withdraw) and trade; one employee.
    Deterministic per ``batch``; later batches also touch days that earlier ones already filled."""
    for index, link in enumerate(links):
        for day in range(batch, batch + 3):
            when = at(day + 2, hour=9 + index)
            first = click(link, when, visitor=f"{prefix}v{batch}-{index}-{day}")
            click(link, when + timedelta(minutes=5), visitor=f"{prefix}v{batch}-{index}-{day}")  # same visitor
            click(link, when + timedelta(minutes=7), visitor=f"{prefix}w{batch}-{index}-{day}")
            click(link, when + timedelta(minutes=9), visitor="crawler", bot=True)
            ref = f"{prefix}C{batch}-{index}-{day}"
            steps = [("signup", 0.1, None), ("account_opened", 3, None)]
            if day % 3 == 0:
                steps.append(("account_rejected", 30, None))
            else:
                steps.append(("funded", 26, "10000.50"))
                if day % 2 == 0:
                    steps.append(("withdrawal", 40, "2500.25"))
                steps.append(("first_trade", 45, None))
            journey(ref, first, steps, employee=(batch == 1 and index == 0 and day == batch))
    db.session.flush()
