"""Demo content for `flask seed-demo`: a partner with channels and an approved, rendered package.

Everything goes through the real services (and the real render pipeline, run in-process), so
the demo data is exactly what the product would have produced. Idempotent: content is created
once; only a fresh partner API key is issued on every run.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import sqlalchemy as sa

from advisor_studio.accounts import services as accounts
from advisor_studio.compliance import services as compliance
from advisor_studio.compliance.models import Review
from advisor_studio.distribution import services as distribution
from advisor_studio.distribution.models import Partner
from advisor_studio.extensions import db
from advisor_studio.studio import services as studio
from advisor_studio.studio.models import Package, Script
from advisor_studio.video import services as video
from advisor_studio.video.probe import ffmpeg_exe

DEMO_PARTNER = "星河MCN"
DEMO_CHANNELS = ("douyin:@xinghe_caijing", "kuaishou:@xinghe_licai", "bilibili:星河财经课堂")
DEMO_TITLE = "【演示】资产配置的三个基本原则"


def _demo_body(advisor) -> str:
    profile = advisor.advisor_profile
    return (
        f"大家好，我是{profile.real_name}，执业证书编号{profile.sac_number}。\n"
        "今天和大家聊聊资产配置的三个基本原则：一是分散投资，不把鸡蛋放在一个篮子里；"
        "二是长期持有，避免频繁交易；三是控制回撤，根据自己的风险承受能力配置权益类资产的比例。\n"
        "投资有风险，入市需谨慎。以上内容仅供参考，不构成投资建议。"
    )


def _demo_clip(path: Path) -> None:
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=720x1280:rate=30:duration=6",
         "-f", "lavfi", "-i", "sine=frequency=330:duration=6", "-c:v", "libx264", "-preset", "veryfast",
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)],
        check=True, capture_output=True, timeout=120)


def ensure_partner() -> tuple[Partner, str]:
    """The demo partner with its channels, and a newly issued API key."""
    partner = db.session.scalar(sa.select(Partner).where(Partner.name == DEMO_PARTNER))
    if partner is None:
        return distribution.create_partner(DEMO_PARTNER, DEMO_CHANNELS, actor="seed-demo")
    return partner, distribution.issue_api_key(partner, actor="seed-demo")


def _approve(review_filter, officer) -> None:
    review = db.session.scalars(sa.select(Review).where(review_filter, Review.decision.is_(None),
                                                        Review.superseded_at.is_(None))).one()
    compliance.claim(review, officer)
    compliance.decide(review, officer, "approve")


def ensure_content(advisor_email: str, officer_email: str, partner: Partner) -> Package:
    """An approved, rendered package of the demo advisor assigned to the partner's channels."""
    from advisor_studio.video.tasks import render_rendition

    advisor = accounts.find_user_by_email(advisor_email)
    officer = accounts.find_user_by_email(officer_email)
    existing = db.session.scalar(sa.select(Package).where(Package.author_id == advisor.id,
                                                          Package.title == DEMO_TITLE))
    if existing is not None:
        return existing
    script = db.session.scalar(sa.select(Script).where(Script.author_id == advisor.id, Script.title == DEMO_TITLE))
    if script is None:
        script = studio.create_script(advisor, title=DEMO_TITLE, body=_demo_body(advisor),
                                      caption="资产配置三原则：分散、长期、控制回撤。投资有风险，入市需谨慎。",
                                      hashtags="资产配置 理财知识", platforms=["douyin", "kuaishou", "bilibili"])
    if script.status == "draft":
        studio.submit_script(script, advisor)
    if script.status == "submitted":
        _approve(sa.and_(Review.script_id == script.id, Review.stage == "script"), officer)
    package = studio.create_package(script, advisor, channel_ids=[c.id for c in partner.channels])
    with tempfile.TemporaryDirectory(prefix="demo-clip-") as work:
        clip = Path(work) / "demo.mp4"
        _demo_clip(clip)
        with open(clip, "rb") as fh:
            source = video.accept_upload(package, advisor, fh, "资产配置演示.mp4")
    rendition = video.request_render(package, source, advisor, enqueue=False)
    db.session.commit()  # the in-process render reads these rows in its own transactions
    render_rendition.apply(args=[rendition.id]).get(disable_sync_subtasks=False)
    db.session.expire_all()
    package = db.session.get(Package, package.id)
    studio.submit_package(package, advisor)
    _approve(Review.package_id == package.id, officer)
    return package


# --- referrals: community groups, package and group links, a few weeks of traffic ----------------

DEMO_GROUPS = (
    # platform, name, external id, members, tags
    ("wecom", "晓明理财交流1群", "demo-wecom-1", 386, ["理财", "老客户"]),
    ("wechat", "基金定投学习群", "demo-wechat-2", 214, ["基金", "新手"]),
    ("wecom", "资产配置读书会", "demo-wecom-3", 97, ["资产配置"]),
)
DEMO_TRAFFIC_DAYS = 21
DEMO_SEED = 20261130  # fixed: the same synthetic history on every fresh database


def ensure_groups(advisor_email: str) -> list:
    """The demo advisor's community groups (created once, by external id)."""
    from advisor_studio.referrals.models import CommunityGroup, GroupMemberCount

    advisor = accounts.find_user_by_email(advisor_email)
    groups = []
    for platform, name, external_id, members, tags in DEMO_GROUPS:
        group = db.session.scalar(sa.select(CommunityGroup).where(CommunityGroup.platform == platform,
                                                                  CommunityGroup.external_id == external_id))
        if group is None:
            group = CommunityGroup(owner_id=advisor.id, platform=platform, name=name, external_id=external_id,
                                   member_count=members, tags=tags)
            db.session.add(group)
            db.session.flush()
            db.session.add(GroupMemberCount(group_id=group.id, member_count=members))
        groups.append(group)
    db.session.flush()
    return groups


def ensure_referrals(advisor_email: str, package: Package) -> None:
    """Package and group links of the demo package, its sharing task, and synthetic clicks and
    conversions over the last weeks, recorded through the same services as real ones (once)."""
    import random
    from datetime import timedelta

    from advisor_studio.compliance.approvals import live_approvals_by_package
    from advisor_studio.dbtypes import utcnow
    from advisor_studio.referrals import conversions, sharing
    from advisor_studio.referrals.models import Click

    advisor = accounts.find_user_by_email(advisor_email)
    links = list(sharing.package_links(package).values())  # made when the package was submitted
    approval = live_approvals_by_package([package.id]).get(package.id)
    if approval is not None:
        sharing.create_sharing_task(approval, package, "seed-demo")
    links += [sharing.group_link(package, group, "seed-demo") for group in sharing.active_groups(advisor.id)]
    db.session.flush()
    rng = random.Random(DEMO_SEED)
    first_click_id = "demo" + "".join(rng.choice("abcdefghjkmnpqrstuvwxyz23456789") for _ in range(16))
    if not links or db.session.scalar(sa.select(Click.id).where(Click.click_id == first_click_id)) is not None:
        return  # traffic was generated by an earlier run
    now = utcnow()
    start = now - timedelta(days=DEMO_TRAFFIC_DAYS)
    customers = 0
    referrers = []
    for day in range(DEMO_TRAFFIC_DAYS):
        for index, link in enumerate(links):
            weekend = (start + timedelta(days=day)).weekday() >= 5
            base = (18 if link.kind == "package" else 9) * (1.4 if weekend else 1.0) * (1 + day / 30)
            for n in range(max(0, int(rng.gauss(base, base / 4)))):
                at = start + timedelta(days=day, seconds=rng.randrange(86_400))
                if at >= now:
                    continue
                bot = rng.random() < 0.04
                click_id = first_click_id if (day, index, n) == (0, 0, 0) else conversions.new_click_id()
                in_app = "wechat" if link.kind == "group" and rng.random() < 0.7 else rng.choice(
                    ["douyin", "none", "wechat", "other"])
                click = conversions.record_click(link, at=at, visitor=f"v{rng.randrange(5000)}", is_bot=bot,
                                                 in_app=in_app, device_class=rng.choice(["mobile"] * 8 + ["desktop"]),
                                                 approval_id=approval.id if approval else None, click_id=click_id,
                                                 flush=False)
                if bot or rng.random() > 0.09:
                    continue
                customers += 1
                ref = f"DEMO-CUST-{customers:05d}"
                referrers += _demo_journey(rng, ref, click, now, employee=customers % 23 == 0)
    db.session.flush()
    # 以老带新: two converted customers bring friends through their own links.
    for ref in referrers[:2]:
        link = conversions.customer_link(conversions.customer_by_ref(ref), actor="seed-demo")
        for friend in range(rng.randint(1, 3)):
            at = now - timedelta(days=rng.randint(1, 6), hours=rng.randint(0, 20))
            click = conversions.record_click(link, at=at, visitor=f"f{ref}{friend}")
            _demo_journey(rng, f"{ref}-F{friend}", click, now, employee=False)


def _demo_journey(rng, ref: str, click, now, *, employee: bool) -> list[str]:
    """One customer's events after ``click``; returns [ref] when they opened an account and funded."""
    from datetime import timedelta

    from advisor_studio.referrals import conversions

    steps = [("signup", None, 0.0)]
    if rng.random() < 0.62:
        steps.append(("account_opened", None, rng.uniform(2, 48)))
        if rng.random() < 0.06:
            steps.append(("account_rejected", None, rng.uniform(50, 80)))
        elif rng.random() < 0.7:
            amount = f"{rng.choice([5000, 10000, 20000, 50000, 100000]) * rng.uniform(0.5, 1.5):.2f}"
            steps.append(("funded", amount, rng.uniform(50, 120)))
            if rng.random() < 0.55:
                steps.append(("first_trade", None, rng.uniform(121, 200)))
            if rng.random() < 0.08:
                steps.append(("withdrawal", f"{float(amount) * 0.3:.2f}", rng.uniform(201, 300)))
    done = []
    for name, amount, hours in steps:
        occurred = click.at + timedelta(minutes=rng.randint(3, 40), hours=hours)
        if occurred > now:
            break
        event = conversions.Event(event=name, customer_ref=ref, occurred_at=occurred, amount=amount and
                                  conversions.attribution.parse_amount(amount), is_employee=employee,
                                  click_id=click.click_id if name == "signup" else None)
        key = f"seed-demo:{ref}:{name}"
        conversions.record_conversion(event, idempotency_key=key,
                                      digest=conversions.attribution.body_sha256(key.encode()))
        done.append(name)
    return [ref] if "funded" in done and "account_rejected" not in done else []


def ensure_rollups() -> None:
    """Bring the analytics rollups up to date, so the analytics pages show the demo traffic at once."""
    from advisor_studio.analytics import rollups

    rollups.refresh()
