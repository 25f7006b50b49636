"""Package links: one per target channel at submission, pinned in the approval manifest; reviews made
before links existed stay decidable."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from advisor_studio.accounts.models import User
from advisor_studio.compliance import services as compliance
from advisor_studio.compliance.models import Approval, Review
from advisor_studio.errors import Conflict, ValidationError
from advisor_studio.extensions import db
from advisor_studio.referrals import services, sharing
from advisor_studio.referrals.models import ReferralLink
from advisor_studio.studio import services as studio
from advisor_studio.studio.models import Package
from tests.factories import ensure_lexicon, make_channel
from tests.studio.test_pages import approved_package, decide_open_review, package_for


@pytest.fixture
def lexicon(app):
    with app.app_context():
        ensure_lexicon()
        db.session.commit()


def links_of(package_id: int) -> list[ReferralLink]:
    return db.session.scalars(sa.select(ReferralLink).where(ReferralLink.package_id == package_id,
                                                            ReferralLink.kind == "package")
                              .order_by(ReferralLink.id)).all()


def submit(app, package_id: int, author_id: int) -> None:
    with app.app_context():
        studio.submit_package(db.session.get(Package, package_id), db.session.get(User, author_id))
        db.session.commit()


def open_review(package_id: int) -> Review:
    return db.session.scalars(sa.select(Review).where(Review.package_id == package_id, Review.decision.is_(None),
                                                      Review.superseded_at.is_(None))).one()


def test_approval_manifest_pins_one_link_per_target_channel(app, users, lexicon):
    package_id = package_for(app, users["advisor"].id, users["compliance"].id, rendition=True)
    with app.app_context():
        package = db.session.get(Package, package_id)
        package.channels.append(make_channel(platform="kuaishou"))
        db.session.commit()
    submit(app, package_id, users["advisor"].id)
    decide_open_review(app, users["compliance"].id, package_id=package_id)
    with app.app_context():
        package = db.session.get(Package, package_id)
        links = links_of(package_id)
        assert sorted(link.channel_id for link in links) == sorted(c.id for c in package.channels)
        for link in links:
            assert (link.owner_id, link.destination, link.enabled) == (users["advisor"].id,
                                                                       "https://kaihu.example.com/open", True)
            assert link.partner_id == db.session.get(type(package.channels[0]), link.channel_id).partner_id
        approval = db.session.scalars(sa.select(Approval).where(Approval.package_id == package_id)).one()
        expected = [{"channel_id": x.channel_id, "code": x.code, "destination": x.destination}
                    for x in sorted(links, key=lambda x: x.channel_id)]
        assert approval.manifest["referral_links"] == expected
        assert approval.manifest_sha256 == compliance.manifest_hash(compliance.package_manifest(package, approval
                                                                                                .manifest["lexicon_version"]))


def test_resubmission_reuses_the_live_links(app, users, lexicon):
    package_id = package_for(app, users["advisor"].id, users["compliance"].id, rendition=True)
    submit(app, package_id, users["advisor"].id)
    with app.app_context():
        first = [x.code for x in links_of(package_id)]
        studio.recall_package(db.session.get(Package, package_id), db.session.get(User, users["advisor"].id))
        db.session.commit()
    submit(app, package_id, users["advisor"].id)
    with app.app_context():
        assert [x.code for x in links_of(package_id)] == first
        assert [x["code"] for x in open_review(package_id).manifest["referral_links"]] == first


def test_a_disabled_link_is_replaced_by_a_new_one_at_the_next_submission(app, users, lexicon):
    package_id = package_for(app, users["advisor"].id, users["compliance"].id, rendition=True)
    submit(app, package_id, users["advisor"].id)
    with app.app_context():
        advisor = db.session.get(User, users["advisor"].id)
        old = links_of(package_id)[0]
        services.set_link_enabled(old, False, actor=advisor)
        studio.recall_package(db.session.get(Package, package_id), advisor)
        db.session.commit()
        old_code = old.code
    submit(app, package_id, users["advisor"].id)
    with app.app_context():
        codes = [x.code for x in links_of(package_id)]
        assert len(codes) == 2 and codes[0] == old_code
        assert [x["code"] for x in open_review(package_id).manifest["referral_links"]] == [codes[1]]


def test_disabling_a_link_after_submission_makes_the_review_undecidable(app, users, lexicon):
    package_id = package_for(app, users["advisor"].id, users["compliance"].id, rendition=True)
    submit(app, package_id, users["advisor"].id)
    with app.app_context():
        officer = db.session.get(User, users["compliance"].id)
        review = open_review(package_id)
        compliance.claim(review, officer)
        services.set_link_enabled(links_of(package_id)[0], False, actor=db.session.get(User, users["advisor"].id))
        with pytest.raises(Conflict) as err:
            compliance.decide(review, officer, "approve")
        assert err.value.code == "changed_since_claim"


def test_review_submitted_before_package_links_existed_stays_decidable(app, users, lexicon):
    package_id = package_for(app, users["advisor"].id, users["compliance"].id, rendition=True)
    submit(app, package_id, users["advisor"].id)
    with app.app_context():
        # The manifest as it was written before this feature: no referral_links key.
        review = open_review(package_id)
        legacy = {k: v for k, v in review.manifest.items() if k != "referral_links"}
        review.manifest = legacy
        review.manifest_sha256 = compliance.manifest_hash(legacy)
        db.session.commit()
    decide_open_review(app, users["compliance"].id, package_id=package_id)
    with app.app_context():
        approval = db.session.scalars(sa.select(Approval).where(Approval.package_id == package_id)).one()
        assert "referral_links" not in approval.manifest
        assert approval.manifest_sha256 == compliance.manifest_hash(legacy)
        assert db.session.get(Package, package_id).status == "approved"


def test_submission_refused_when_the_default_destination_is_not_allowed(app_factory, users):
    app = app_factory(REFERRAL_DEFAULT_DESTINATION="https://evil.example.net/open")
    with app.app_context():
        ensure_lexicon()
        db.session.commit()
    from tests.factories import make_user

    with app.app_context():
        advisor_id, officer_id = make_user("advisor").id, make_user("compliance").id
        db.session.commit()
    package_id = package_for(app, advisor_id, officer_id, rendition=True)
    with app.app_context():
        with pytest.raises(ValidationError):
            studio.submit_package(db.session.get(Package, package_id), db.session.get(User, advisor_id))
        db.session.rollback()
        assert links_of(package_id) == [] and db.session.get(Package, package_id).status == "draft"


def test_approved_package_fixture_has_its_links(app, users, lexicon):
    package_id = approved_package(app, users["advisor"].id, users["compliance"].id)
    with app.app_context():
        assert len(sharing.package_links(db.session.get(Package, package_id))) == 1


def test_reviewer_sees_the_links_the_decision_covers(app, users, lexicon):
    from tests.conftest import signed_in
    from tests.studio.test_pages import by_testid, html

    package_id = package_for(app, users["advisor"].id, users["compliance"].id, rendition=True)
    submit(app, package_id, users["advisor"].id)
    with app.app_context():
        review_id, code = open_review(package_id).id, links_of(package_id)[0].code
    page = signed_in(app, users["compliance"]).get(f"/compliance/reviews/{review_id}")
    assert page.status_code == 200 and by_testid(page, "manifest-links")
    assert f"/r/{code}" in html(page)
