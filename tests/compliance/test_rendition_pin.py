"""Compliance's side of the rendition pin: the approval manifest carries the rendition's recipe hash,
a rendition that no longer matches the package's inputs cannot be approved, and the review page shows
whether the video was made from exactly the inputs under review."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from advisor_studio.compliance import services as compliance
from advisor_studio.compliance.models import Approval, Review
from advisor_studio.errors import Conflict
from advisor_studio.extensions import db
from advisor_studio.studio.models import Package
from advisor_studio.video import services as video
from tests.compliance.test_review_pages import _page, people, submit_package, user  # noqa: F401
from tests.conftest import signed_in


def _publish_new_disclaimer(app, officer) -> None:
    """Compliance changes the burned-in disclaimer: every existing rendition now has an outdated one."""
    with app.app_context():
        video.set_disclaimer("投资有风险，入市需谨慎。本视频不构成任何投资建议。", user(officer))
        db.session.commit()


def test_approval_manifest_records_the_renditions_recipe_hash(app, people):  # noqa: F811
    package_id, review_id = submit_package(app, people["advisor"], people["compliance"])
    with app.app_context():
        review = db.session.get(Review, review_id)
        compliance.claim(review, user(people["officer2"]))
        compliance.decide(review, user(people["officer2"]), "approve")
        db.session.commit()
        package = db.session.get(Package, package_id)
        approval = db.session.scalars(sa.select(Approval).where(Approval.package_id == package_id)).one()
        assert approval.manifest["rendition_recipe_hash"] == package.rendition.recipe_hash
        assert approval.manifest["rendition_recipe_hash"] == video.current_recipe_hash(package)


def test_officer_cannot_approve_a_rendition_that_no_longer_matches_the_inputs(app, people):  # noqa: F811
    package_id, review_id = submit_package(app, people["advisor"], people["compliance"])
    with app.app_context():
        review = db.session.get(Review, review_id)
        compliance.claim(review, user(people["officer2"]))
        db.session.commit()
    _publish_new_disclaimer(app, people["compliance"])
    with app.app_context():
        review = db.session.get(Review, review_id)
        with pytest.raises(Conflict) as caught:
            compliance.decide(review, user(people["officer2"]), "approve")
        assert caught.value.code == "rendition_stale" and caught.value.status == 409
        db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Approval)
                                 .where(Approval.package_id == package_id)) == 0
        assert db.session.get(Package, package_id).status == "submitted"
        # Asking for changes is still possible: that is how the author gets to render again.
        review = db.session.get(Review, review_id)
        compliance.decide(review, user(people["officer2"]), "request_changes", "请按新的风险提示重新生成成片")
        db.session.commit()
        assert db.session.get(Package, package_id).status == "changes_requested"


def test_review_page_shows_the_rendition_was_made_from_exactly_these_inputs(app, people):  # noqa: F811
    package_id, review_id = submit_package(app, people["advisor"], people["compliance"])
    with app.app_context():
        package = db.session.get(Package, package_id)
        recipe_hash = package.rendition.recipe_hash
    client = signed_in(app, people["officer2"])
    html = _page(client, f"/compliance/reviews/{review_id}")
    assert 'data-testid="inputs-match"' in html and 'data-testid="inputs-stale"' not in html
    assert html.count(recipe_hash) >= 2  # the rendition's recipe hash and the current inputs' hash, equal

    _publish_new_disclaimer(app, people["compliance"])
    with app.app_context():
        current = video.current_recipe_hash(db.session.get(Package, package_id))
    assert current != recipe_hash
    html = _page(client, f"/compliance/reviews/{review_id}")
    assert 'data-testid="inputs-stale"' in html and 'data-testid="inputs-match"' not in html
    assert recipe_hash in html and current in html

