"""Fraud detection on crafted data: each pattern just at and just below its threshold, idempotent re-runs,
open flags growing and decided ones left alone."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from advisor_studio.accounts.models import User
from advisor_studio.analytics import fraud
from advisor_studio.analytics.models import (
    FLAG_CONFIRMED,
    FLAG_NETWORK_BURST,
    FLAG_OPEN,
    FLAG_SELF_CONVERSION,
    FLAG_SHORT_LAG,
    FLAG_SIGNUP_BURST,
    FLAG_VISITOR_BURST,
    FraudFlagItem,
)
from advisor_studio.audit import AuditEntry
from advisor_studio.extensions import db
from advisor_studio.referrals import services as referrals
from advisor_studio.referrals.models import Customer
from tests.analytics.fraud_helpers import NET, T0, add_click, add_conversion, flags, item_sets, window

DEST = "https://kaihu.example.com/open"


@pytest.fixture
def ctx(app, users):
    with app.app_context():
        advisor = db.session.get(User, users["advisor"].id)
        advisor2 = db.session.get(User, users["advisor2"].id)
        links = [referrals.create_link(owner=advisor, actor=advisor, destination=DEST) for _ in range(2)]
        other = referrals.create_link(owner=advisor2, actor=advisor2, destination=DEST)
        db.session.commit()
        yield type("Ctx", (), {"advisor": advisor, "advisor2": advisor2, "link": links[0], "link_b": links[1],
                               "other": other})


def detect(**kwargs):
    result = fraud.detect(*window(), **kwargs)
    db.session.commit()
    return result


def raised_entries() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)
                             .where(AuditEntry.action == "fraud_flag.raised"))


# --- short lag -----------------------------------------------------------------------------------


def _signup_after(link, seconds: float):
    click = add_click(link, T0)
    signup = add_conversion(link, "signup", T0 + timedelta(seconds=seconds), click=click)
    return click, signup


def test_signup_nine_seconds_after_its_click_is_flagged_with_the_click_and_the_customers_events(ctx):
    click, signup = _signup_after(ctx.link, 9)
    customer = db.session.get(Customer, signup.customer_id)
    opened = add_conversion(ctx.link, "account_opened", T0 + timedelta(minutes=30), customer=customer)
    db.session.commit()
    result = detect(kinds=[FLAG_SHORT_LAG])
    [flag] = flags(FLAG_SHORT_LAG)
    assert result.raised[FLAG_SHORT_LAG] == 1
    assert flag.subject == f"conversion:{signup.id}" and flag.status == FLAG_OPEN
    assert flag.advisor_id == ctx.advisor.id and flag.day == T0.date()
    assert flag.detail["lag_seconds"] == 9 and flag.detail["threshold_seconds"] == 10
    assert item_sets(flag) == ({click.id}, {signup.id, opened.id})


@pytest.mark.parametrize("seconds", [10, 11, 3600])
def test_signup_ten_seconds_or_more_after_its_click_is_not_flagged(ctx, seconds):
    _signup_after(ctx.link, seconds)
    db.session.commit()
    detect(kinds=[FLAG_SHORT_LAG])
    assert flags() == []


def test_short_lag_threshold_comes_from_config(app_factory, users):
    app = app_factory(FRAUD_SHORT_LAG_SECONDS=60)
    with app.app_context():
        advisor = db.session.get(User, users["advisor"].id)
        link = referrals.create_link(owner=advisor, actor=advisor, destination=DEST)
        _signup_after(link, 45)
        db.session.commit()
        detect(kinds=[FLAG_SHORT_LAG])
        [flag] = flags(FLAG_SHORT_LAG)
        assert flag.detail["threshold_seconds"] == 60 and flag.detail["lag_seconds"] == 45


# --- visitor burst -------------------------------------------------------------------------------


def _clicks(link, count: int, *, every_s: float, visitor: str | None = None, prefix=NET, start=T0, device="mobile"):
    return [add_click(link, start + timedelta(seconds=i * every_s), visitor=visitor, prefix=prefix, device=device)
            for i in range(count)]


def test_twenty_clicks_of_one_visitor_on_one_link_in_ten_minutes_are_flagged(ctx):
    burst = _clicks(ctx.link, 20, every_s=30, visitor="alice")  # 9.5 minutes
    add_click(ctx.link, T0 + timedelta(hours=1), visitor="alice")  # same visitor, an hour later: not part of it
    db.session.commit()
    detect(kinds=[FLAG_VISITOR_BURST])
    [flag] = flags(FLAG_VISITOR_BURST)
    assert item_sets(flag) == ({c.id for c in burst}, set())
    assert flag.advisor_id == ctx.advisor.id
    assert flag.detail["clicks"] == 20 and flag.detail["threshold_clicks"] == 20
    assert flag.subject == f"visitor:{ctx.link.id}:{T0.date().isoformat()}:{burst[0].visitor_hash}"


@pytest.mark.parametrize("case", ["nineteen", "spread_over_more_than_ten_minutes", "two_links", "bots"])
def test_visitor_clicks_just_below_the_burst_are_not_flagged(ctx, case):
    if case == "nineteen":
        _clicks(ctx.link, 19, every_s=1, visitor="bob")
    elif case == "spread_over_more_than_ten_minutes":
        _clicks(ctx.link, 20, every_s=31.6, visitor="bob")  # 19 gaps: 600.4 s
    elif case == "two_links":
        _clicks(ctx.link, 10, every_s=1, visitor="bob")
        _clicks(ctx.link_b, 10, every_s=1, visitor="bob")
    else:
        for i in range(30):
            add_click(ctx.link, T0 + timedelta(seconds=i), visitor="bob", is_bot=True)
    db.session.commit()
    detect(kinds=[FLAG_VISITOR_BURST])
    assert flags() == []


# --- network burst -------------------------------------------------------------------------------


def test_a_hundred_clicks_from_one_network_in_ten_minutes_are_flagged_across_links_and_advisors(ctx):
    burst = [add_click([ctx.link, ctx.other][i % 2], T0 + timedelta(seconds=i * 5)) for i in range(100)]
    add_click(ctx.link, T0, prefix="198.51.100.0/24")  # another network at the same time
    db.session.commit()
    detect(kinds=[FLAG_NETWORK_BURST])
    [flag] = flags(FLAG_NETWORK_BURST)
    assert item_sets(flag) == ({c.id for c in burst}, set())
    assert flag.subject == f"network:{NET}:{T0.strftime('%Y-%m-%dT%H')}"
    assert flag.advisor_id is None  # two advisors' links
    assert flag.detail["clicks"] == 100 and flag.detail["advisors"] == 2 and flag.detail["ip_prefix"] == NET


def test_ninety_nine_clicks_from_one_network_are_not_flagged(ctx):
    for i in range(99):
        add_click(ctx.link, T0 + timedelta(seconds=i * 6))
    db.session.commit()
    detect(kinds=[FLAG_NETWORK_BURST])
    assert flags() == []


# --- self conversion -----------------------------------------------------------------------------


def test_an_employees_account_on_an_advisors_link_is_flagged(ctx):
    click = add_click(ctx.link, T0)
    signup = add_conversion(ctx.link, "signup", T0 + timedelta(minutes=5), click=click, is_employee=True)
    add_conversion(ctx.link, "signup", T0 + timedelta(minutes=6), click=add_click(ctx.link, T0))  # a customer
    db.session.commit()
    detect(kinds=[FLAG_SELF_CONVERSION])
    [flag] = flags(FLAG_SELF_CONVERSION)
    assert flag.subject == f"customer:{signup.customer_id}" and flag.advisor_id == ctx.advisor.id
    assert flag.detail["reasons"] == ["employee"]
    assert item_sets(flag) == (set(), {signup.id})


def test_a_customer_converting_through_their_own_referral_link_is_flagged(ctx):
    first = add_conversion(ctx.link, "account_opened", T0 - timedelta(days=3), click=add_click(ctx.link, T0))
    customer = db.session.get(Customer, first.customer_id)
    own = referrals.create_link(owner=ctx.advisor, actor=ctx.advisor, destination=DEST, customer=customer)
    again = add_conversion(own, "funded", T0, customer=customer, referrer=customer, amount=100)
    db.session.commit()
    detect(kinds=[FLAG_SELF_CONVERSION])
    [flag] = flags(FLAG_SELF_CONVERSION)
    assert flag.detail["reasons"] == ["own_referral_link"] and item_sets(flag) == (set(), {again.id})


def test_unattributed_employee_events_and_ordinary_customers_are_not_flagged(ctx):
    add_conversion(None, "signup", T0, is_employee=True)
    add_conversion(ctx.link, "signup", T0, click=add_click(ctx.link, T0 - timedelta(minutes=3)))
    db.session.commit()
    detect(kinds=[FLAG_SELF_CONVERSION])
    assert flags() == []


# --- signup burst --------------------------------------------------------------------------------


def _signups(link, count: int, *, every_s: float, device="mobile", prefix=NET):
    made = []
    for i in range(count):
        at = T0 + timedelta(seconds=i * every_s)
        click = add_click(link, at - timedelta(minutes=2), device=device, prefix=prefix)
        made.append((click, add_conversion(link, "signup", at, click=click)))
    return made


def test_five_signups_from_one_device_class_and_network_in_five_minutes_are_flagged(ctx):
    made = _signups(ctx.link, 5, every_s=70)  # 4 min 40 s
    db.session.commit()
    detect(kinds=[FLAG_SIGNUP_BURST])
    [flag] = flags(FLAG_SIGNUP_BURST)
    assert item_sets(flag) == ({c.id for c, _ in made}, {s.id for _, s in made})
    assert flag.subject == f"signups:mobile:{NET}:{T0.strftime('%Y-%m-%dT%H')}"
    assert flag.advisor_id == ctx.advisor.id and flag.detail["events"] == {"signup": 5}


@pytest.mark.parametrize("case", ["four", "spread", "mixed_devices"])
def test_signups_just_below_the_burst_are_not_flagged(ctx, case):
    if case == "four":
        _signups(ctx.link, 4, every_s=10)
    elif case == "spread":
        _signups(ctx.link, 5, every_s=75)  # exactly 5 minutes from first to fifth: not within
    else:
        _signups(ctx.link, 3, every_s=10)
        _signups(ctx.link, 2, every_s=10, device="desktop")
    db.session.commit()
    detect(kinds=[FLAG_SIGNUP_BURST])
    assert flags() == []


# --- idempotency and decided flags ---------------------------------------------------------------


def test_running_detection_twice_adds_nothing_and_audits_each_flag_once(ctx):
    _clicks(ctx.link, 25, every_s=2, visitor="carol")
    _signup_after(ctx.link, 2)
    db.session.commit()
    first = detect()
    before = {(f.kind, f.subject): item_sets(f) for f in flags()}
    assert first.raised[FLAG_VISITOR_BURST] == 1 and first.raised[FLAG_SHORT_LAG] == 1
    assert raised_entries() == len(before)
    second = detect()
    db.session.expire_all()
    assert sum(second.raised.values()) == 0 and sum(second.items_added.values()) == 0
    assert {(f.kind, f.subject): item_sets(f) for f in flags()} == before
    assert raised_entries() == len(before)


def test_rerun_adds_new_items_to_an_open_flag_and_refreshes_its_numbers(ctx):
    _clicks(ctx.link, 20, every_s=10, visitor="dave")
    db.session.commit()
    detect(kinds=[FLAG_VISITOR_BURST])
    more = _clicks(ctx.link, 3, every_s=10, visitor="dave", start=T0 + timedelta(seconds=200))
    db.session.commit()
    result = detect(kinds=[FLAG_VISITOR_BURST])
    db.session.expire_all()
    [flag] = flags(FLAG_VISITOR_BURST)
    assert result.extended[FLAG_VISITOR_BURST] == 1 and result.items_added[FLAG_VISITOR_BURST] == 3
    assert {c.id for c in more} <= item_sets(flag)[0] and flag.detail["clicks"] == 23


def test_a_decided_flag_is_never_reopened_or_extended(ctx, users):
    _clicks(ctx.link, 20, every_s=10, visitor="erin")
    db.session.commit()
    detect(kinds=[FLAG_VISITOR_BURST])
    [flag] = flags(FLAG_VISITOR_BURST)
    officer = db.session.get(User, users["compliance"].id)
    fraud.decide(flag, FLAG_CONFIRMED, "bot farm", actor=officer)
    db.session.commit()
    _clicks(ctx.link, 5, every_s=10, visitor="erin", start=T0 + timedelta(seconds=30))
    db.session.commit()
    result = detect(kinds=[FLAG_VISITOR_BURST])
    db.session.expire_all()
    [flag] = flags(FLAG_VISITOR_BURST)
    assert flag.status == FLAG_CONFIRMED and len(flag.items) == 20 and flag.detail["clicks"] == 20
    assert sum(result.raised.values()) == 0 and sum(result.items_added.values()) == 0


def test_detection_over_days_matches_one_window_and_refuses_an_empty_window(ctx):
    _clicks(ctx.link, 20, every_s=1, visitor="fay", start=T0.replace(hour=23, minute=55))  # across midnight
    db.session.commit()
    result = fraud.detect_days(T0.date(), T0.date() + timedelta(days=1))
    db.session.commit()
    [flag] = flags(FLAG_VISITOR_BURST)
    assert result.raised[FLAG_VISITOR_BURST] == 1 and len(flag.items) == 20
    from advisor_studio.errors import ValidationError

    with pytest.raises(ValidationError):
        fraud.detect(T0, T0)


def test_burst_thresholds_below_two_fail_fast():
    with pytest.raises(RuntimeError):
        fraud.Thresholds.from_config({"FRAUD_VISITOR_BURST_CLICKS": 1})


def test_items_point_at_one_click_or_one_conversion_each(ctx):
    _signups(ctx.link, 5, every_s=5)
    db.session.commit()
    detect()
    rows = db.session.execute(sa.select(FraudFlagItem.click_pk, FraudFlagItem.conversion_pk)).all()
    assert rows and all((c is None) != (v is None) for c, v in rows)


def test_two_detection_runs_at_once_raise_each_flag_once(app, ctx):
    import threading

    _clicks(ctx.link, 20, every_s=5, visitor="gus")
    _signup_after(ctx.link, 1)
    db.session.commit()
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with app.app_context():
                barrier.wait()
                fraud.detect(*window())
                db.session.commit()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    db.session.expire_all()
    assert sorted((f.kind, len(f.items)) for f in flags()) == [(FLAG_SHORT_LAG, 2), (FLAG_VISITOR_BURST, 20)]
    assert raised_entries() == 2
