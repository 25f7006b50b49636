"""Fixtures of referral tests: advisors' groups and links made through the services."""

from __future__ import annotations

import pytest

from advisor_studio.accounts.models import User
from advisor_studio.extensions import db
from advisor_studio.referrals import groups as group_services
from advisor_studio.referrals import services

DEST = "https://kaihu.example.com/open"


def make_group(app, owner_id: int, name: str = "价值投资交流群", platform: str = "wecom", external_id=None,
               member_count: int = 120) -> int:
    """A committed group of ``owner_id``; its id."""
    with app.app_context():
        owner = db.session.get(User, owner_id)
        group = group_services.create_group(owner=owner, actor=owner, platform=platform, name=name,
                                            external_id=external_id, member_count=member_count, tags="老客户")
        db.session.commit()
        return group.id


def make_link(app, owner_id: int, **kwargs) -> tuple[int, str]:
    """A committed general (or group, with group_id=) link of ``owner_id``: (id, code)."""
    from advisor_studio.referrals.models import CommunityGroup

    with app.app_context():
        owner = db.session.get(User, owner_id)
        group_id = kwargs.pop("group_id", None)
        group = db.session.get(CommunityGroup, group_id) if group_id else None
        link = services.create_link(owner=owner, actor=owner, destination=kwargs.pop("destination", DEST),
                                    group=group, **kwargs)
        db.session.commit()
        return link.id, link.code


@pytest.fixture
def group_id(app, users) -> int:
    return make_group(app, users["advisor"].id)


@pytest.fixture
def link(app, users) -> tuple[int, str]:
    return make_link(app, users["advisor"].id, campaign="双十一")
