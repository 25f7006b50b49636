"""Search boxes match what was typed: "%" and "_" are literal characters, not LIKE wildcards."""

from __future__ import annotations

from tests.conftest import signed_in
from tests.factories import make_user


def _names(html: str, *candidates: str) -> set[str]:
    return {name for name in candidates if name in html}


def test_admin_user_search_treats_wildcards_literally(app, users):
    from advisor_studio.extensions import db

    with app.app_context():
        make_user("advisor", name="张_三")
        make_user("advisor", name="李四%")
        make_user("advisor", name="王五")
        db.session.commit()
    admin = signed_in(app, users["admin"])
    assert _names(admin.get("/admin/users?q=_").get_data(as_text=True), "张_三", "李四%", "王五") == {"张_三"}
    assert _names(admin.get("/admin/users?q=%25").get_data(as_text=True), "张_三", "李四%", "王五") == {"李四%"}
    assert _names(admin.get("/admin/users?q=王").get_data(as_text=True), "张_三", "李四%", "王五") == {"王五"}


def test_group_search_treats_wildcards_literally(app_ctx):
    from advisor_studio.extensions import db
    from advisor_studio.referrals import queries
    from advisor_studio.referrals.models import CommunityGroup

    owner = make_user("advisor")
    for name in ("100%收益群", "价值_投资", "长线群"):
        db.session.add(CommunityGroup(owner_id=owner.id, platform="wecom", name=name))
    db.session.flush()
    found = lambda q: {g.name for g in db.session.scalars(queries.groups_query(q=q))}  # noqa: E731
    assert found("%") == {"100%收益群"}
    assert found("_") == {"价值_投资"}
    assert found("群") == {"100%收益群", "长线群"}
