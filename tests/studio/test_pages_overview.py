"""The advisor's overview pages: "my content" (state, last reviewer word, what is blocking, bounded
queries) and the landing section of what needs the advisor's action."""

from __future__ import annotations

import re

import pytest

from advisor_studio.accounts.models import User
from advisor_studio.extensions import db
from advisor_studio.studio import services as studio
from advisor_studio.studio.models import Package, Script
from advisor_studio.video.models import RENDER_FAILED, Rendition
from tests.conftest import signed_in
from tests.factories import ensure_lexicon, make_ready_rendition
from tests.studio.test_pages import (
    approved_package,
    attr,
    by_testid,
    count_queries,
    create_script,
    decide_open_review,
    html,
    package_for,
)


@pytest.fixture(autouse=True)
def lexicon(app):
    with app.app_context():
        ensure_lexicon()
        db.session.commit()


def failed_rendition(app, package_id: int) -> None:
    with app.app_context():
        package = db.session.get(Package, package_id)
        ready = make_ready_rendition(package)
        db.session.add(Rendition(package_id=package.id, source_id=ready.source_id, recipe={}, recipe_hash="1" * 64,
                                 status=RENDER_FAILED, error="ffmpeg exited with status 1"))
        db.session.commit()


def rows(resp) -> dict[tuple[str, str], str]:
    tags = by_testid(resp, "content-row")
    return {(attr(t, "data-kind"), attr(t, "data-id")): attr(t, "data-blocking") for t in tags}


def test_my_content_lists_scripts_and_packages_with_what_blocks_them(app, users):
    advisor, officer = users["advisor"], users["compliance"]
    draft = create_script(app, advisor.id, title="草稿")
    in_review = create_script(app, advisor.id, title="审核中", submit=True)
    returned = create_script(app, advisor.id, title="退回", submit=True)
    decide_open_review(app, officer.id, "request_changes", "请删除第三段的收益描述", script_id=returned,
                       comment="第三段有收益暗示")
    no_video = package_for(app, advisor.id, officer.id)
    expiring = approved_package(app, advisor.id, officer.id, valid_days=5)
    with app.app_context():
        approved_script_id = db.session.get(Package, no_video).script_id
        author = db.session.get(User, advisor.id)
        lonely = studio.create_script(author, title="已预审无作品包", body="x")
        db.session.commit()
        lonely_id = lonely.id
    client = signed_in(app, advisor)
    page = client.get("/studio/")
    assert page.status_code == 200
    found = rows(page)
    assert found[("script", str(draft))] == "ready_to_submit"
    assert found[("script", str(in_review))] == "in_review"
    assert found[("script", str(returned))] == "changes_requested"
    assert found[("script", str(approved_script_id))] == "approved"  # it already has a package
    assert found[("package", str(no_video))] == "needs_rendition"
    assert found[("package", str(expiring))] == "expires_soon"
    assert found[("script", str(lonely_id))] == "ready_to_submit"
    row = html(page).split(f'data-kind="script" data-id="{returned}"', 1)[1].split("</tr>", 1)[0]
    last_comment = row.split('data-testid="last-comment"', 1)[1].split("</td>", 1)[0]
    blocking = row.split('data-testid="blocking"', 1)[1].split("</td>", 1)[0]
    assert "请删除第三段的收益描述" in last_comment  # the decision came after the comment: it is the last word
    assert "请删除第三段的收益描述" in blocking

    packages_only = rows(client.get("/studio/?kind=package"))
    assert {k for k, _ in packages_only} == {"package"}
    in_review_only = rows(client.get("/studio/?state=review"))
    assert set(in_review_only) == {("script", str(in_review))}
    searched = rows(client.get("/studio/?q=退回"))
    assert set(searched) == {("script", str(returned))}


def test_my_content_empty_state_for_a_new_advisor(app, users):
    page = signed_in(app, users["advisor2"]).get("/studio/")
    assert by_testid(page, "empty-state") and not by_testid(page, "content-row")


def _content(app, advisor_id: int, officer_id: int, n: int) -> None:
    """n scripts in every state, packages from a third of them (some approved, some without video)."""
    for i in range(n):
        if i % 3 == 0:
            script_id = create_script(app, advisor_id, title=f"退回{i}", submit=True)
            decide_open_review(app, officer_id, "request_changes", f"理由{i}", script_id=script_id,
                               comment=f"评论{i}")
        elif i % 3 == 1:
            if i % 2:
                approved_package(app, advisor_id, officer_id)
            else:
                package_for(app, advisor_id, officer_id)
        else:
            create_script(app, advisor_id, title=f"草稿{i}")


def test_my_content_query_count_does_not_grow_with_items(app, users):
    officer = users["compliance"].id
    _content(app, users["advisor"].id, officer, 3)
    _content(app, users["advisor2"].id, officer, 30)
    few, many = signed_in(app, users["advisor"]), signed_in(app, users["advisor2"])
    few.get("/studio/")
    many.get("/studio/")  # warm up: first requests may load caches
    with count_queries(app) as small:
        page_small = few.get("/studio/")
    with count_queries(app) as large:
        page_large = many.get("/studio/")
    assert len(by_testid(page_small, "content-row")) == 4
    assert len(by_testid(page_large, "content-row")) == 25
    assert len(small) == len(large), (len(small), len(large))
    assert len(large) <= 16
    print(f"my content: {len(small)} queries for 4 rows, {len(large)} for 25 rows")  # noqa: T201


def test_scripts_and_packages_lists_have_bounded_queries(app, users):
    officer = users["compliance"].id
    _content(app, users["advisor"].id, officer, 3)
    _content(app, users["advisor2"].id, officer, 30)
    few, many = signed_in(app, users["advisor"]), signed_in(app, users["advisor2"])
    for path in ("/studio/scripts", "/studio/packages"):
        few.get(path)
        many.get(path)
        with count_queries(app) as small:
            few.get(path)
        with count_queries(app) as large:
            many.get(path)
        assert len(small) == len(large), (path, len(small), len(large))


# --- landing -----------------------------------------------------------------------------------------


def test_landing_lists_what_needs_the_advisors_action(app, users):
    advisor, officer = users["advisor"], users["compliance"]
    returned = create_script(app, advisor.id, title="退回", submit=True)
    decide_open_review(app, officer.id, "request_changes", "请修改", script_id=returned)
    draft = create_script(app, advisor.id, title="草稿")
    finished = package_for(app, advisor.id, officer.id)
    with app.app_context():
        make_ready_rendition(db.session.get(Package, finished))
        db.session.commit()
    failed = package_for(app, advisor.id, officer.id)
    failed_rendition(app, failed)
    expiring = approved_package(app, advisor.id, officer.id, valid_days=5)
    later = approved_package(app, advisor.id, officer.id)  # 90 days left: not listed

    page = signed_in(app, advisor).get("/")
    assert by_testid(page, "studio-landing")
    text = html(page)

    def items(group: str) -> set[tuple[str, str]]:
        section = text.split(f'data-testid="landing-{group}"', 1)[1].split("</ul>", 1)[0]
        return set(re.findall(r'data-kind="(\w+)" data-id="(\d+)"', section))

    assert items("changes_requested") == {("script", str(returned))}
    assert items("renders_finished") == {("package", str(finished))}
    assert items("renders_failed") == {("package", str(failed))}
    assert items("expiring") == {("package", str(expiring))}
    assert ("script", str(draft)) in items("drafts")
    assert ("package", str(later)) not in items("expiring")
    with app.app_context():
        assert db.session.get(Script, draft).status == "draft"


def test_landing_of_an_advisor_with_nothing_to_do(app, users):
    page = signed_in(app, users["advisor2"]).get("/")
    assert by_testid(page, "studio-landing") and by_testid(page, "studio-nothing")


@pytest.mark.parametrize("role", ["compliance", "mcn", "admin"])
def test_landing_section_is_not_shown_to_other_roles(app, users, role):
    page = signed_in(app, users[role]).get("/")
    assert page.status_code == 200
    assert not by_testid(page, "studio-landing")
