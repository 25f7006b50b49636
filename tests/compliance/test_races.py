"""Real parallel requests racing on one review or package (issue 7, section 2).

Each racer is its own signed-in test client in its own thread (its own app context, session and
database connection); a threading.Barrier releases them together. Every race is repeated
ROUNDS times on fresh objects so that one lucky interleaving cannot hide a bug. The suite runs
on SQLite and on the PostgreSQL of DATABASE_URL; PostgreSQL is where the interleavings bite.

After every round the stored state must be one a single user could have produced: one decision
per review, one open review and one unvoided approval per package, no approved package with a
superseded review, no draft package with a live approval, and an intact audit chain.
"""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.orm.exc import StaleDataError

from advisor_studio import audit
from advisor_studio.audit import AuditEntry
from advisor_studio.compliance import services as compliance
from advisor_studio.compliance.models import Approval, Review
from advisor_studio.errors import Conflict
from advisor_studio.extensions import db
from advisor_studio.studio import services as studio
from advisor_studio.studio import states
from advisor_studio.studio.models import Package
from tests.compliance.test_review_pages import submit_package, submit_script, user
from tests.conftest import csrf_from, record_of, signed_in
from tests.factories import ensure_lexicon, make_channel, make_ready_rendition, make_user

ROUNDS = 4
OFFICERS = 4


@pytest.fixture
def app(app_factory):
    # Every racer signs in once; the test login limit (5 a minute) would refuse the sixth.
    return app_factory(LOGIN_RATE_LIMIT="1000 per minute")


@pytest.fixture
def crew(app):
    """An advisor and OFFICERS compliance officers, as plain records."""
    with app.app_context():
        ensure_lexicon()
        made = {"advisor": make_user("advisor"), "officers": [make_user("compliance") for _ in range(OFFICERS)]}
        db.session.commit()
        return {"advisor": record_of(made["advisor"]), "officers": [record_of(o) for o in made["officers"]]}


def race(*actions):
    """Run each action in its own thread, released together by a barrier; return their results in order."""
    barrier = threading.Barrier(len(actions))
    results: list = [None] * len(actions)
    failures: list[BaseException] = []

    def run(index, action):
        try:
            barrier.wait()
            results[index] = action()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread below
            failures.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return results


def token(client, url: str) -> str:
    resp = client.get(url)
    assert resp.status_code == 200, (url, resp.status_code)
    return csrf_from(resp.get_data(as_text=True))


def poster(client, url: str, data: dict, csrf: str):
    """A POST with the client's CSRF token, returning the status code."""
    return lambda: client.post(url, data={**data, "csrf_token": csrf}).status_code


def claim_then_approve(client, review_url: str, csrf: str, manifest: str):
    """An officer's claim followed, if it succeeded, by the approval; returns both status codes."""
    def act():
        claimed = client.post(f"{review_url}/claim", data={"csrf_token": csrf}).status_code
        if claimed != 302:
            return claimed, None
        return claimed, client.post(f"{review_url}/decision",
                                    data={**approve_form(manifest), "csrf_token": csrf}).status_code
    return act


def recall_then_edit(client, package_url: str, csrf: str, edit: dict):
    """The advisor recalls the package to change it, then saves the change; returns both status codes."""
    def act():
        recalled = client.post(f"{package_url}/recall", data={"csrf_token": csrf}).status_code
        return recalled, client.post(package_url, data={**edit, "csrf_token": csrf}).status_code
    return act


def draft_package(app, author, officer) -> int:
    """A draft package with a pre-approved script, a channel and a ready rendition; return its id."""
    script_review = submit_script(app, author)
    with app.app_context():
        review = db.session.get(Review, script_review)
        compliance.claim(review, user(officer))
        compliance.decide(review, user(officer), "approve")
        advisor = user(author)
        package = studio.create_package(review.script, advisor, channel_ids=[make_channel().id])
        studio.set_rendition(package, make_ready_rendition(package), advisor)
        db.session.commit()
        return package.id


def claim_for(app, review_id: int, officer) -> str:
    """Claim the review as ``officer``; return the manifest hash the decision form carries."""
    with app.app_context():
        review = db.session.get(Review, review_id)
        compliance.claim(review, user(officer))
        db.session.commit()
        return review.claimed_manifest_sha256


def approve_form(manifest: str) -> dict:
    return {"decision": "approve", "reason": "", "manifest_sha256": manifest}


def package_form(app, package_id: int, **changes) -> dict:
    with app.app_context():
        package = db.session.get(Package, package_id)
        data = {"title": package.title, "caption": package.caption,
                "hashtags": " ".join(f"#{t}" for t in package.hashtags),
                "channels": [c.id for c in package.channels], "cover_time_s": str(package.cover_time_s)}
    return {**data, **changes}


def audit_count(action: str, object_type: str, object_id: int) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry).where(
        AuditEntry.action == action, AuditEntry.object_type == object_type,
        AuditEntry.object_id == str(object_id)))


def assert_consistent(app, package_id: int) -> dict:
    """The invariants every race must keep; returns the package's status and counts for the caller."""
    with app.app_context():
        package = db.session.get(Package, package_id)
        reviews = db.session.scalars(sa.select(Review).where(Review.package_id == package_id)).all()
        approvals = db.session.scalars(sa.select(Approval).where(Approval.package_id == package_id)).all()
        unvoided = [a for a in approvals if a.voided_at is None]
        open_reviews = [r for r in reviews if r.is_open]
        current = compliance.manifest_hash(compliance.package_manifest(package, 0) | {"lexicon_version": None})
        for review in reviews:
            assert not (review.decision and review.superseded_at), "a review both decided and superseded"
        for approval in approvals:
            assert approval.review.decision == "approve" and approval.review.superseded_at is None
        assert len(open_reviews) <= 1 and len(unvoided) <= 1
        if package.status == "approved":
            assert len(unvoided) == 1 and not open_reviews
            approved = dict(unvoided[0].manifest, lexicon_version=None)
            assert compliance.manifest_hash(approved) == current, "approved content differs from the package"
        else:
            assert not unvoided, f"a {package.status} package with a live approval"
        if package.status == "submitted":
            assert len(open_reviews) == 1
            submitted = dict(open_reviews[0].manifest, lexicon_version=None)
            assert compliance.manifest_hash(submitted) == current, "the review covers other content"
        else:
            assert not open_reviews, f"an open review of a {package.status} package"
        result = audit.verify()
        assert result.ok, result.reason
        return {"status": package.status, "reviews": len(reviews), "approvals": len(approvals)}


def test_officers_racing_to_claim_and_approve_one_review_make_exactly_one_decision(app, crew):
    advisor, officers = crew["advisor"], crew["officers"]
    clients = [signed_in(app, o) for o in officers]
    for _ in range(ROUNDS):
        package_id, review_id = submit_package(app, advisor, officers[0])
        with app.app_context():
            manifest = compliance.manifest_hash(compliance.current_manifest(db.session.get(Review, review_id)))
        url = f"/compliance/reviews/{review_id}"
        results = race(*[claim_then_approve(c, url, token(c, url), manifest) for c in clients])
        claims = sorted(claim for claim, _ in results)
        assert claims == [302] + [409] * (OFFICERS - 1), results
        assert [decision for _, decision in results if decision is not None] == [302], results
        state = assert_consistent(app, package_id)
        assert (state["status"], state["approvals"]) == ("approved", 1)
        with app.app_context():
            review = db.session.get(Review, review_id)
            winner = next(o for o, (claim, _) in zip(officers, results, strict=True) if claim == 302)
            assert (review.decision, review.decided_by_id, review.claimed_by_id) == ("approve", winner.id, winner.id)
            assert audit_count("review.claimed", "review", review_id) == 1
            assert audit_count("review.approve", "review", review_id) == 1
            assert audit_count("package.approved", "package", package_id) == 1


def test_double_submitted_decision_form_records_one_decision_and_answers_409_not_500(app, crew):
    advisor, officer = crew["advisor"], crew["officers"][0]
    first, second = signed_in(app, officer), signed_in(app, officer)  # two tabs of one officer
    for _ in range(ROUNDS):
        package_id, review_id = submit_package(app, advisor, officer)
        manifest = claim_for(app, review_id, officer)
        url = f"/compliance/reviews/{review_id}"
        statuses = race(poster(first, f"{url}/decision", approve_form(manifest), token(first, url)),
                        poster(second, f"{url}/decision", approve_form(manifest), token(second, url)))
        assert sorted(statuses) == [302, 409]
        state = assert_consistent(app, package_id)
        assert (state["status"], state["approvals"]) == ("approved", 1)
        with app.app_context():
            assert audit_count("approval.granted", "approval",
                               db.session.scalar(sa.select(Approval.id).where(Approval.review_id == review_id))) == 1


def test_approval_racing_the_advisors_recall_has_one_winner_and_consistent_states(app, crew):
    advisor, officer = crew["advisor"], crew["officers"][0]
    author, reviewer = signed_in(app, advisor), signed_in(app, officer)
    outcomes = set()
    for _ in range(ROUNDS):
        package_id, review_id = submit_package(app, advisor, officer)
        manifest = claim_for(app, review_id, officer)
        package_url, review_url = f"/studio/packages/{package_id}", f"/compliance/reviews/{review_id}"
        approve, recall = race(
            poster(reviewer, f"{review_url}/decision", approve_form(manifest), token(reviewer, review_url)),
            poster(author, f"{package_url}/recall", {}, token(author, package_url)))
        assert sorted([approve, recall]) == [302, 409]
        state = assert_consistent(app, package_id)
        with app.app_context():
            review = db.session.get(Review, review_id)
            if approve == 302:
                assert state["status"] == "approved" and review.decision == "approve"
                assert review.superseded_at is None and state["approvals"] == 1
            else:
                assert state["status"] == "draft" and review.decision is None
                assert review.superseded_at is not None and state["approvals"] == 0
        outcomes.add("approved" if approve == 302 else "recalled")
    assert outcomes  # every round ended in one of the two consistent outcomes above


def test_approval_racing_the_advisors_recall_and_edit_never_leaves_changed_content_approved(app, crew):
    advisor, officer = crew["advisor"], crew["officers"][0]
    author, reviewer = signed_in(app, advisor), signed_in(app, officer)
    for round_no in range(ROUNDS):
        package_id, review_id = submit_package(app, advisor, officer)
        manifest = claim_for(app, review_id, officer)
        package_url, review_url = f"/studio/packages/{package_id}", f"/compliance/reviews/{review_id}"
        csrf = token(author, package_url)
        edit = package_form(app, package_id, caption=f"改过的文案 {round_no}", confirm_void="y")
        approve, (recall, edited) = race(
            poster(reviewer, f"{review_url}/decision", approve_form(manifest), token(reviewer, review_url)),
            recall_then_edit(author, package_url, csrf, edit))
        assert sorted([approve, recall]) == [302, 409] and edited == 302
        state = assert_consistent(app, package_id)
        # Whoever won, the edit went in afterwards: the package is a draft and no approval is live.
        assert state["status"] == "draft"
        with app.app_context():
            package = db.session.get(Package, package_id)
            assert package.caption == edit["caption"] and compliance.live_approval(package) is None


def test_double_submitted_package_opens_one_review(app, crew):
    advisor, officer = crew["advisor"], crew["officers"][0]
    first, second = signed_in(app, advisor), signed_in(app, advisor)
    for _ in range(ROUNDS):
        package_id = draft_package(app, advisor, officer)
        url = f"/studio/packages/{package_id}"
        statuses = race(poster(first, f"{url}/submit", {}, token(first, url)),
                        poster(second, f"{url}/submit", {}, token(second, url)))
        assert sorted(statuses) == [302, 409]
        state = assert_consistent(app, package_id)
        assert (state["status"], state["reviews"]) == ("submitted", 1)
        with app.app_context():
            assert audit_count("package.submitted", "package", package_id) == 1


def test_edit_racing_submission_never_leaves_a_review_of_other_content(app, crew):
    advisor, officer = crew["advisor"], crew["officers"][0]
    editor, submitter = signed_in(app, advisor), signed_in(app, advisor)
    for round_no in range(ROUNDS):
        package_id = draft_package(app, advisor, officer)
        url = f"/studio/packages/{package_id}"
        edit = package_form(app, package_id, caption=f"长期投资，分散风险 {round_no}")
        edited, submitted = race(poster(editor, url, edit, token(editor, url)),
                                 poster(submitter, f"{url}/submit", {}, token(submitter, url)))
        assert submitted in (302, 409) and edited in (302, 409) and 302 in (edited, submitted)
        state = assert_consistent(app, package_id)  # a submitted package's review covers its content
        assert state["status"] == ("submitted" if submitted == 302 else "draft")


# --- the same interleavings, forced deterministically: a stale read, then someone else's commit ----


def _commit_elsewhere(statement, **params) -> None:
    """Change a row through another connection, as a concurrent request would."""
    with db.engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def test_transition_of_a_stale_package_is_refused_and_writes_nothing(app, crew):
    package_id, review_id = submit_package(app, crew["advisor"], crew["officers"][0])
    with app.app_context():
        package = db.session.get(Package, package_id)
        assert package.status == "submitted"
        before = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))
        _commit_elsewhere("UPDATE packages SET status = 'approved' WHERE id = :id",
                          id=package_id)
        with pytest.raises(Conflict) as caught:
            states.transition_package(package, "draft", user(crew["advisor"]), "recalled")
        assert caught.value.code == "changed_concurrently"
        db.session.rollback()
        assert db.session.get(Package, package_id).status == "approved"
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == before


def test_claim_cannot_take_over_a_claim_committed_after_it_was_read(app, crew):
    first, second = crew["officers"][1], crew["officers"][2]
    _package_id, review_id = submit_package(app, crew["advisor"], crew["officers"][0])
    with app.app_context():
        stale = db.session.get(Review, review_id)  # the second officer's request reads: unclaimed
        assert stale.claimed_by_id is None
        with app.app_context():  # meanwhile the first officer's claim commits in its own session
            compliance.claim(db.session.get(Review, review_id), user(first))
            db.session.commit()
        with pytest.raises(Conflict) as caught:
            compliance.claim(stale, user(second))
        assert caught.value.code == "claimed" and first.name in caught.value.message
        db.session.rollback()
        assert db.session.get(Review, review_id).claimed_by_id == first.id


def test_supersession_leaves_a_review_decided_meanwhile_alone(app, crew):
    advisor, officer = crew["advisor"], crew["officers"][0]
    package_id, review_id = submit_package(app, advisor, officer)
    with app.app_context():
        package = db.session.get(Package, package_id)
        review = db.session.get(Review, review_id)
        assert review.is_open and package.status == "submitted"
        with app.app_context():  # the officer's approval commits after the recall read the review
            compliance.claim(db.session.get(Review, review_id), user(officer))
            compliance.decide(db.session.get(Review, review_id), user(officer), "approve")
            db.session.commit()
        with pytest.raises(Conflict):
            studio.recall_package(package, user(advisor))
        db.session.rollback()
    state = assert_consistent(app, package_id)
    assert (state["status"], state["approvals"]) == ("approved", 1)
    with app.app_context():
        assert db.session.get(Review, review_id).superseded_at is None


def test_renewal_voids_the_expired_approval_so_one_stays_unvoided(app, crew):
    from datetime import timedelta

    advisor, officer = crew["advisor"], crew["officers"][0]
    package_id, review_id = submit_package(app, advisor, officer)
    with app.app_context():
        review = db.session.get(Review, review_id)
        compliance.claim(review, user(officer))
        compliance.decide(review, user(officer), "approve")
        old = compliance.live_approval(review.package)
        assert compliance.expire_due_approvals(now=old.expires_at + timedelta(seconds=1)) == 1
        studio.submit_package(review.package, user(advisor))
        renewal = db.session.scalars(sa.select(Review).where(Review.package_id == package_id,
                                                             Review.decision.is_(None))).one()
        compliance.claim(renewal, user(officer))
        compliance.decide(renewal, user(officer), "approve")
        db.session.commit()
        assert db.session.get(Approval, old.id).voided_at is not None
    state = assert_consistent(app, package_id)
    assert (state["status"], state["approvals"]) == ("approved", 2)


class _DriverError(Exception):
    """Stands in for a psycopg error carrying a SQLSTATE."""

    def __init__(self, sqlstate: str | None):
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize("error,status", [
    (sa.exc.IntegrityError("INSERT INTO approvals ...", {}, _DriverError("23505")), 409),
    (StaleDataError("UPDATE statement on table 'packages' expected to update 1 row(s); 0 were matched."), 409),
    (sa.exc.OperationalError("UPDATE reviews ...", {}, _DriverError("40P01")), 409),  # deadlock loser
    (sa.exc.OperationalError("SELECT 1", {}, _DriverError(None)), 500),  # a real outage stays a 500
], ids=["integrity", "stale", "deadlock", "outage"])
def test_database_race_errors_that_reach_a_request_answer_409_and_roll_back(app, crew, error, status):
    from advisor_studio.access import public

    def racing_view():
        db.session.execute(sa.update(Package).values(title="never committed"))
        raise error

    app.add_url_rule("/test-only/race", "test_only_race", public(racing_view))
    package_id = draft_package(app, crew["advisor"], crew["officers"][0])
    client = app.test_client()
    resp = client.get("/test-only/race", headers={"Accept": "application/json"})
    assert resp.status_code == status
    if status == 409:
        assert resp.get_json()["error"]["code"] == "changed_concurrently"
        page = client.get("/test-only/race")
        assert page.status_code == 409
    with app.app_context():
        assert db.session.get(Package, package_id).title != "never committed"
