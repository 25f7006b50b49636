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
        "今天和大家聊聊资产配置的三个基本原则：第一，分散投资，不把鸡蛋放在一个篮子里；"
        "第二，长期持有，避免频繁交易；第三，控制回撤，根据自己的风险承受能力配置权益类资产的比例。\n"
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
