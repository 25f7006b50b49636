"""The studio pages in headless Chromium: the editor with pre-check findings, the revision diff and
the package page render under the real CSP (no inline script or style) and are saved as screenshots.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from advisor_studio.accounts.models import User
from advisor_studio.extensions import db
from advisor_studio.studio import services as studio
from advisor_studio.studio.models import Package, Script
from tests.conftest import screenshot
from tests.factories import ensure_lexicon, legal_script_body, make_channel, make_ready_rendition
from tests.studio.test_pages import approved_package, create_script, decide_open_review

pytestmark = pytest.mark.browser

def sign_in(page, live_server, user) -> None:
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", user.password)
    page.click('[data-testid="login-submit"]')
    page.wait_for_url(f"{live_server}/")


def test_script_editor_diff_and_package_pages_in_chromium(app, users, live_server, page):
    _drive(page, app, users, live_server)


def _drive(page, app, users, live_server) -> None:
    advisor, officer = users["advisor"], users["compliance"]
    with app.app_context():
        ensure_lexicon()
        db.session.commit()
        legal = legal_script_body(db.session.get(User, advisor.id))
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    sign_in(page, live_server, advisor)

    # The editor: type a risky script, pre-check it, see the highlighted findings.
    page.goto(f"{live_server}/studio/scripts/new")
    page.fill("input[name=title]", "三个月稳赚的配置方法")
    page.fill("textarea[name=body]", "今天教大家一个方法，保证收益翻倍，稳赚不赔！\n跟我买600519，下周必涨。")
    page.fill("textarea[name=caption]", "零风险理财 #投资")
    page.check("input[name=platforms][value=douyin]")
    page.click('[data-testid="save-precheck"]')
    page.wait_for_selector('[data-testid="findings"]')
    assert page.locator("mark.finding-block").count() >= 3
    assert page.locator('[data-testid="document-finding"]').count() >= 1
    assert screenshot(page, "studio-script-findings").stat().st_size > 10_000

    # Blocked submission keeps the text and shows the report.
    page.click('[data-testid="submit-script"]')
    page.wait_for_selector('[data-testid="action-error"]')
    assert page.locator('[data-testid="findings"]').get_attribute("data-blocking") == "true"

    # Two revisions and their diff.
    script_id = create_script(app, advisor.id, title="资产配置三原则", body=legal, submit=True)
    decide_open_review(app, officer.id, "request_changes", "请把“控制回撤”说得更具体", script_id=script_id)
    with app.app_context():
        author = db.session.get(User, advisor.id)
        script = db.session.get(Script, script_id)
        new_body = (legal.replace("长期持有", "长期坚定持有").replace("控制回撤", "控制最大回撤在10%以内")
                    .replace("分散投资", "多元配置"))
        studio.update_script(script, author, title="资产配置的三个原则", body=new_body, caption="长期投资，稳健配置",
                             hashtags=["理财", "资产配置"], platforms=["douyin", "bilibili"])
        studio.submit_script(script, author)
        db.session.commit()
    page.goto(f"{live_server}/studio/scripts/{script_id}/diff")
    assert page.locator(".diff-table ins").count() >= 2 and page.locator(".diff-table del").count() >= 1
    assert screenshot(page, "studio-diff").stat().st_size > 10_000
    page.goto(f"{live_server}/studio/scripts/{script_id}/revisions")
    screenshot(page, "studio-revisions")

    # An approved package with subtitles, and a draft package that still needs its video.
    package_id = approved_package(app, advisor.id, officer.id)
    with app.app_context():
        make_channel(partner_name="蓝海MCN", platform="bilibili", handle="lanhai_finance")
        make_channel(partner_name="蓝海MCN", platform="xiaohongshu", handle="lanhai_xhs")
        db.session.commit()
    page.goto(f"{live_server}/studio/packages/{package_id}")
    assert page.locator('[data-testid="void-warning"]').is_visible()
    assert page.locator('[data-testid="rendition-panel"]').is_visible()
    assert screenshot(page, "studio-package-approved").stat().st_size > 10_000
    with app.app_context():
        draft_script = db.session.scalars(sa.select(Script).where(Script.status == "approved")).first()
        draft = studio.create_package(draft_script, db.session.get(User, advisor.id))
        db.session.commit()
        draft_id = draft.id
    page.goto(f"{live_server}/studio/packages/{draft_id}")
    assert page.locator('[data-testid="check-rendition"]').get_attribute("data-ok") == "false"
    screenshot(page, "studio-package-draft")

    # The overview and the landing section.
    with app.app_context():
        make_ready_rendition(db.session.get(Package, draft_id))
        db.session.commit()
    page.goto(f"{live_server}/studio/")
    assert page.locator('[data-testid="content-row"]').count() >= 3
    screenshot(page, "studio-my-content")
    page.goto(f"{live_server}/")
    assert page.locator('[data-testid="studio-landing"]').is_visible()
    screenshot(page, "studio-landing")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server}/studio/scripts/{script_id}")
    screenshot(page, "studio-script-mobile")
    csp = [e for e in errors if "Content Security Policy" in e or "Refused" in e]
    assert csp == [], csp


def test_render_badge_follows_the_progress_bar_and_an_approved_package_warns_before_upload(
        app, users, live_server, page):
    """The badge said "queued" while the bar climbed; an upload to an approved package said nothing."""
    from advisor_studio.video.models import RENDER_QUEUED, RENDER_RUNNING, Rendition

    advisor = users["advisor"]
    package_id = approved_package(app, advisor.id, users["compliance"].id)
    with app.app_context():
        package = db.session.get(Package, package_id)
        ready = package.rendition
        queued = Rendition(package_id=package_id, source_id=ready.source_id, recipe={}, recipe_hash="1" * 64,
                           status=RENDER_QUEUED, progress=0.0)
        db.session.add(queued)
        db.session.commit()
        queued_id = queued.id
    sign_in(page, live_server, advisor)
    page.goto(f"{live_server}/studio/packages/{package_id}")
    assert page.locator('[data-testid="upload-approved-warning"]').is_visible()
    badge = page.locator(f'[data-testid="rendition-{queued_id}"] [data-status]')
    assert badge.inner_text().strip() == "排队中"
    with app.app_context():
        db.session.execute(sa.update(Rendition).where(Rendition.id == queued_id)
                           .values(status=RENDER_RUNNING, progress=40.0))
        db.session.commit()
    page.wait_for_function(
        "id => document.querySelector(`[data-testid='rendition-${id}'] [data-status]`).textContent.trim() === '渲染中'",
        arg=queued_id, timeout=15_000)
    bar = page.locator(f'[data-testid="rendition-{queued_id}"] [data-bar]')
    assert bar.inner_text().strip() == "40%"
    assert "text-bg-info" in badge.get_attribute("class")
    screenshot(page, "studio-render-badge")
