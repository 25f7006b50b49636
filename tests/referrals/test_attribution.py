"""Attribution of conversion events: click or code names the link, first attribution sticks, the window,
reversals, employees and customer-to-customer referral (以老带新)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from advisor_studio.errors import Conflict
from advisor_studio.extensions import db
from advisor_studio.referrals import attribution, conversions
from advisor_studio.referrals.attribution import FieldError, Touch
from advisor_studio.referrals.models import Conversion, Customer, ReferralLink
from tests.referrals.convert_helpers import event, iso, make_click, make_link, post_event


def attributed(resp) -> dict | None:
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["attributed"]


def test_referral_code_names_the_link_when_no_click_survived(app, client, users):
    code = make_link(app, users["advisor"].id, group=True, campaign=None)
    got = attributed(post_event(app, client, event("signup", referral_code=code)))
    assert got["link_code"] == code and got["advisor_id"] == users["advisor"].id
    assert got["group_id"] is not None and got["campaign"] is None


def test_group_link_dimensions_are_copied_onto_the_conversion_row(app, client, users):
    code = make_link(app, users["advisor"].id, group=True)
    click_id = make_click(app, code)
    got = attributed(post_event(app, client, event("signup", click_id=click_id)))
    with app.app_context():
        row = db.session.scalars(sa.select(Conversion)).one()
        assert (row.group_id, row.advisor_id, row.campaign) == (got["group_id"], users["advisor"].id, "双十一")
        customer = db.session.get(Customer, row.customer_id)
        assert customer.click_id == click_id and customer.link_id == row.link_id


def test_later_events_inherit_the_first_attributed_event(app, client, users):
    first = make_link(app, users["advisor"].id)
    second = make_link(app, users["advisor2"].id)
    a = attributed(post_event(app, client, event("signup", click_id=make_click(app, first))))
    b = attributed(post_event(app, client, event("account_opened", click_id=make_click(app, second))))
    c = attributed(post_event(app, client, event("funded", amount="100.00", referral_code=second)))
    assert a == b == c and a["link_code"] == first and a["advisor_id"] == users["advisor"].id


def test_click_older_than_the_window_does_not_attribute(app, client, users):
    code = make_link(app, users["advisor"].id)
    occurred = datetime.now(UTC) - timedelta(hours=1)
    stale = make_click(app, code, at=occurred - timedelta(days=app.config["ATTRIBUTION_WINDOW_DAYS"], minutes=1))
    assert attributed(post_event(app, client, event("signup", click_id=stale, occurred_at=iso(occurred)))) is None
    with app.app_context():
        assert db.session.scalars(sa.select(Customer)).one().link_id is None
    # A fresh click on a later event is then the customer's first attribution.
    fresh = make_click(app, code)
    got = attributed(post_event(app, client, event("account_opened", click_id=fresh)))
    assert got["link_code"] == code
    assert attributed(post_event(app, client, event("first_trade")))["link_code"] == code


def test_click_inside_the_window_attributes(app, client, users):
    code = make_link(app, users["advisor"].id)
    occurred = datetime.now(UTC) - timedelta(hours=1)
    click = make_click(app, code, at=occurred - timedelta(days=app.config["ATTRIBUTION_WINDOW_DAYS"] - 1))
    assert attributed(post_event(app, client, event("signup", click_id=click, occurred_at=iso(occurred))))


def test_window_follows_the_setting(app_factory, users):
    app = app_factory(ATTRIBUTION_WINDOW_DAYS=7)
    client = app.test_client()
    from tests.factories import make_user

    with app.app_context():
        advisor_id = make_user("advisor").id
        db.session.commit()
    code = make_link(app, advisor_id)
    click = make_click(app, code, at=datetime.now(UTC) - timedelta(days=8))
    assert attributed(post_event(app, client, event("signup", click_id=click))) is None


def test_reversals_are_stored_as_their_own_rows_and_nothing_is_deleted(app, client, users):
    click = make_click(app, make_link(app, users["advisor"].id))
    for body in (event("account_opened", click_id=click), event("account_rejected"),
                 event("funded", amount="100.00"), event("withdrawal", amount="40.00")):
        assert attributed(post_event(app, client, body)) is not None
    with app.app_context():
        rows = db.session.scalars(sa.select(Conversion).order_by(Conversion.id)).all()
        assert [(r.event, str(r.amount) if r.amount else None) for r in rows] == [
            ("account_opened", None), ("account_rejected", None), ("funded", "100.00"), ("withdrawal", "40.00")]
        assert len({r.link_id for r in rows}) == 1 and len({r.customer_id for r in rows}) == 1


def test_is_employee_is_stored_on_the_conversion_and_the_customer_and_sticks(app, client, users):
    click = make_click(app, make_link(app, users["advisor"].id))
    attributed(post_event(app, client, event("signup", click_id=click)))
    attributed(post_event(app, client, event("account_opened", is_employee=True)))
    attributed(post_event(app, client, event("funded", amount="1.00")))
    with app.app_context():
        rows = db.session.scalars(sa.select(Conversion).order_by(Conversion.id)).all()
        assert [r.is_employee for r in rows] == [False, True, True]
        assert db.session.scalars(sa.select(Customer)).one().is_employee is True


def test_a_converted_customer_gets_a_link_whose_referrals_credit_them_and_their_advisor(app, client, users):
    click = make_click(app, make_link(app, users["advisor"].id))
    attributed(post_event(app, client, event("account_opened", ref="OLD-1", click_id=click)))
    with app.app_context():
        referrer = conversions.customer_by_ref("OLD-1")
        link = conversions.customer_link(referrer, actor="admin")
        again = conversions.customer_link(referrer, actor="admin")
        db.session.commit()
        code, referrer_id = link.code, referrer.id
        assert again.id == link.id and link.kind == "customer" and link.owner_id == users["advisor"].id
    got = attributed(post_event(app, client, event("signup", ref="NEW-1", referral_code=code)))
    assert got["advisor_id"] == users["advisor"].id and got["link_code"] == code
    got = attributed(post_event(app, client, event("funded", ref="NEW-1", amount="500.00")))
    with app.app_context():
        rows = db.session.scalars(sa.select(Conversion).where(Conversion.link_id == db.session.scalar(
            sa.select(ReferralLink.id).where(ReferralLink.code == code)))).all()
        assert len(rows) == 2
        assert {(r.referrer_customer_id, r.advisor_id) for r in rows} == {(referrer_id, users["advisor"].id)}


def test_customer_link_is_refused_before_the_customer_opened_an_account(app, client, users):
    click = make_click(app, make_link(app, users["advisor"].id))
    attributed(post_event(app, client, event("signup", ref="NEW-2", click_id=click)))
    with app.app_context():
        with pytest.raises(Conflict):
            conversions.customer_link(conversions.customer_by_ref("NEW-2"), actor="admin")


def test_customer_link_is_refused_for_an_unattributed_customer(app, client, users):
    code = make_link(app, users["advisor"].id)
    stale = make_click(app, code, at=datetime.now(UTC) - timedelta(days=90))
    attributed(post_event(app, client, event("account_opened", ref="NEW-3", click_id=stale)))
    with app.app_context():
        with pytest.raises(Conflict):
            conversions.customer_link(conversions.customer_by_ref("NEW-3"), actor="admin")


# --- pure rules -------------------------------------------------------------------------------


def test_signature_accepts_any_of_several_v1_values_for_secret_rotation():
    body, now = b'{"a":1}', 1_800_000_000
    old = attribution.sign("old", now, body).split("v1=")[1]
    new = attribution.sign("new", now, body)
    assert attribution.signature_is_valid("new", f"{new},v1={old}", body, now)
    assert attribution.signature_is_valid("old", f"{new},v1={old}", body, now)
    assert not attribution.signature_is_valid("third", f"{new},v1={old}", body, now)
    assert attribution.signature_is_valid("new", new, body, now + 300)
    assert not attribution.signature_is_valid("new", new, body, now + 301)


@pytest.mark.parametrize(("value", "reason"), [("-5", "not_positive"), ("1e309", "not_decimal"),
                                               ("0.001", "too_many_decimals"), ("NaN", "not_decimal"),
                                               ("0", "not_positive"), (" 5", "not_decimal"), (None, "not_decimal"),
                                               (5.5, "not_decimal"), ("1_000", "not_decimal")])
def test_amount_rules(value, reason):
    with pytest.raises(FieldError) as err:
        attribution.parse_amount(value)
    assert err.value.reason == reason


def test_amounts_accepted():
    from decimal import Decimal

    assert attribution.parse_amount("100") == Decimal("100")
    assert attribution.parse_amount("0.5") == Decimal("0.50")
    assert attribution.parse_amount(Decimal("12.34")) == Decimal("12.34")
    assert attribution.parse_amount(7) == Decimal(7)


def test_first_attribution_wins_over_a_later_click():
    t = datetime(2026, 11, 1, tzinfo=UTC)
    inherited = Touch(link_id=1)
    click = Touch(link_id=2, click_id="c", click_at=t)
    assert attribution.choose_touch(inherited=inherited, click=click, code_link_id=3, occurred_at=t,
                                    window_days=30) == (inherited, False)
    assert attribution.choose_touch(inherited=None, click=click, code_link_id=3, occurred_at=t,
                                    window_days=30) == (click, True)
    assert attribution.choose_touch(inherited=None, click=None, code_link_id=3, occurred_at=t,
                                    window_days=30) == (Touch(link_id=3), True)
    late = t + timedelta(days=31)
    assert attribution.choose_touch(inherited=None, click=click, code_link_id=3, occurred_at=late,
                                    window_days=30) == (None, False)
