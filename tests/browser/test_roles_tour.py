"""Every role's screens in headless Chromium, in zh_CN, at 1280 and 390 px (issue 11).

Each role signs in through the login page and visits every page of its menu (read from the page's own
navigation, so a new menu entry is toured without editing this file), the bell's notifications, the
account pages of the user menu and one item page per list. Every page must answer 200, log no console
error, need no sideways scrolling, squeeze no table column or short button onto several lines, cut off
no table at the side, and show no English word of the interface: the visible text
(``document.body.innerText``) may hold ASCII words of four or more letters only when they are data
(the names, codes, addresses and hashes made here), shown as code (<code>, <pre>) or in ALLOWED. A
screenshot of every page is saved as test-artifacts/screenshots/tour-<role>-<width>-<page>.png for a
person to look at.

The data is made through the services: an approved package with a rendition on a partner's channel,
one approved and then edited (its approval voided), a script waiting for review, a group, a referral
link with clicks, a conversion and a fraud flag, a reconciliation upload and the notifications those
produce. One browser context per role and width.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from advisor_studio.accounts.models import User
from advisor_studio.analytics import fraud, reconciliation, rollups
from advisor_studio.analytics.models import FraudFlag, ReconciliationUpload
from advisor_studio.compliance.models import LexiconRule, Review
from advisor_studio.distribution import services as distribution
from advisor_studio.distribution.models import Channel, WebhookEvent
from advisor_studio.extensions import db
from advisor_studio.navigation import MENU
from advisor_studio.referrals import conversions, sharing
from advisor_studio.referrals import groups as group_services
from advisor_studio.referrals import services as referrals
from advisor_studio.referrals.models import CommunityGroup, ReferralLink, SharingTask
from advisor_studio.studio import services as studio
from advisor_studio.studio.models import Package
from tests.conftest import record_of, screenshot
from tests.distribution.portal_helpers import approved_asset
from tests.factories import ensure_lexicon, make_user
from tests.studio.test_pages import create_script

pytestmark = pytest.mark.browser

WIDTHS = (1280, 390)
ROLES = ("advisor", "compliance", "mcn", "admin")
PARTNER = "星河MCN"

# ASCII words a zh_CN page may show: names of products, methods and formats that Chinese staff use as
# they are, and the language switch (which names English in English on purpose). Every other word of four
# or more letters is a leak.
ALLOWED = {
    "english",  # the language switch offers English, written in English
    "webhook",  # the technical term, as in "Webhook 地址"
    "https", "http",  # protocols, as in "生产环境必须使用 https"
    "aarrr",  # the AARRR funnel model (a tab of the analytics pages)
    "jpeg", "webp", "excel", "windows",  # file formats and products named in help texts
}
TOKEN_SKIP = re.compile(r"://|@|^/|^www\.|\.(?:com|cn|csv|mp4|jpg|png|srt)\b|[0-9_•]")
WORD = re.compile(r"[A-Za-z]{4,}")

# What the tour measures on each page: the width of the document; the visible text and the words shown
# as code (<code>, <kbd>, <samp>, <pre>); table cells narrower than 40 px whose text wraps (a squeezed
# column: one character per line) and tables wider than their box (columns cut off on a phone).
PAGE_STATE = """() => {
  const visible = el => { const box = el.getBoundingClientRect(); return box.width > 0 || box.height > 0; };
  // Text that runs onto a second line: some piece of it starts below the bottom of the first piece.
  const wraps = el => {
    const range = document.createRange();
    range.selectNodeContents(el);
    const rects = [...range.getClientRects()].filter(r => r.width > 0);
    return rects.length > 1 && rects.some(r => r.top >= rects[0].bottom - 1);
  };
  const narrow = [], clipped = [];
  for (const cell of document.querySelectorAll('main td, main th')) {
    if (!visible(cell) || !cell.innerText.trim()) continue;
    const width = cell.getBoundingClientRect().width;
    if (width < 40 && wraps(cell)) narrow.push(`${Math.round(width)}px “${cell.innerText.trim().slice(0, 10)}”`);
  }
  for (const el of document.querySelectorAll('main .btn, main .nav-link, main .badge')) {
    const text = el.innerText.trim();
    if (!visible(el) || !text || text.length > 8) continue;
    if (wraps(el)) narrow.push(`button “${text}”`);
  }
  for (const table of document.querySelectorAll('main table')) {
    const box = table.parentElement;
    if (visible(table) && table.getBoundingClientRect().width > box.clientWidth + 1)
      clipped.push(`${Math.round(table.getBoundingClientRect().width)}px in ${box.clientWidth}px`);
  }
  const codeWords = [...document.querySelectorAll('code, kbd, samp, pre')]
    .flatMap(el => el.innerText.match(/[A-Za-z]{4,}/g) || []);
  return {scrollWidth: document.documentElement.scrollWidth, text: document.body.innerText, narrow, clipped,
          codeWords};
}"""


def english_words(text: str, allowed: set[str]) -> list[str]:
    """ASCII words of 4+ letters in ``text`` that are neither ALLOWED nor in ``allowed`` (data, codes),
    each with the line it stands in."""
    found = []
    for line in text.splitlines():
        for token in line.split():
            if TOKEN_SKIP.search(token):
                continue  # an address, an e-mail, a path, a file name, a code or a hash: data, not wording
            for word in WORD.findall(token):
                if word.lower() not in ALLOWED and word.lower() not in allowed:
                    found.append(f"{word} («{line.strip()[:80]}»)")
    return found


@pytest.fixture
def world(app):
    """Realistic data for every role, made through the services (see the module docstring)."""
    with app.app_context():
        ensure_lexicon()
        people = {
            "advisor": make_user("advisor", name="王晓明", email="wang.xiaoming@example.com"),
            "compliance": make_user("compliance", name="李静", email="li.jing@example.com"),
            "admin": make_user("admin", name="赵磊", email="zhao.lei@example.com"),
        }
        admin = people["admin"]
        partner, _key = distribution.create_partner(
            PARTNER, ["douyin:@xinghe_licai", "kuaishou:xinghe"], actor=admin, contact_name="陈芳",
            contact_email="chen.fang@xinghe.example.com", contact_phone="+86 10 1234 5678")
        mcn = make_user("mcn", name="陈芳", email="chen.fang@xinghe.example.com")
        distribution.set_user_partner(mcn, partner, actor=admin)
        people["mcn"] = mcn
        advisor = people["advisor"]
        group = group_services.create_group(owner=advisor, actor=advisor, platform="wecom", name="价值投资交流群",
                                            external_id=None, member_count=186, tags="老客户")
        channel_ids = [c.id for c in db.session.scalars(sa.select(Channel).order_by(Channel.id))]
        db.session.commit()
        group_id, partner_id = group.id, partner.id
        records = {role: record_of(user) for role, user in people.items()}

    # An approved package with a rendition on the douyin channel (the approval makes its assignment,
    # a webhook event and the advisor's sharing task), and one approved then edited: its approval is void.
    package_id, (assignment_id,) = approved_asset(app, records, [channel_ids[0]], title="资产配置三原则")
    edited_id, _ = approved_asset(app, records, [channel_ids[1]], title="长期持有的理由")
    with app.app_context():
        studio.update_package(db.session.get(Package, edited_id), db.session.get(User, records["advisor"].id),
                              caption="长期持有，耐心等待价值回归。")
        db.session.commit()
    pending_script = create_script(app, records["advisor"].id, title="如何看待市场波动", submit=True)

    with app.app_context():
        advisor = db.session.get(User, records["advisor"].id)
        # Two visitors click the group link of the approved package; one signs up 4 s after clicking
        # (a fraud flag) and opens an account. A campaign link of the group has no traffic yet.
        link = sharing.group_link(db.session.get(Package, package_id), db.session.get(CommunityGroup, group_id),
                                  advisor)
        referrals.create_link(owner=advisor, actor=advisor, destination="https://kaihu.example.com/open",
                              group=db.session.get(CommunityGroup, group_id), campaign="双十一")
        now = datetime.now(UTC).replace(microsecond=0)
        first = conversions.record_click(link, at=now - timedelta(hours=3), visitor="visitor-a", is_bot=False)
        conversions.record_click(link, at=now - timedelta(hours=2), visitor="visitor-b", is_bot=False)
        for name, after in (("signup", timedelta(seconds=4)), ("account_opened", timedelta(hours=1))):
            conversions.record_conversion(
                conversions.Event(event=name, customer_ref="KH20261201001", occurred_at=first.at + after,
                                  click_id=first.click_id if name == "signup" else None),
                idempotency_key=f"tour-{name}", digest=conversions.attribution.body_sha256(name.encode()))
        fraud.detect(now - timedelta(days=1), now + timedelta(minutes=1))
        # The account-opening system's file for the last week: our customer and one we never saw.
        today = now.date()
        csv = "customer_ref,opened_on\nKH20261201001,{d}\nKH20261201002,{d}\n".format(d=today.isoformat())
        reconciliation.create_upload(io.BytesIO(csv.encode()), "开户明细.csv", period_from=today - timedelta(days=7),
                                     period_to=today, actor=db.session.get(User, records["admin"].id))
        db.session.commit()
        rollups.refresh()
        db.session.commit()
        first_id = lambda model: db.session.scalar(sa.select(model.id).order_by(model.id).limit(1))  # noqa: E731
        ids = SimpleNamespace(
            package=package_id, edited=edited_id, script=pending_script, assignment=assignment_id,
            group=group_id, link=link.id, partner=partner_id, channel=channel_ids[0], user=records["advisor"].id,
            review=db.session.scalar(sa.select(Review.id).where(Review.script_id == pending_script,
                                                                Review.decision.is_(None))),
            rule=first_id(LexiconRule), flag=first_id(FraudFlag), event=first_id(WebhookEvent),
            task=first_id(SharingTask), upload=first_id(ReconciliationUpload))
        # Data that may show on a page as it is: link codes, channel handles and the lexicon's own text
        # (it has English phrases that promise returns, and their compliant English rewording).
        data = [*db.session.scalars(sa.select(ReferralLink.code)), *db.session.scalars(sa.select(Channel.handle))]
        for rule in db.session.scalars(sa.select(LexiconRule)):
            data += [rule.phrase, rule.suggestion, rule.note]
        words = {word.lower() for text in data for word in WORD.findall(text or "")}
    return SimpleNamespace(people=records, ids=ids, words=words)


ACCOUNT_PAGES = [("notifications", "/notifications"), ("password", "/account/password"),
                 ("two-factor", "/account/2fa")]


def item_pages(role: str, ids) -> list[tuple[str, str]]:
    """One item page per list of the role's menu, and the pages of the bell and the user menu."""
    pages = {
        "advisor": [("script", f"/studio/scripts/{ids.script}"), ("package", f"/studio/packages/{ids.package}"),
                    ("package-voided", f"/studio/packages/{ids.edited}"), ("link", f"/referrals/links/{ids.link}"),
                    ("group", f"/referrals/groups/{ids.group}"), ("task", f"/referrals/tasks/{ids.task}"),
                    ("profile", "/account/profile")],
        "compliance": [("review", f"/compliance/reviews/{ids.review}"),
                       ("approved-package", f"/studio/packages/{ids.package}"),
                       ("voided-package", f"/studio/packages/{ids.edited}"),
                       ("rule", f"/compliance/lexicon/rules/{ids.rule}"),
                       ("fraud-flag", f"/compliance/fraud/{ids.flag}")],
        "mcn": [("asset", f"/portal/assets/{ids.assignment}")],
        "admin": [("user", f"/admin/users/{ids.user}"), ("partner", f"/admin/partners/{ids.partner}"),
                  ("channel", f"/admin/channels/{ids.channel}"), ("webhook-event", f"/admin/webhooks/{ids.event}"),
                  ("reconciliation", f"/analytics/reconciliation/{ids.upload}")],
    }
    return pages[role] + ACCOUNT_PAGES


def test_the_english_check_flags_wording_and_passes_data_codes_and_addresses():
    text = ("作品包 Draft\n王晓明 · S0000001000001 · evt_3fa9 · wang.xiaoming@example.com\n"
            "https://kaihu.example.com/open /r/fjnkapm 开户明细.csv English\n抖音 · xinghe")
    assert [w.split(" ")[0] for w in english_words(text, {"xinghe"})] == ["Draft"]


def menu_size(app, role: str) -> int:
    """How many entries navigation.MENU gives ``role`` (registered endpoints, each once)."""
    return len({endpoint for menu_role, _label, endpoint in MENU
                if menu_role == role and endpoint in app.view_functions})


def page_problems(page, where: str, width: int, allowed: set[str]) -> list[str]:
    """What is wrong with the page on screen: sideways scrolling, squeezed columns or buttons, tables cut
    off at the side, English words."""
    state = page.evaluate(PAGE_STATE)
    problems = []
    if state["scrollWidth"] > width:
        problems.append(f"{where}: scrolls sideways ({state['scrollWidth']} px)")
    if state["narrow"]:
        problems.append(f"{where}: squeezed {state['narrow'][:4]}")
    if state["clipped"]:
        problems.append(f"{where}: tables wider than their box {state['clipped']}")
    leaks = english_words(state["text"], allowed | {w.lower() for w in state["codeWords"]})
    if leaks:
        problems.append(f"{where}: English " + "; ".join(dict.fromkeys(leaks)))
    return problems


def test_every_page_of_every_role_reads_in_chinese_and_fits_desktop_and_phone(app, browser, live_server, world):
    problems: list[str] = []
    allowed = world.words
    for role in ROLES:
        user = world.people[role]
        for width in WIDTHS:
            context = browser.new_context(viewport={"width": width, "height": 844 if width < 768 else 800},
                                          locale="zh-CN")
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda msg, errors=errors: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
            try:
                page.goto(f"{live_server}/login")
                page.fill("input[name=email]", user.email)
                page.fill("input[name=password]", user.password)
                page.click('[data-testid="login-submit"]')
                page.wait_for_url(f"{live_server}/")
                menu = page.eval_on_selector_all("#mainnav .nav-link", "all => all.map(a => a.getAttribute('href'))")
                assert len(menu) == menu_size(app, role), (role, menu)
                tour = [(path.strip("/").replace("/", "-") or "home", path) for path in menu]
                for name, path in tour + item_pages(role, world.ids):
                    errors.clear()
                    response = page.goto(f"{live_server}{path}")
                    where = f"{role} {width}px {path}"
                    if response is None or response.status != 200:
                        problems.append(f"{where}: HTTP {response.status if response else 'none'}")
                    problems += page_problems(page, where, width, allowed)
                    if errors:
                        problems.append(f"{where}: console errors {errors}")
                    screenshot(page, f"tour-{role}-{width}-{name}")
            finally:
                context.close()
    assert problems == [], "\n".join(problems)
