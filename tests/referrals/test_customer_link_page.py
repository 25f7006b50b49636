"""The customer-link page (以老带新): an advisor gives a customer of their own links a link of the
customer's own; other advisors' customers cannot be found; one current link per customer, also when
two people ask at once."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from advisor_studio.accounts.models import User
from advisor_studio.extensions import db
from advisor_studio.referrals import conversions, services
from advisor_studio.referrals.models import ReferralLink
from tests.conftest import post_form, signed_in
from tests.referrals.convert_helpers import event, make_click, make_link, post_event

URL = "/referrals/customer-links"


def _converted_customer(app, client, advisor_id: int, ref: str) -> None:
    click = make_click(app, make_link(app, advisor_id))
    assert post_event(app, client, event("account_opened", ref=ref, click_id=click)).status_code == 201


def english(app, record):
    """A client signed in as ``record`` that reads the pages in English."""
    browser = signed_in(app, record)
    assert post_form(browser, "/language/en", {"next": URL}, form_page=URL).status_code == 302
    return browser


def _customer_links(app, ref: str) -> list[ReferralLink]:
    with app.app_context():
        customer = conversions.find_customer(ref)
        return list(db.session.scalars(sa.select(ReferralLink).where(ReferralLink.customer_id == customer.id)
                                        .order_by(ReferralLink.id)))


def test_advisor_gets_their_customers_link_and_the_same_one_again(app, client, users):
    _converted_customer(app, client, users["advisor"].id, "C-100")
    browser = signed_in(app, users["advisor"])
    first = post_form(browser, URL, {"customer_ref": "  C-100 "})
    assert first.status_code == 302
    links = _customer_links(app, "C-100")
    assert len(links) == 1 and links[0].kind == "customer" and links[0].owner_id == users["advisor"].id
    assert first.headers["Location"].endswith(f"/referrals/links/{links[0].id}")
    again = post_form(browser, URL, {"customer_ref": "C-100"})
    assert again.status_code == 302 and again.headers["Location"] == first.headers["Location"]
    assert len(_customer_links(app, "C-100")) == 1


@pytest.mark.parametrize("ref", ["C-200", "NO-SUCH-CUSTOMER"])
def test_another_advisors_customer_reads_exactly_like_an_unknown_reference(app, client, users, ref):
    _converted_customer(app, client, users["advisor"].id, "C-200")
    browser = english(app, users["advisor2"])
    resp = post_form(browser, URL, {"customer_ref": ref})
    assert resp.status_code == 404
    assert "No customer of yours has this reference" in resp.get_data(as_text=True)
    assert _customer_links(app, "C-200") == []


def test_admin_may_issue_any_customers_link_and_it_belongs_to_the_advisor(app, client, users):
    _converted_customer(app, client, users["advisor"].id, "C-300")
    resp = post_form(signed_in(app, users["admin"]), URL, {"customer_ref": "C-300"})
    assert resp.status_code == 302
    assert [link.owner_id for link in _customer_links(app, "C-300")] == [users["advisor"].id]


def test_a_customer_whose_account_was_rejected_gets_no_link(app, client, users):
    _converted_customer(app, client, users["advisor"].id, "C-400")
    assert post_event(app, client, event("account_rejected", ref="C-400")).status_code == 201
    resp = post_form(english(app, users["advisor"]), URL, {"customer_ref": "C-400"})
    assert resp.status_code == 409
    assert "Only a customer who opened an account" in resp.get_data(as_text=True)
    assert _customer_links(app, "C-400") == []


def test_empty_and_overlong_references_are_refused_with_a_message(app, users):
    browser = signed_in(app, users["advisor"])
    for ref in ("", "x" * 129):
        resp = post_form(browser, URL, {"customer_ref": ref})
        assert resp.status_code == 400
        assert "is-invalid" in resp.get_data(as_text=True)


@pytest.mark.parametrize("role", ["compliance", "mcn"])
def test_roles_without_customers_cannot_open_the_page(app, users, role):
    assert signed_in(app, users[role]).get(URL).status_code == 403


def test_a_disabled_customer_link_is_returned_not_duplicated_and_can_be_replaced(app, client, users):
    _converted_customer(app, client, users["advisor"].id, "C-500")
    with app.app_context():
        advisor = db.session.get(User, users["advisor"].id)
        link = conversions.customer_link(conversions.find_customer("C-500"), actor=advisor)
        services.set_link_enabled(link, False, actor=advisor)
        db.session.commit()
        assert conversions.customer_link(conversions.find_customer("C-500"), actor=advisor).id == link.id
        new = services.replace_link(link, advisor, campaign="春季邀请")
        db.session.commit()
        assert new.id != link.id and new.customer_id == link.customer_id and new.enabled
        assert conversions.customer_link(conversions.find_customer("C-500"), actor=advisor).id == new.id
    assert [(x.enabled, x.replaced_by_id) for x in _customer_links(app, "C-500")] == [(False, new.id), (True, None)]


def test_the_database_refuses_a_second_current_link_for_one_customer(app, client, users):
    _converted_customer(app, client, users["advisor"].id, "C-600")
    with app.app_context():
        advisor = db.session.get(User, users["advisor"].id)
        customer = conversions.find_customer("C-600")
        conversions.customer_link(customer, actor=advisor)
        db.session.commit()
        with pytest.raises(sa.exc.IntegrityError):
            services.create_link(owner=advisor, actor=advisor, destination=app.config["REFERRAL_DEFAULT_DESTINATION"],
                                 customer=customer, kind="customer")
        db.session.rollback()


def test_two_people_asking_at_once_get_the_one_link(app, client, users, monkeypatch):
    _converted_customer(app, client, users["advisor"].id, "C-700")
    both_checked = threading.Barrier(2)
    original = conversions.customer_has_converted

    def checked_then_wait(customer):
        result = original(customer)
        both_checked.wait(timeout=10)  # both saw "no link yet" before either writes
        return result

    monkeypatch.setattr(conversions, "customer_has_converted", checked_then_wait)
    got, errors = [], []

    def ask():
        try:
            with app.app_context():
                advisor = db.session.get(User, users["advisor"].id)
                link = conversions.customer_link(conversions.find_customer("C-700"), actor=advisor)
                db.session.commit()
                got.append(link.id)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    links = _customer_links(app, "C-700")
    assert len(links) == 1 and got == [links[0].id, links[0].id]
