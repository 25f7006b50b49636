"""Community groups: create, edit with member-count history, archive, CSV import all-or-nothing,
duplicates, and isolation between advisors."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from advisor_studio.accounts.models import User
from advisor_studio.errors import Conflict, ValidationError
from advisor_studio.extensions import db
from advisor_studio.referrals import groups as group_services
from advisor_studio.referrals.models import GROUP_PLATFORM_LABELS, CommunityGroup, GroupMemberCount
from tests.conftest import csrf_from, post_form, signed_in
from tests.referrals.conftest import make_group

GOOD_CSV = ("platform,name,external_id,member_count,tags\n"
            "wecom,价值投资一群,wx-001,200,老客户|北京\n"
            "企业微信,价值投资二群,wx-002,150,\n"
            "qq,QQ交流群,,88,新客户\n")


def group_count(app, owner_id=None) -> int:
    with app.app_context():
        stmt = sa.select(sa.func.count()).select_from(CommunityGroup)
        if owner_id is not None:
            stmt = stmt.where(CommunityGroup.owner_id == owner_id)
        return db.session.scalar(stmt)


def import_as(client, data: bytes, **extra):
    return post_form(client, "/referrals/groups/import", {"file": (__import__("io").BytesIO(data), "groups.csv"),
                                                          **extra}, content_type="multipart/form-data")


def test_advisor_adds_a_group_and_its_member_count_starts_its_history(app, users):
    client = signed_in(app, users["advisor"])
    resp = post_form(client, "/referrals/groups/new", {"platform": "wecom", "name": "价值投资交流群",
                                                       "external_id": "wx-1", "member_count": "120",
                                                       "tags": "老客户, 北京"})
    assert resp.status_code == 302
    with app.app_context():
        group = db.session.scalars(sa.select(CommunityGroup)).one()
        assert (group.owner_id, group.platform, group.member_count, group.tags) == (
            users["advisor"].id, "wecom", 120, ["老客户", "北京"])
        assert [h.member_count for h in group_services.member_history(group.id)] == [120]
    page = client.get("/referrals/groups").get_data(as_text=True)
    with app.test_request_context():
        label = str(GROUP_PLATFORM_LABELS["wecom"])  # 企业微信 once the catalogue has it
    assert "价值投资交流群" in page and f">{label}</td>" in page  # a label, never the code


def test_every_member_count_change_adds_a_history_row_and_other_edits_do_not(app, users, group_id):
    client = signed_in(app, users["advisor"])
    base = {"platform": "wecom", "name": "价值投资交流群", "external_id": "", "tags": "老客户"}
    post_form(client, f"/referrals/groups/{group_id}", {**base, "member_count": "130"})
    post_form(client, f"/referrals/groups/{group_id}", {**base, "member_count": "130", "name": "改名后的群"})
    post_form(client, f"/referrals/groups/{group_id}", {**base, "member_count": "90", "name": "改名后的群"})
    with app.app_context():
        group = db.session.get(CommunityGroup, group_id)
        assert (group.name, group.member_count) == ("改名后的群", 90)
        history = [h.member_count for h in group_services.member_history(group_id)]
        assert history == [90, 130, 120]


def test_duplicate_platform_and_external_id_is_a_clear_error(app, users):
    make_group(app, users["advisor"].id, platform="wechat", external_id="g-42")
    with app.app_context():
        owner = db.session.get(User, users["advisor2"].id)
        with pytest.raises(Conflict) as caught:
            group_services.create_group(owner=owner, actor=owner, platform="wechat", name="另一个群",
                                        external_id="g-42")
        assert caught.value.fields == {"external_id": caught.value.fields["external_id"]}
        db.session.rollback()
        # The same external id on another platform is another group.
        group_services.create_group(owner=owner, actor=owner, platform="qq", name="QQ群", external_id="g-42")
    client = signed_in(app, users["advisor"])
    resp = post_form(client, "/referrals/groups/new", {"platform": "wechat", "name": "重复", "external_id": "g-42",
                                                       "member_count": "1"})
    assert resp.status_code == 409
    assert "g-42" in resp.get_data(as_text=True)


def test_archive_needs_confirmation_and_archived_groups_get_no_links(app, users, group_id):
    client = signed_in(app, users["advisor"])
    resp = post_form(client, f"/referrals/groups/{group_id}/archive", {}, form_page=f"/referrals/groups/{group_id}")
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.get(CommunityGroup, group_id).archived_at is None
    post_form(client, f"/referrals/groups/{group_id}/archive", {"confirm": "y"},
              form_page=f"/referrals/groups/{group_id}")
    with app.app_context():
        group = db.session.get(CommunityGroup, group_id)
        assert group.archived_at is not None and not group.active
        from advisor_studio.referrals import services

        owner = db.session.get(User, users["advisor"].id)
        with pytest.raises(Conflict):
            services.create_link(owner=owner, actor=owner, destination="https://kaihu.example.com/", group=group)
    assert f'data-group-id="{group_id}"' not in client.get("/referrals/groups").get_data(as_text=True)
    assert f'data-group-id="{group_id}"' in client.get("/referrals/groups?archived=1").get_data(as_text=True)


def test_csv_import_creates_every_row_with_history(app, users):
    client = signed_in(app, users["advisor"])
    resp = import_as(client, GOOD_CSV.encode())
    assert resp.status_code == 302
    with app.app_context():
        groups = db.session.scalars(sa.select(CommunityGroup).order_by(CommunityGroup.id)).all()
        assert [(g.platform, g.name, g.external_id, g.member_count, g.tags) for g in groups] == [
            ("wecom", "价值投资一群", "wx-001", 200, ["老客户", "北京"]),
            ("wecom", "价值投资二群", "wx-002", 150, []),
            ("qq", "QQ交流群", None, 88, ["新客户"])]
        assert db.session.scalar(sa.select(sa.func.count()).select_from(GroupMemberCount)) == 3


def test_csv_with_any_bad_row_imports_nothing_and_names_each_bad_row(app, users):
    make_group(app, users["advisor2"].id, platform="wecom", external_id="taken")
    bad = ("platform,name,external_id,member_count,tags\n"
           "wecom,好的群,ok-1,10,\n"              # row 2: fine
           "myspace,未知平台,x,10,\n"              # row 3: platform
           "wechat,,x2,10,\n"                      # row 4: name
           "wechat,人数错,x3,-5,\n"                # row 5: member count
           "wechat,人数错2,x4,1e309,\n"            # row 6: member count
           "wecom,已存在,taken,1,\n"               # row 7: stored duplicate
           "qq,重复一,dup,1,\n"                    # row 8: fine
           "qq,重复二,dup,1,\n"                    # row 9: duplicate of row 8
           "qq,列数不对,1\n")                      # row 10: columns
    client = signed_in(app, users["advisor"])
    resp = import_as(client, bad.encode())
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    import re

    rows = sorted({int(n) for n in re.findall(r'data-testid="import-error" data-row="(\d+)"', page)})
    assert rows == [3, 4, 5, 6, 7, 9, 10]
    assert group_count(app, users["advisor"].id) == 0


def test_csv_errors_are_in_chinese_in_the_default_locale(app, users):
    with app.test_request_context():
        with app.app_context():
            owner = db.session.get(User, users["advisor"].id)
            with pytest.raises(ValidationError) as caught:
                group_services.import_groups_csv("platform,name,external_id,member_count,tags\nx,群,1,1,\n".encode(),
                                                 owner=owner, actor=owner)
    assert caught.value.code == "csv_invalid" and list(caught.value.fields) == ["row 2"]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gbk", "gb18030"])
def test_csv_from_excel_with_bom_or_gbk_imports(app, users, encoding):
    client = signed_in(app, users["advisor"])
    assert import_as(client, GOOD_CSV.encode(encoding)).status_code == 302
    with app.app_context():
        names = set(db.session.scalars(sa.select(CommunityGroup.name)))
    assert names == {"价值投资一群", "价值投资二群", "QQ交流群"}


def test_utf16_binary_oversized_and_headerless_files_are_refused_clearly(app, users):
    client = signed_in(app, users["advisor"])
    too_many = "platform,name,external_id,member_count,tags\n" + "".join(
        f"wecom,群{i},id-{i},1,\n" for i in range(group_services.CSV_MAX_ROWS + 1))
    for data in [GOOD_CSV.encode("utf-16"), b"\x00\x01\x02" * 10, b"\xff\xfe\xfd" * 10, too_many.encode(),
                 "name,platform\n群,wecom\n".encode(), b"", b"platform,name,external_id,member_count,tags\n",
                 b"a" * (group_services.CSV_MAX_BYTES + 10)]:
        resp = import_as(client, data)
        assert resp.status_code == 400, data[:40]
        assert 'data-testid="import-error"' in resp.get_data(as_text=True) or not data
    assert group_count(app) == 0


def test_admin_imports_and_creates_groups_for_a_chosen_advisor(app, users):
    client = signed_in(app, users["admin"])
    resp = import_as(client, GOOD_CSV.encode())
    assert resp.status_code == 400  # no owner chosen
    assert import_as(client, GOOD_CSV.encode(), owner_id=str(users["advisor2"].id)).status_code == 302
    resp = post_form(client, "/referrals/groups/new", {"owner_id": str(users["advisor"].id), "platform": "feishu",
                                                       "name": "飞书群", "member_count": "5"})
    assert resp.status_code == 302
    assert group_count(app, users["advisor2"].id) == 3 and group_count(app, users["advisor"].id) == 1
    client.get("/referrals/admin/groups")  # shows the flash message
    page = client.get(f"/referrals/admin/groups?owner={users['advisor2'].id}").get_data(as_text=True)
    assert "价值投资一群" in page and "飞书群" not in page
    # An admin cannot make a non-advisor the owner.
    resp = post_form(client, "/referrals/groups/new", {"owner_id": str(users["mcn"].id), "platform": "qq",
                                                       "name": "x", "member_count": "1"})
    assert resp.status_code == 400


def test_advisors_see_and_change_only_their_own_groups(app, users, group_id):
    other = signed_in(app, users["advisor2"])
    assert other.get(f"/referrals/groups/{group_id}").status_code == 404
    token = csrf_from(other.get("/referrals/groups/new").get_data(as_text=True))
    assert other.post(f"/referrals/groups/{group_id}", data={"csrf_token": token, "platform": "qq", "name": "夺走",
                                                             "member_count": "1"}).status_code == 404
    assert other.post(f"/referrals/groups/{group_id}/archive",
                      data={"csrf_token": token, "confirm": "y"}).status_code == 404
    assert "价值投资交流群" not in other.get("/referrals/groups").get_data(as_text=True)
    with app.app_context():
        group = db.session.get(CommunityGroup, group_id)
        assert group.name == "价值投资交流群" and group.archived_at is None
    assert signed_in(app, users["admin"]).get(f"/referrals/groups/{group_id}").status_code == 200
    assert signed_in(app, users["mcn"]).get("/referrals/groups").status_code == 403


def test_groups_export_round_trips_through_the_import(app, users):
    client = signed_in(app, users["advisor"])
    assert import_as(client, GOOD_CSV.encode()).status_code == 302
    make_group(app, users["advisor2"].id, name="别人的群")
    resp = client.get("/referrals/groups/export.csv")
    assert resp.status_code == 200 and resp.data.startswith(b"\xef\xbb\xbf")
    text = resp.data.decode("utf-8-sig")
    assert "别人的群" not in text
    lines = text.splitlines()
    assert lines[0].startswith("platform,name,external_id,member_count,tags,")
    # The first five columns re-import (after the external ids change, as they are unique per platform).
    rows = [",".join(line.split(",")[:5]).replace("wx-00", "copy-") for line in lines]
    rows = [r for r in rows if "QQ交流群" not in r]  # no external id: would be imported as a second group
    other = signed_in(app, users["advisor2"])
    assert import_as(other, "\n".join(rows).encode("utf-8-sig")).status_code == 302
    assert group_count(app, users["advisor2"].id) == 3


def test_the_edit_form_shows_the_tags_as_typed_and_saving_it_unchanged_keeps_them(app, users):
    group_id = make_group(app, users["advisor"].id)  # tags "老客户"
    with app.app_context():
        group = db.session.get(CommunityGroup, group_id)
        group_services.update_group(group, actor=group.owner, platform=group.platform, name=group.name,
                                    external_id=None, member_count=group.member_count, tags="老客户, 北京")
        db.session.commit()
    client = signed_in(app, users["advisor"])
    page = client.get(f"/referrals/groups/{group_id}").get_data(as_text=True)
    assert 'name="tags" type="text" value="老客户, 北京"' in page  # not the list's repr ['老客户', '北京']
    resp = post_form(client, f"/referrals/groups/{group_id}", {"platform": "wecom", "name": "价值投资交流群",
                                                                "external_id": "", "member_count": "120",
                                                                "tags": "老客户, 北京"})
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.get(CommunityGroup, group_id).tags == ["老客户", "北京"]
