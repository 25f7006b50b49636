"""The bell and the notifications page: counts, list, opening (read, then to the object), mark all
read, only the recipient, CSRF, the reader's language, and a constant number of queries."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from advisor_studio.extensions import db
from advisor_studio.notifications import services
from advisor_studio.notifications.models import Notification
from tests.conftest import csrf_from, signed_in
from tests.notifications.conftest import decide, submit_script
from tests.studio.test_pages import count_queries


def html(resp) -> str:
    return resp.get_data(as_text=True)


def bell_count(resp) -> int:
    match = re.search(r'data-testid="bell" data-unread="(\d+)"', html(resp))
    assert match, "no bell on the page"
    return int(match.group(1))


def notes_of(app, user_id: int) -> list[Notification]:
    with app.app_context():
        return list(db.session.scalars(sa.select(Notification).where(Notification.recipient_id == user_id)
                                       .order_by(Notification.id)))


def make_notes(app, user_id: int, n: int, kind: str = "render_finished") -> list[int]:
    with app.app_context():
        ids = []
        for i in range(n):
            ids += services.notify(kind, [user_id], object_type="package", object_id=1000 + i,
                                   params={"title": f"作品{i}"})
        db.session.commit()
        return ids


def page_ids(resp) -> list[int]:
    return [int(i) for i in re.findall(r'data-testid="notification"\s+data-id="(\d+)"', html(resp))]


def test_the_bell_counts_the_unread_notifications_of_the_signed_in_user(app, people):
    make_notes(app, people["advisor"].id, 3)
    make_notes(app, people["officer"].id, 1)
    advisor = signed_in(app, people["advisor"])
    resp = advisor.get("/")
    assert bell_count(resp) == 3
    assert re.search(r'data-testid="bell-count"[^>]*>3<', html(resp))
    assert bell_count(signed_in(app, people["mcn"]).get("/")) == 0
    assert 'data-testid="bell-count"' not in html(signed_in(app, people["mcn"]).get("/"))


def test_anonymous_visitors_see_no_bell(client):
    assert 'data-testid="bell"' not in html(client.get("/login"))


def test_the_page_lists_newest_first_with_pagination(app_factory, people):
    app = app_factory(PAGE_SIZE=3)
    ids = make_notes(app, people["advisor"].id, 7)
    advisor = signed_in(app, people["advisor"])
    first = advisor.get("/notifications")
    assert first.status_code == 200
    assert page_ids(first) == sorted(ids, reverse=True)[:3]
    assert page_ids(advisor.get("/notifications?page=3")) == [min(ids)]
    assert "作品6" in html(first) and "7 条未读" in html(first)
    assert advisor.get("/notifications?page=x").status_code == 400


@pytest.mark.parametrize("role,hint,not_hint", [
    ("advisor", "视频渲染完成", "等待您审核"),
    ("officer", "等待您审核", "视频渲染完成"),
    ("both", "视频渲染完成", "与您工作相关"),
    ("mcn", "与您工作相关的通知", "等待您审核"),
])
def test_an_empty_page_says_what_will_appear_here_for_the_users_roles(app, people, role, hint, not_hint):
    resp = signed_in(app, people[role]).get("/notifications")
    assert resp.status_code == 200 and 'data-testid="empty-state"' in html(resp)
    assert "暂无通知" in html(resp) and hint in html(resp) and not_hint not in html(resp)
    assert 'data-testid="read-all-form"' not in html(resp)


def test_opening_a_notification_marks_it_read_and_goes_to_its_object(app, people):
    script_id, review_id = submit_script(app, people["advisor"].id)
    decide(app, review_id, people["officer"].id, "request_changes", "请补充风险提示")
    [note] = notes_of(app, people["advisor"].id)
    advisor = signed_in(app, people["advisor"])
    page = advisor.get("/notifications")
    assert "合规要求修改您的脚本“资产配置三原则”。" in html(page) and "原因：请补充风险提示" in html(page)
    resp = advisor.post(f"/notifications/{note.id}/open", data={"csrf_token": csrf_from(html(page))})
    assert resp.status_code == 302 and resp.headers["Location"] == f"/studio/scripts/{script_id}"
    assert notes_of(app, people["advisor"].id)[0].read_at is not None
    assert bell_count(advisor.get("/")) == 0
    # Opening it again still leads there and keeps the first reading time.
    read_at = notes_of(app, people["advisor"].id)[0].read_at
    again = advisor.post(f"/notifications/{note.id}/open", data={"csrf_token": csrf_from(html(page))})
    assert again.headers["Location"] == f"/studio/scripts/{script_id}"
    assert notes_of(app, people["advisor"].id)[0].read_at == read_at


def test_an_officer_opening_a_due_review_lands_on_the_review(app, people):
    _script_id, review_id = submit_script(app, people["advisor"].id)
    [note] = notes_of(app, people["officer"].id)
    officer = signed_in(app, people["officer"])
    page = officer.get("/notifications")
    assert "新的脚本待预审" in html(page) and "资产配置三原则" in html(page)
    resp = officer.post(f"/notifications/{note.id}/open", data={"csrf_token": csrf_from(html(page))})
    assert resp.headers["Location"] == f"/compliance/reviews/{review_id}"
    assert officer.get(resp.headers["Location"]).status_code == 200


@pytest.mark.parametrize("intruder", ["officer", "mcn", "advisor2"])
def test_nobody_else_can_open_or_mark_someone_elses_notification(app_factory, people, intruder):
    app = app_factory()
    [note_id] = make_notes(app, people["advisor"].id, 1)
    if intruder == "advisor2":
        from tests.conftest import record_of
        from tests.factories import make_user

        with app.app_context():
            other = record_of(make_user("advisor"))
            db.session.commit()
    else:
        other = people[intruder]
    client = signed_in(app, other)
    token = csrf_from(html(client.get("/notifications")))
    resp = client.post(f"/notifications/{note_id}/open", data={"csrf_token": token})
    assert resp.status_code == 404
    assert client.post("/notifications/99999/open", data={"csrf_token": token}).status_code == 404
    assert client.post("/notifications/read-all", data={"csrf_token": token, "up_to": str(note_id)}).status_code == 302
    assert note_id not in page_ids(client.get("/notifications"))
    assert notes_of(app, people["advisor"].id)[0].read_at is None


def test_posts_without_a_csrf_token_are_refused_and_change_nothing(app, people):
    [note_id] = make_notes(app, people["advisor"].id, 1)
    advisor = signed_in(app, people["advisor"])
    assert advisor.post(f"/notifications/{note_id}/open").status_code == 400
    assert advisor.post("/notifications/read-all").status_code == 400
    assert advisor.post("/notifications/settings", data={"email_enabled": "y"}).status_code == 400
    assert advisor.post(f"/notifications/{note_id}/open", data={"csrf_token": "forged"}).status_code == 400
    assert notes_of(app, people["advisor"].id)[0].read_at is None


def test_anonymous_posts_are_sent_to_sign_in(client):
    resp = client.post("/notifications/1/open")
    assert resp.status_code in (302, 400)  # CSRF or sign-in first: either way nothing is opened
    assert client.get("/notifications").status_code == 302


def test_mark_all_read_leaves_what_arrived_after_the_page_was_drawn(app, people):
    make_notes(app, people["advisor"].id, 3)
    advisor = signed_in(app, people["advisor"])
    page = html(advisor.get("/notifications"))
    up_to = re.search(r'name="up_to" value="(\d+)"', page).group(1)
    [late] = make_notes(app, people["advisor"].id, 1)
    resp = advisor.post("/notifications/read-all", data={"csrf_token": csrf_from(page), "up_to": up_to})
    assert resp.status_code == 302
    unread = [n.id for n in notes_of(app, people["advisor"].id) if n.read_at is None]
    assert unread == [late]
    assert bell_count(advisor.get("/")) == 1
    bad = advisor.post("/notifications/read-all", data={"csrf_token": csrf_from(page), "up_to": "1 OR 1=1"})
    assert bad.status_code == 302 and [n.id for n in notes_of(app, people["advisor"].id) if n.read_at is None] == [late]


def test_messages_follow_the_readers_language(app, people):
    script_id, review_id = submit_script(app, people["advisor"].id)
    decide(app, review_id, people["officer"].id, "approve")
    advisor = signed_in(app, people["advisor"])
    zh = html(advisor.get("/notifications"))
    assert "您的脚本“资产配置三原则”已通过预审。" in zh and 'aria-label="通知，1 条未读"' in zh
    en = html(advisor.get("/notifications?lang=en"))
    assert "Your script “资产配置三原则” was pre-approved." in en and "已通过预审" not in en
    assert 'aria-label="Notifications, 1 unread"' in en
    officer = signed_in(app, people["officer"])
    token = csrf_from(html(officer.get("/notifications")))
    officer.post("/language/en", data={"csrf_token": token, "next": "/notifications"})
    assert "New script for pre-approval: “资产配置三原则”" in html(officer.get("/notifications"))


def test_stored_parameters_of_the_wrong_type_render_as_empty_text(app, people):
    with app.app_context():
        [note_id] = services.notify("review_due", [people["officer"].id], object_type="review", object_id=5,
                                    params={"title": ["not", "text"], "due_at": "yesterday", "author": 7})
        db.session.commit()
    resp = signed_in(app, people["officer"]).get("/notifications")
    assert resp.status_code == 200 and "新的脚本待预审：" in html(resp) and "审核截止 —" in html(resp)


def _statements(app, client, url: str) -> list[str]:
    with count_queries(app) as seen:
        assert client.get(url).status_code == 200
    return list(seen)


def test_the_page_and_the_bell_use_the_same_queries_for_2_and_60_notifications(app, people):
    make_notes(app, people["advisor"].id, 2)
    advisor = signed_in(app, people["advisor"])
    advisor.get("/notifications")  # warm-up
    small_page, small_home = _statements(app, advisor, "/notifications"), _statements(app, advisor, "/studio/")
    make_notes(app, people["advisor"].id, 58, kind="review_due")
    large_page, large_home = _statements(app, advisor, "/notifications"), _statements(app, advisor, "/studio/")
    # The signed-in user (3), the unread count with the newest id, the page's ids, their total, the rows.
    assert len(large_page) == len(small_page) <= 7, large_page
    assert len(large_home) == len(small_home)
    assert sum("notifications" in s for s in large_home) == 1  # the bell: one COUNT
