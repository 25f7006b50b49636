"""`flask links stats CODE` per the contract: one JSON object, buffered clicks included, exit 1 if unknown."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from itertools import count

import sqlalchemy as sa

from advisor_studio.dbtypes import utcnow
from advisor_studio.extensions import db
from advisor_studio.referrals.models import Conversion, Customer, ReferralLink
from tests.conftest import ROOT, subprocess_env
from tests.referrals.test_redirect import BROWSER, GOOGLEBOT, make_link

KEYS = ["code", "clicks", "bot_clicks", "unique_visitors", "signups", "accounts_opened", "funded_amount",
        "first_trades"]
_keys = count(1)


def stats(app, code: str):
    return app.test_cli_runner().invoke(args=["links", "stats", code])


def add_event(link_id: int | None, customer: str, event: str, amount: str | None = None) -> None:
    """A stored conversion row as the webhook (convert lane) would leave it."""
    found = db.session.scalar(sa.select(Customer).where(Customer.ref_hash == customer))
    if found is None:
        found = Customer(ref_hash=customer, link_id=link_id)
        db.session.add(found)
        db.session.flush()
    now = utcnow()
    db.session.add(Conversion(idempotency_key=f"k{next(_keys)}", body_sha256="0" * 64, response={}, event=event,
                              customer_id=found.id, occurred_at=now, day=now.date(),
                              amount=Decimal(amount) if amount else None, link_id=link_id))


def test_unknown_code_exits_1(app):
    result = stats(app, "zzzzzzz")
    assert result.exit_code == 1
    assert "unknown" in result.output


def test_new_link_has_all_zero_stats_in_the_contract_shape(app, users):
    code = make_link(app, users["advisor"].id)
    result = stats(app, code)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert list(data) == KEYS
    assert data == {"code": code, "clicks": 0, "bot_clicks": 0, "unique_visitors": 0, "signups": 0,
                    "accounts_opened": 0, "funded_amount": "0.00", "first_trades": 0}


def test_stats_count_buffered_clicks_bots_apart_and_visitors_once_a_day(app, users):
    code = make_link(app, users["advisor"].id)
    other = make_link(app, users["advisor"].id)
    alice = app.test_client()
    for _ in range(3):  # one visitor, three clicks (two of them duplicates)
        alice.get(f"/r/{code}", headers={"User-Agent": BROWSER}, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    app.test_client().get(f"/r/{code}", headers={"User-Agent": BROWSER}, environ_base={"REMOTE_ADDR": "192.0.2.1"})
    app.test_client().get(f"/r/{code}", headers={"User-Agent": GOOGLEBOT})
    app.test_client().head(f"/r/{code}", headers={"User-Agent": BROWSER})
    app.test_client().get(f"/r/{other}", headers={"User-Agent": BROWSER})  # another link's click
    result = stats(app, code)  # nothing drained yet: stats drains first
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["clicks"], data["bot_clicks"], data["unique_visitors"]) == (4, 2, 2)


def test_stats_net_reversals_and_withdrawals_per_the_contract(app, users):
    code = make_link(app, users["advisor"].id)
    other = make_link(app, users["advisor"].id)
    with app.app_context():
        link_id = db.session.scalar(sa.select(ReferralLink.id).where(ReferralLink.code == code))
        other_id = db.session.scalar(sa.select(ReferralLink.id).where(ReferralLink.code == other))
        for customer in ("a", "b", "c"):
            add_event(link_id, customer, "signup")
            add_event(link_id, customer, "account_opened")
        add_event(link_id, "c", "account_rejected")  # reverses c's opening
        add_event(link_id, "a", "funded", "1000.50")
        add_event(link_id, "b", "funded", "200")
        add_event(link_id, "a", "withdrawal", "300.25")
        add_event(link_id, "a", "first_trade")
        add_event(other_id, "z", "signup")  # another link's
        add_event(other_id, "z", "funded", "99")
        add_event(None, "u", "signup")  # unattributed
        db.session.commit()
    data = json.loads(stats(app, code).output)
    assert data == {"code": code, "clicks": 0, "bot_clicks": 0, "unique_visitors": 0, "signups": 3,
                    "accounts_opened": 2, "funded_amount": "900.25", "first_trades": 1}


def test_stats_command_runs_as_a_real_cli_process_and_sees_the_web_processes_clicks(app, users):
    code = make_link(app, users["advisor"].id)
    client = app.test_client()
    for _ in range(2):
        client.get(f"/r/{code}", headers={"User-Agent": BROWSER})
    # The clicks are still in this (live) web process's spool: the CLI process drains them first.
    proc = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "links", "stats", code], cwd=ROOT,
                          env=subprocess_env(app), capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    data = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    assert data["code"] == code and data["clicks"] == 2 and data["unique_visitors"] == 1
    missing = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "links", "stats", "zzzzzzz"],
                             cwd=ROOT, env=subprocess_env(app), capture_output=True, timeout=120)
    assert missing.returncode == 1
