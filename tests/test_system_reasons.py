"""The reasons the system writes read in the reader's language: a voided approval's "why" on the package
and review pages, in zh_CN and English, for reasons stored now and the same wording stored before; a
reason a person typed shows as typed. File sizes read in the reader's language too."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask_babel import force_locale

from advisor_studio import system_reasons
from advisor_studio.accounts.models import User
from advisor_studio.compliance import services as compliance
from advisor_studio.compliance.models import Approval, Review
from advisor_studio.extensions import db
from advisor_studio.studio import services as studio
from advisor_studio.studio.models import Package
from advisor_studio.templating import file_size
from tests.conftest import signed_in
from tests.studio.test_pages import approved_package

# (stored text, zh_CN, English): what every builder writes, and the same wording as stored before.
READ_BACK = [
    (system_reasons.changed_after_approval(["caption"]), "批准后修改了文案", "Changed after approval: Caption"),
    (system_reasons.changed_after_approval(["title", "caption", "channels"]), "批准后修改了标题、文案和渠道",
     "Changed after approval: Title, Caption, and Channels"),
    ("changed after approval: rendition", "批准后修改了成片", "Changed after approval: Rendition"),
    (system_reasons.withdrawn("误导性表述"), "已撤回：误导性表述", "Withdrawn: 误导性表述"),
    (system_reasons.renewed(12), "已由合规审核 #12 续期", "Renewed by review #12"),
    (system_reasons.integrity_alert(3, "video"), "完整性告警 #3：存储的视频与批准时的 SHA-256 不一致",
     "Integrity alert #3: the stored video no longer matches the approved SHA-256"),
    (system_reasons.APPROVAL_PERIOD_ENDED, "批准有效期已结束", "The approval period ended"),
    (system_reasons.RECALLED_BY_AUTHOR, "作者撤回提交", "Recalled by the author"),
    (system_reasons.DUPLICATE_CLOSED_BY_MIGRATION, "已被更新的批准取代（系统升级时关闭的重复批准）",
     "Superseded by a newer approval (a duplicate closed during an upgrade)"),
]


@pytest.mark.parametrize(("stored", "chinese", "english"), READ_BACK)
def test_a_system_reason_reads_in_the_readers_language(app, stored, chinese, english):
    with app.test_request_context():
        with force_locale("zh_CN"):
            assert system_reasons.label(stored) == chinese
        with force_locale("en"):
            assert system_reasons.label(stored) == english


@pytest.mark.parametrize("typed", ["内容与事实不符", "changed after approval? no: typed by a person", "", None])
def test_a_reason_a_person_typed_is_shown_as_typed(app, typed):
    with app.test_request_context(), force_locale("zh_CN"):
        assert system_reasons.label(typed) == (typed or "")


def test_an_unknown_field_or_file_kind_shows_as_stored_rather_than_failing(app):
    with app.test_request_context(), force_locale("zh_CN"):
        assert system_reasons.label("changed after approval: caption, voice_over") == "批准后修改了文案和voice_over"
        assert "thumbnail" in system_reasons.label(system_reasons.integrity_alert(4, "thumbnail"))


def _void_reason_on(client, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'data-testid="void-reason">([^<]*)<', page)
    assert match, "no void reason on the page"
    return match.group(1).strip()


def test_an_edited_approved_package_says_in_chinese_why_its_approval_was_voided(app, users):
    package_id = approved_package(app, users["advisor"].id, users["compliance"].id)
    with app.app_context():
        package = db.session.get(Package, package_id)
        studio.update_package(package, db.session.get(User, users["advisor"].id), caption="长期持有，耐心等待。",
                              title="资产配置三原则（修订）")
        db.session.commit()
        approval = db.session.scalars(sa.select(Approval).where(Approval.package_id == package_id)).one()
        assert approval.void_reason == "changed after approval: title, caption"  # the record keeps its wording
        review_id = db.session.scalar(sa.select(Review.id).where(Review.package_id == package_id))
    advisor = signed_in(app, users["advisor"])
    assert _void_reason_on(advisor, f"/studio/packages/{package_id}") == "批准后修改了标题和文案"
    assert _void_reason_on(advisor, f"/studio/packages/{package_id}?lang=en") == \
        "Changed after approval: Title and Caption"
    officer = signed_in(app, users["compliance"])
    page = officer.get(f"/compliance/reviews/{review_id}").get_data(as_text=True)
    assert "批准后修改了标题和文案" in page and "changed after approval" not in page


def test_a_withdrawn_package_shows_the_officers_reason_under_a_chinese_heading(app, users):
    package_id = approved_package(app, users["advisor"].id, users["compliance"].id)
    with app.app_context():
        compliance.withdraw(db.session.get(Package, package_id), db.session.get(User, users["compliance"].id),
                            "误导性表述")
        db.session.commit()
    advisor = signed_in(app, users["advisor"])
    assert _void_reason_on(advisor, f"/studio/packages/{package_id}") == "已撤回：误导性表述"


@pytest.mark.parametrize(("size", "chinese", "english"), [
    (0, "0 字节", "0 bytes"), (1, "1 字节", "1 byte"), (37, "37 字节", "37 bytes"), (999, "999 字节", "999 bytes"),
    (1000, "1 kB", "1 kB"), (2528, "2.5 kB", "2.5 kB"), (73_400_320, "73.4 MB", "73.4 MB"),
    (2_147_483_648, "2.1 GB", "2.1 GB"), (5 * 10**15, "5,000 TB", "5,000 TB"),
])
def test_file_sizes_read_in_the_readers_language(app, size, chinese, english):
    with app.test_request_context():
        with force_locale("zh_CN"):
            assert file_size(size) == chinese
        with force_locale("en"):
            assert file_size(size) == english
