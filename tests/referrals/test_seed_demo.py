"""seed-demo's referral data: groups, package and group links, weeks of clicks and conversions made
through the services, once."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from advisor_studio import audit, demo
from advisor_studio.extensions import db
from advisor_studio.referrals.models import Click, CommunityGroup, Conversion, Customer, ReferralLink, SharingTask
from advisor_studio.studio.models import Package
from tests.factories import ensure_lexicon
from tests.studio.test_pages import approved_package


@pytest.fixture
def lexicon(app):
    with app.app_context():
        ensure_lexicon()
        db.session.commit()


def totals() -> dict:
    return {model.__name__: db.session.scalar(sa.select(sa.func.count()).select_from(model))
            for model in (CommunityGroup, ReferralLink, Click, Conversion, Customer, SharingTask)}


def test_demo_referrals_are_realistic_attributed_and_made_once(app, users, lexicon):
    email = users["advisor"].email
    with app.app_context():
        demo.ensure_groups(email)
        db.session.commit()
    package_id = approved_package(app, users["advisor"].id, users["compliance"].id)
    with app.app_context():
        demo.ensure_referrals(email, db.session.get(Package, package_id))
        db.session.commit()
        first = totals()
        assert first["CommunityGroup"] == 3 and first["SharingTask"] == 1
        assert first["Click"] > 500 and first["Conversion"] > 50 and first["Customer"] > 20
        kinds = set(db.session.scalars(sa.select(ReferralLink.kind).distinct()))
        assert kinds == {"package", "group", "customer"}
        days = db.session.scalar(sa.select(sa.func.count(sa.distinct(Click.day))))
        assert days >= 20  # a few weeks, every day
        events = set(db.session.scalars(sa.select(Conversion.event).distinct()))
        assert {"signup", "account_opened", "funded", "first_trade"} <= events
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Conversion).where(
            Conversion.advisor_id.is_(None))) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Conversion).where(
            Conversion.referrer_customer_id.is_not(None))) > 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Click).where(Click.is_bot.is_(True))) > 0
        demo.ensure_groups(email)
        demo.ensure_referrals(email, db.session.get(Package, package_id))
        db.session.commit()
        assert totals() == first
        assert audit.verify().ok
