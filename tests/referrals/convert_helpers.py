"""Helpers of the conversion tests: signed webhook posts, links and clicks made through the services."""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from advisor_studio.accounts.models import User
from advisor_studio.extensions import db
from advisor_studio.referrals import conversions, services
from advisor_studio.referrals.attribution import sign
from advisor_studio.referrals.models import CommunityGroup, Conversion, Customer, ReferralLink

URL = "/api/v1/conversions"
_keys = itertools.count(1)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def now_iso(**delta) -> str:
    return iso(datetime.now(UTC) + timedelta(**delta))


def raw(body) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()


def signed_headers(secret: str, body: bytes, *, key: str | None = "auto", t: int | None = None) -> dict:
    headers = {"Content-Type": "application/json", "X-Signature": sign(secret, int(t or time.time()), body)}
    if key == "auto":
        key = f"key-{next(_keys)}-{time.time_ns()}"
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


def post_event(app, client, body, *, key: str | None = "auto", t: int | None = None, headers=None):
    """POST ``body`` to the webhook, signed with the app's secret."""
    data = raw(body)
    sent = signed_headers(app.config["CONVERSION_WEBHOOK_SECRET"], data, key=key, t=t)
    sent.update(headers or {})
    return client.post(URL, data=data, headers=sent)


def make_link(app, advisor_id: int, *, group: bool = False, campaign: str | None = "双十一") -> str:
    """A committed link of the advisor (a group link when ``group``); returns its code."""
    with app.app_context():
        advisor = db.session.get(User, advisor_id)
        grp = None
        if group:
            grp = CommunityGroup(owner_id=advisor.id, platform="wecom", name="理财交流1群", member_count=200)
            db.session.add(grp)
            db.session.flush()
        link = services.create_link(owner=advisor, destination="https://kaihu.example.com/open", actor=advisor,
                                    group=grp, campaign=campaign)
        db.session.commit()
        return link.code


def make_click(app, code: str, *, at: datetime | None = None) -> str:
    """A committed click on the link ``code``; returns its click id."""
    with app.app_context():
        link = db.session.scalar(sa.select(ReferralLink).where(ReferralLink.code == code))
        click = conversions.record_click(link, at=at)
        db.session.commit()
        return click.click_id


def event(name: str = "signup", ref: str = "CUST-0001", **fields) -> dict:
    body = {"event": name, "customer_ref": ref, "occurred_at": now_iso()}
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def counts(app) -> tuple[int, int]:
    """(conversions, customers) stored."""
    with app.app_context():
        return (db.session.scalar(sa.select(sa.func.count()).select_from(Conversion)),
                db.session.scalar(sa.select(sa.func.count()).select_from(Customer)))
