"""Fixtures of distribution tests: an approved package assigned to a partner's channel."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from advisor_studio.distribution.models import Assignment
from advisor_studio.extensions import db
from tests.studio.test_pages import approved_package


@pytest.fixture
def approved(app, users):
    """(package id, assignment id) of an approved package assigned to 星河MCN's douyin channel."""
    package_id = approved_package(app, users["advisor"].id, users["compliance"].id)
    with app.app_context():
        assignment = db.session.scalars(sa.select(Assignment).where(Assignment.package_id == package_id)).one()
        return package_id, assignment.id
