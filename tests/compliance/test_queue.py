"""The review queue: filters, counts, sort, pagination, and a bounded number of SQL queries."""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy import event

from advisor_studio.compliance import services as compliance
from advisor_studio.compliance.models import Review
from advisor_studio.extensions import db
from tests.compliance.test_review_pages import people, submit_package, submit_script, user  # noqa: F401
from tests.conftest import record_of, signed_in
from tests.factories import make_user

ROW_RE = re.compile(r'data-testid="queue-row" data-review-id="(\d+)"')


def _rows(html: str) -> list[int]:
    return [int(x) for x in ROW_RE.findall(html)]


def _queue(client, query: str = "") -> str:
    resp = client.get("/compliance/queue" + query)
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def _shift(app, review_id: int, *, submitted_hours_ago: float | None = None, due_hours: float | None = None):
    with app.app_context():
        review = db.session.get(Review, review_id)
        if submitted_hours_ago is not None:
            review.submitted_at = review.submitted_at - timedelta(hours=submitted_hours_ago)
        if due_hours is not None:
            review.due_at = review.submitted_at + timedelta(hours=due_hours)
        db.session.commit()


def _claim(app, review_id: int, officer) -> None:
    with app.app_context():
        compliance.claim(db.session.get(Review, review_id), user(officer))
        db.session.commit()


def test_queue_filters_by_stage_platform_advisor_age_overdue_and_claim(app, people):  # noqa: F811
    script_a = submit_script(app, people["advisor"], platforms=("douyin",))
    script_b = submit_script(app, people["advisor2"], title="指数基金入门", platforms=("bilibili",))
    _package_id, package_review = submit_package(app, people["advisor"], people["officer2"], platform="kuaishou")
    _shift(app, script_a, submitted_hours_ago=100, due_hours=24)  # waiting > 72 h, past due
    _claim(app, script_b, people["compliance"])
    client = signed_in(app, people["compliance"])

    everything = _queue(client)
    assert _rows(everything) == [script_a, script_b, package_review]  # by due date
    assert re.search(r'data-testid="queue-count-script">2<', everything)
    assert re.search(r'data-testid="queue-count-package">1<', everything)
    assert re.search(r'data-testid="queue-count-overdue">1<', everything)
    assert everything.count('data-testid="overdue-badge"') == 1

    assert _rows(_queue(client, "?stage=package")) == [package_review]
    assert _rows(_queue(client, "?stage=script")) == [script_a, script_b]
    assert _rows(_queue(client, "?platform=kuaishou")) == [package_review]
    assert _rows(_queue(client, "?platform=bilibili")) == [script_b]
    assert _rows(_queue(client, f"?advisor={people['advisor2'].id}")) == [script_b]
    assert _rows(_queue(client, "?age=72")) == [script_a]
    assert _rows(_queue(client, "?overdue=1")) == [script_a]
    mine = _queue(client, "?mine=1")
    assert _rows(mine) == [script_b] and 'data-testid="claimed-by"' in mine
    assert _rows(_queue(client, "?sort=newest"))[-1] == script_a
    empty = _queue(client, "?stage=package&platform=douyin")
    assert _rows(empty) == [] and 'data-testid="empty-state"' in empty
    # unknown filter values are ignored rather than failing
    assert _rows(_queue(client, "?stage=nope&platform=myspace&age=5&per_page=7&sort=x")) == _rows(everything)


def test_decided_and_superseded_reviews_leave_the_queue(app, people):  # noqa: F811
    from tests.compliance.test_review_pages import decide

    decided = submit_script(app, people["advisor"])
    decide(app, decided, people["compliance"])
    open_one = submit_script(app, people["advisor2"])
    with app.app_context():
        script = db.session.get(Review, open_one).script
        from advisor_studio.studio import services as studio

        studio.recall_script(script, user(people["advisor2"]))
        db.session.commit()
    html = _queue(signed_in(app, people["compliance"]))
    assert _rows(html) == [] and 'data-testid="empty-state"' in html


def _fill_queue(app, people, *, packages: int, scripts: int) -> None:  # noqa: F811
    """Packages first (earliest due), several authors, one claimed review of each stage."""
    with app.app_context():
        authors = [record_of(make_user("advisor")) for _ in range(3)]
        db.session.commit()
    authors.append(people["advisor"])
    package_reviews = [submit_package(app, authors[i % len(authors)], people["officer2"],
                                      platform=("douyin", "kuaishou", "bilibili")[i % 3])[1] for i in range(packages)]
    script_reviews = [submit_script(app, authors[i % len(authors)], title=f"脚本{i}") for i in range(scripts)]
    _claim(app, package_reviews[0], people["compliance"])
    _claim(app, script_reviews[0], people["officer2"])


def _statements(app, client, url: str) -> list[str]:
    with app.app_context():
        engine = db.engine
    seen: list[str] = []

    def record(_conn, _cursor, statement, _params, _context, _many):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        resp = client.get(url)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert resp.status_code == 200, resp.status_code
    return seen


def test_queue_renders_with_the_same_number_of_queries_for_5_and_60_reviews(app, people):  # noqa: F811
    _fill_queue(app, people, packages=2, scripts=3)
    client = signed_in(app, people["compliance"])
    client.get("/compliance/queue")  # warm-up: first-request work (scanner cache, babel) is not counted
    small = _statements(app, client, "/compliance/queue?per_page=25")
    assert len(_rows(_queue(client, "?per_page=25"))) == 5

    _fill_queue(app, people, packages=8, scripts=47)
    with app.app_context():
        total = db.session.scalar(sa.select(sa.func.count()).select_from(Review).where(Review.decision.is_(None)))
    assert total == 60
    counts = {}
    for query in ("?per_page=25", "?per_page=50", "?per_page=25&page=3", "?per_page=50&platform=douyin",
                  "?per_page=50&sort=priority", "?per_page=50&stage=package"):
        counts[query] = len(_statements(app, client, "/compliance/queue" + query))
    assert len(_rows(_queue(client, "?per_page=50"))) == 50
    assert len(_rows(_queue(client, "?per_page=25&page=3"))) == 10
    # Same statements whatever the number of rows; a page without any package row skips the one
    # query that loads package channels, so it may need one statement fewer.
    assert counts["?per_page=50&stage=package"] == len(small), (len(small), counts)
    assert all(len(small) - 1 <= n <= len(small) for n in counts.values()), (len(small), counts)
    assert len(small) <= 10, small
