"""Sharing tasks: made at approval with one link per active group; the advisor's pages show the approved
caption with each link and its QR; opening and marking done are recorded and audited."""

from __future__ import annotations

import html as htmllib

import pytest
import sqlalchemy as sa

from advisor_studio.accounts.models import User
from advisor_studio.audit import AuditEntry
from advisor_studio.compliance import services as compliance
from advisor_studio.compliance.models import Approval
from advisor_studio.dbtypes import utcnow
from advisor_studio.extensions import db
from advisor_studio.referrals.models import CommunityGroup, SharingTask
from advisor_studio.studio.models import Package
from tests.conftest import csrf_from, signed_in
from tests.factories import ensure_lexicon
from tests.studio.test_pages import approved_package, by_testid, html


@pytest.fixture
def lexicon(app):
    with app.app_context():
        ensure_lexicon()
        db.session.commit()


def add_group(app, owner_id: int, name: str, *, active=True, archived=False, platform="wecom") -> int:
    with app.app_context():
        group = CommunityGroup(owner_id=owner_id, platform=platform, name=name, member_count=100, active=active,
                               archived_at=utcnow() if archived else None)
        db.session.add(group)
        db.session.commit()
        return group.id


@pytest.fixture
def groups(app, users):
    advisor = users["advisor"].id
    return {"a": add_group(app, advisor, "理财交流1群"), "b": add_group(app, advisor, "基金定投群", platform="wechat"),
            "inactive": add_group(app, advisor, "旧群", active=False),
            "archived": add_group(app, advisor, "已归档群", archived=True),
            "other": add_group(app, users["advisor2"].id, "别人的群")}


@pytest.fixture
def task_id(app, users, lexicon, groups):
    package_id = approved_package(app, users["advisor"].id, users["compliance"].id)
    with app.app_context():
        return db.session.scalars(sa.select(SharingTask.id).where(SharingTask.package_id == package_id)).one()


def audit_actions(app, task: int) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(sa.select(AuditEntry.action).where(
            AuditEntry.object_type == "sharing_task", AuditEntry.object_id == str(task)).order_by(AuditEntry.seq)))


def test_approval_makes_a_task_with_one_group_link_per_active_group(app, users, groups, task_id):
    with app.app_context():
        task = db.session.get(SharingTask, task_id)
        approval = db.session.get(Approval, task.approval_id)
        assert task.advisor_id == users["advisor"].id and approval.package_id == task.package_id
        assert sorted(link.group_id for link in task.links) == sorted([groups["a"], groups["b"]])
        for link in task.links:
            assert (link.kind, link.package_id, link.owner_id) == ("group", task.package_id, users["advisor"].id)
        assert task.opened_at is None and task.done_at is None
    assert audit_actions(app, task_id) == ["sharing_task.created"]


def test_approval_without_groups_still_makes_a_task_that_says_what_to_do(app, users, lexicon):
    package_id = approved_package(app, users["advisor"].id, users["compliance"].id)
    with app.app_context():
        task = db.session.scalars(sa.select(SharingTask).where(SharingTask.package_id == package_id)).one()
        assert task.links == []
        tid = task.id
    page = signed_in(app, users["advisor"]).get(f"/referrals/tasks/{tid}")
    assert page.status_code == 200 and by_testid(page, "empty-state")


def test_task_page_offers_the_approved_caption_with_each_link_and_its_qr(app, users, task_id):
    client = signed_in(app, users["advisor"])
    page = client.get(f"/referrals/tasks/{task_id}")
    assert page.status_code == 200
    with app.app_context():
        task = db.session.get(SharingTask, task_id)
        caption = db.session.get(Approval, task.approval_id).manifest["caption"]
        base = app.config["PUBLIC_BASE_URL"]
        expected = {f"{caption}\n{base}/r/{link.code}" for link in task.links}
        codes = {link.code for link in task.links}
    body = html(page)
    import re

    messages = {htmllib.unescape(m) for m in re.findall(r'data-testid="share-message">([^<]*)</textarea>', body)}
    assert messages == expected
    assert {tag.split('src="/r/')[1].split("/qr.png")[0] for tag in by_testid(page, "share-qr")} == codes


def test_opening_is_recorded_once_and_audited(app, users, task_id):
    client = signed_in(app, users["advisor"])
    assert client.get(f"/referrals/tasks/{task_id}").status_code == 200
    with app.app_context():
        first = db.session.get(SharingTask, task_id).opened_at
    assert first is not None
    assert client.get(f"/referrals/tasks/{task_id}").status_code == 200
    with app.app_context():
        assert db.session.get(SharingTask, task_id).opened_at == first
    assert audit_actions(app, task_id) == ["sharing_task.created", "sharing_task.opened"]


def test_marking_done_is_recorded_once_and_moves_the_task_to_done(app, users, task_id):
    client = signed_in(app, users["advisor"])
    page = client.get(f"/referrals/tasks/{task_id}")
    token = csrf_from(html(page))
    resp = client.post(f"/referrals/tasks/{task_id}/done", data={"csrf_token": token})
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.get(SharingTask, task_id).done_at is not None
    again = client.post(f"/referrals/tasks/{task_id}/done", data={"csrf_token": token})
    assert again.status_code == 409
    assert audit_actions(app, task_id) == ["sharing_task.created", "sharing_task.opened", "sharing_task.done"]
    open_list = client.get("/referrals/tasks")
    done_list = client.get("/referrals/tasks?status=done")
    assert by_testid(open_list, "task-row") == [] and by_testid(open_list, "empty-state")
    assert [t for t in by_testid(done_list, "task-row") if f'data-task-id="{task_id}"' in t]


def test_done_without_csrf_token_changes_nothing(app, users, task_id):
    client = signed_in(app, users["advisor"])
    resp = client.post(f"/referrals/tasks/{task_id}/done", data={})
    assert resp.status_code in (302, 400)
    with app.app_context():
        assert db.session.get(SharingTask, task_id).done_at is None


@pytest.mark.parametrize("who", ["advisor2", "compliance", "admin", "mcn"])
def test_only_the_tasks_advisor_opens_or_completes_it(app, users, task_id, who):
    client = signed_in(app, users[who])
    assert client.get(f"/referrals/tasks/{task_id}").status_code == 403
    page = signed_in(app, users["advisor"]).get("/referrals/tasks")  # a real CSRF token of the session
    assert client.post(f"/referrals/tasks/{task_id}/done", data={"csrf_token": csrf_from(html(page))}).status_code in (
        400, 403)
    with app.app_context():
        task = db.session.get(SharingTask, task_id)
        assert task.opened_at is None and task.done_at is None


def test_list_shows_only_my_open_tasks(app, users, task_id):
    mine = signed_in(app, users["advisor"]).get("/referrals/tasks")
    assert [t for t in by_testid(mine, "task-row") if f'data-task-id="{task_id}"' in t]
    theirs = signed_in(app, users["advisor2"]).get("/referrals/tasks")
    assert by_testid(theirs, "task-row") == [] and by_testid(theirs, "empty-state")
    assert signed_in(app, users["advisor"]).get("/referrals/tasks?status=bogus").status_code == 400


def test_withdrawn_package_task_offers_nothing_to_share(app, users, task_id):
    with app.app_context():
        task = db.session.get(SharingTask, task_id)
        compliance.withdraw(db.session.get(Package, task.package_id), db.session.get(User, users["compliance"].id),
                            "风险提示不足")
        db.session.commit()
    page = signed_in(app, users["advisor"]).get(f"/referrals/tasks/{task_id}")
    assert page.status_code == 200 and by_testid(page, "approval-not-live")
    assert by_testid(page, "share-message") == []
