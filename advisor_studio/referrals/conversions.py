"""Services of the conversion webhook: validate an event, attribute it, store it once per
Idempotency-Key; customers' own links (以老带新); clicks recorded directly (demo data, tests).

Customer references are kept only as HMAC-SHA256 under CUSTOMER_REF_KEY; they never reach a log line
or an audit entry. Services flush, never commit.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l

from advisor_studio import audit
from advisor_studio.dbtypes import business_day, utcnow
from advisor_studio.errors import Conflict, NotFound, ValidationError
from advisor_studio.extensions import db
from advisor_studio.referrals import attribution
from advisor_studio.referrals.attribution import FieldError, Touch
from advisor_studio.referrals.models import (
    EVENTS,
    LINK_CUSTOMER,
    Click,
    Conversion,
    Customer,
    ReferralLink,
)

EVENTS_WITH_AMOUNT = ("funded", "withdrawal")
EVENTS_WITH_OPTIONAL_AMOUNT = ("first_trade",)
FUTURE_SKEW = timedelta(days=1)  # an event stamped further ahead than this is a sender's clock error

REASONS = {
    "required": _l("required"),
    "not_string": _l("must be a string"),
    "too_long": _l("too long"),
    "empty": _l("must not be empty"),
    "unknown_event": _l("must be one of %(events)s"),
    "not_rfc3339": _l("must be an RFC 3339 timestamp with a time-zone offset"),
    "in_future": _l("lies in the future"),
    "not_decimal": _l("must be a decimal string such as \"100.00\""),
    "not_positive": _l("must be greater than zero"),
    "too_many_decimals": _l("at most 2 decimals"),
    "not_allowed": _l("not allowed for this event"),
    "not_currency": _l("must be an ISO 4217 code (three capital letters)"),
    "not_boolean": _l("must be true or false"),
    "unknown_click": _l("unknown click id"),
    "unknown_code": _l("unknown referral code"),
    "first_event": _l("required on a customer's first event unless referral_code is given"),
}


def _reason(code: str) -> str:
    if code == "unknown_event":
        return str(REASONS[code]) % {"events": ", ".join(EVENTS)}
    return str(REASONS[code])


@dataclass
class Event:
    """A validated conversion event."""

    event: str
    customer_ref: str
    occurred_at: datetime
    amount: object = None
    currency: str = "CNY"
    is_employee: bool = False
    click_id: str | None = None
    referral_code: str | None = None


# --- keys -----------------------------------------------------------------------------------------


def _customer_ref_key() -> bytes:
    key = current_app.config.get("CUSTOMER_REF_KEY")
    if key:
        return key.encode()
    # Derived, so a deployment without the setting still never stores references in clear.
    return hmac.new(current_app.config["SECRET_KEY"].encode(), b"customer-ref-key", hashlib.sha256).digest()


def customer_ref_hash(customer_ref: str) -> str:
    """The keyed hash under which a customer reference is stored (never the reference itself)."""
    return hmac.new(_customer_ref_key(), customer_ref.encode(), hashlib.sha256).hexdigest()


# --- validation -----------------------------------------------------------------------------------


def _string(data: dict, name: str, fields: dict, *, maximum: int, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            fields[name] = _reason("required")
        return None
    if not isinstance(value, str):
        fields[name] = _reason("not_string")
    elif not value:
        fields[name] = _reason("empty" if not required else "required")
    elif len(value) > maximum:
        fields[name] = _reason("too_long")
    elif "\x00" in value:
        fields[name] = _reason("not_string")
    else:
        return value
    return None


def validate_event(data) -> Event:
    """The event in a decoded JSON body, or a ValidationError naming every bad field."""
    if not isinstance(data, dict):
        raise ValidationError(str(_l("The body must be a JSON object.")), code="invalid_body")
    fields: dict[str, str] = {}
    event = data.get("event")
    if event is None:
        fields["event"] = _reason("required")
    elif event not in EVENTS:
        fields["event"] = _reason("unknown_event")
    customer_ref = _string(data, "customer_ref", fields, maximum=attribution.CUSTOMER_REF_MAX, required=True)
    click_id = _string(data, "click_id", fields, maximum=attribution.CLICK_ID_MAX)
    referral_code = _string(data, "referral_code", fields, maximum=attribution.REFERRAL_CODE_MAX)
    occurred_at = None
    if data.get("occurred_at") is None:
        fields["occurred_at"] = _reason("required")
    else:
        try:
            occurred_at = attribution.parse_timestamp(data["occurred_at"])
            if occurred_at > utcnow() + FUTURE_SKEW:
                fields["occurred_at"] = _reason("in_future")
        except FieldError as err:
            fields["occurred_at"] = _reason(err.reason)
    amount = None
    if data.get("amount") is not None:
        try:
            amount = attribution.parse_amount(data["amount"])
        except FieldError as err:
            fields["amount"] = _reason(err.reason)
        else:
            if event in EVENTS and event not in EVENTS_WITH_AMOUNT + EVENTS_WITH_OPTIONAL_AMOUNT:
                fields["amount"] = _reason("not_allowed")
    elif event in EVENTS_WITH_AMOUNT:
        fields["amount"] = _reason("required")
    currency = "CNY"
    if data.get("currency") is not None:
        try:
            currency = attribution.parse_currency(data["currency"])
        except FieldError as err:
            fields["currency"] = _reason(err.reason)
    is_employee = data.get("is_employee", False)
    if is_employee is None:
        is_employee = False
    if not isinstance(is_employee, bool):
        fields["is_employee"] = _reason("not_boolean")
    if fields:
        raise ValidationError(str(_l("The conversion event is invalid.")), fields=fields, code="invalid_event")
    return Event(event=event, customer_ref=customer_ref, occurred_at=occurred_at, amount=amount,
                 currency=currency, is_employee=is_employee, click_id=click_id, referral_code=referral_code)


def decode_body(raw: bytes):
    """The JSON value of the raw body; NaN and Infinity are not JSON numbers and come back as themselves."""
    def reject_constant(name):
        return _NotANumber(name)

    try:
        return json.loads(raw.decode("utf-8"), parse_float=_decimal, parse_constant=reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ValidationError(str(_l("The body is not valid JSON (UTF-8).")), code="invalid_json") from None


class _NotANumber:
    """``NaN``/``Infinity`` in a body: kept as an odd value that every field refuses."""

    def __init__(self, name: str):
        self.name = name


def _decimal(text: str):
    from decimal import Decimal

    return Decimal(text)


# --- recording ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the webhook answers: 201 for a new event, 200 for a replay of the same request."""

    status: int
    body: dict


def replay(idempotency_key: str, digest: str) -> Outcome | None:
    """The stored answer for a key seen before (200), a Conflict if it came with another body, else None."""
    row = db.session.execute(sa.select(Conversion.body_sha256, Conversion.response)
                             .where(Conversion.idempotency_key == idempotency_key)).first()
    if row is None:
        return None
    if not secrets.compare_digest(row.body_sha256, digest):
        raise Conflict(str(_l("This Idempotency-Key was already used with a different body.")),
                       code="idempotency_key_reused")
    return Outcome(200, row.response)


def _customer(ref_hash: str) -> Customer | None:
    return db.session.scalar(sa.select(Customer).where(Customer.ref_hash == ref_hash))


def _get_or_create_customer(ref_hash: str, is_employee: bool) -> Customer:
    customer = _customer(ref_hash)
    if customer is not None:
        return customer
    try:
        with db.session.begin_nested():  # two first events of one customer at once: one row
            customer = Customer(ref_hash=ref_hash, is_employee=is_employee)
            db.session.add(customer)
    except sa.exc.IntegrityError:
        customer = _customer(ref_hash)
        if customer is None:
            raise
    return customer


def _touch_of_click(click_id: str) -> Touch:
    stmt = sa.select(Click.link_id, Click.at).where(Click.click_id == click_id)
    row = db.session.execute(stmt).first()
    if row is None:
        # A click may still wait in the redirect's spool (drained about every second): drain once,
        # before this request writes anything (the drain commits on its own connection).
        from advisor_studio.referrals import clicks

        clicks.drain()
        row = db.session.execute(stmt).first()
    if row is None:
        raise ValidationError(str(_l("The click id is unknown.")), fields={"click_id": _reason("unknown_click")},
                              code="unknown_click")
    return Touch(link_id=row.link_id, click_id=click_id, click_at=row.at)


def _link_id_of_code(code: str) -> int:
    link_id = db.session.scalar(sa.select(ReferralLink.id).where(ReferralLink.code == code))
    if link_id is None:
        raise ValidationError(str(_l("The referral code is unknown.")),
                              fields={"referral_code": _reason("unknown_code")}, code="unknown_code")
    return link_id


def attributed_view(link: ReferralLink | None) -> dict | None:
    """The ``attributed`` object of the webhook's answer."""
    if link is None:
        return None
    return {"advisor_id": link.owner_id, "link_code": link.code, "content_id": link.package_id,
            "group_id": link.group_id, "channel_id": link.channel_id, "campaign": link.campaign}


def record_conversion(event: Event, *, idempotency_key: str, digest: str) -> Outcome:
    """Store one event with its attribution (201), or answer a replay (200) / a reused key (409).

    The unique index on ``idempotency_key`` decides between simultaneous identical posts: the
    losers' inserts fail, and they answer with the winner's stored response.
    """
    earlier = replay(idempotency_key, digest)
    if earlier is not None:
        return earlier
    ref_hash = customer_ref_hash(event.customer_ref)
    click = _touch_of_click(event.click_id) if event.click_id else None
    code_link_id = _link_id_of_code(event.referral_code) if event.referral_code else None
    existing = _customer(ref_hash)
    if existing is None and click is None and code_link_id is None:
        raise ValidationError(str(_l("A customer's first event needs a click id or a referral code.")),
                              fields={"click_id": _reason("first_event")}, code="first_event_unattributable")
    customer = existing or _get_or_create_customer(ref_hash, event.is_employee)
    inherited = (Touch(link_id=customer.link_id, click_id=customer.click_id)
                 if customer.link_id is not None else None)
    touch, first = attribution.choose_touch(inherited=inherited, click=click, code_link_id=code_link_id,
                                            occurred_at=event.occurred_at,
                                            window_days=current_app.config["ATTRIBUTION_WINDOW_DAYS"])
    link = db.session.get(ReferralLink, touch.link_id) if touch is not None else None
    if first and link is not None:
        # Only the first attribution sticks: a concurrent event of the same customer may have set it.
        db.session.execute(sa.update(Customer).where(Customer.id == customer.id, Customer.link_id.is_(None))
                           .values(link_id=link.id, click_id=touch.click_id, attributed_at=utcnow())
                           .execution_options(synchronize_session=False))
        db.session.refresh(customer)
        link = db.session.get(ReferralLink, customer.link_id)
    if event.is_employee and not customer.is_employee:
        customer.is_employee = True
    conversion = Conversion(
        idempotency_key=idempotency_key, body_sha256=digest, response={}, event=event.event,
        customer_id=customer.id, occurred_at=event.occurred_at, day=business_day(event.occurred_at),
        amount=event.amount, currency=event.currency, is_employee=event.is_employee or customer.is_employee,
        link_id=getattr(link, "id", None), advisor_id=getattr(link, "owner_id", None),
        package_id=getattr(link, "package_id", None), channel_id=getattr(link, "channel_id", None),
        partner_id=getattr(link, "partner_id", None), group_id=getattr(link, "group_id", None),
        campaign=getattr(link, "campaign", None),
        referrer_customer_id=link.customer_id if link is not None and link.kind == LINK_CUSTOMER else None)
    try:
        with db.session.begin_nested():
            db.session.add(conversion)
    except sa.exc.IntegrityError:
        # The same key was stored by a request that committed while this one ran.
        earlier = replay(idempotency_key, digest)
        if earlier is None:
            raise
        return earlier
    body = {"id": conversion.id, "event": conversion.event, "attributed": attributed_view(link)}
    conversion.response = body
    db.session.flush()
    # No customer reference (not even its hash) in the audit trail: the ids are enough to trace it.
    audit.record("conversion.recorded", "conversion", conversion.id, actor="webhook",
                 details={"event": conversion.event, "customer_id": customer.id, "link_id": conversion.link_id,
                          "advisor_id": conversion.advisor_id, "amount": str(conversion.amount)
                          if conversion.amount is not None else None, "is_employee": conversion.is_employee})
    return Outcome(201, body)


# --- customer-to-customer referral (以老带新) -----------------------------------------------------

# The campaign every customer's own link carries (a code, shown under its own label in the pages).
CUSTOMER_CAMPAIGN = "customer-referral"


def customer_has_converted(customer: Customer) -> bool:
    """Whether the customer holds an opened account: an account_opened event not reversed by a later
    account_rejected (reversals are rows, never deletions)."""
    opened, rejected = db.session.execute(sa.select(
        sa.func.count().filter(Conversion.event == "account_opened"),
        sa.func.count().filter(Conversion.event == "account_rejected"),
    ).where(Conversion.customer_id == customer.id)).one()
    return (opened or 0) > (rejected or 0)


def current_customer_link(customer: Customer) -> ReferralLink | None:
    """The customer's own link: the one not replaced by a newer one (enabled or not)."""
    return db.session.scalar(sa.select(ReferralLink).where(
        ReferralLink.customer_id == customer.id, ReferralLink.kind == LINK_CUSTOMER,
        ReferralLink.replaced_by_id.is_(None)).order_by(ReferralLink.id.desc()).limit(1))


def customer_link(customer: Customer, *, actor, destination: str | None = None) -> ReferralLink:
    """The converted customer's own link (one each), owned by the advisor who brought them.

    Asking again returns the same link, also when it was disabled (its owner enables it again). Two
    people asking at once get the one link: the customer's row is locked (a no-op UPDATE: a row lock on
    PostgreSQL, the write lock on SQLite) and the question asked again under the lock; a partial unique
    index (one enabled, unreplaced customer link per customer) backs this against any other writer.
    """
    from advisor_studio.referrals import services

    existing = current_customer_link(customer)
    if existing is not None:
        return existing
    if customer.link_id is None:
        raise Conflict(str(_l("This customer was not brought in by an advisor, so there is no advisor to "
                              "credit.")), code="customer_unattributed")
    if not customer_has_converted(customer):
        raise Conflict(str(_l("Only a customer who opened an account can get their own referral link.")),
                       code="customer_not_converted")
    db.session.execute(sa.update(Customer).where(Customer.id == customer.id).values(id=Customer.id)
                       .execution_options(synchronize_session=False))
    existing = current_customer_link(customer)
    if existing is not None:
        return existing
    advisor = db.session.get(ReferralLink, customer.link_id).owner
    return services.create_link(owner=advisor, destination=destination
                                or current_app.config["REFERRAL_DEFAULT_DESTINATION"], actor=actor,
                                customer=customer, kind=LINK_CUSTOMER, campaign=CUSTOMER_CAMPAIGN)


def find_customer(customer_ref: str) -> Customer | None:
    """The customer with this reference (looked up by its keyed hash), or None."""
    return _customer(customer_ref_hash(customer_ref))


def customer_by_ref(customer_ref: str) -> Customer:
    """The customer with this reference (looked up by its keyed hash), or NotFound."""
    customer = _customer(customer_ref_hash(customer_ref))
    if customer is None:
        raise NotFound(str(_l("No such customer.")))
    return customer


# --- clicks recorded directly (demo data and tests; the redirect records real ones) ---------------


def new_click_id() -> str:
    """A random, URL-safe click id of 120 bits (the redirect's ids have the same shape)."""
    return secrets.token_urlsafe(15)


def record_click(link: ReferralLink, *, at: datetime | None = None, visitor: str = "", is_bot: bool = False,
                 in_app: str = "none", device_class: str = "mobile", approval_id: int | None = None,
                 click_id: str | None = None, flush: bool = True) -> Click:
    """Append one click on ``link`` with the link's dimensions copied onto it, directly (seed-demo and
    tests; the redirect records real clicks through referrals.clicks). ``visitor`` stands for the
    IP prefix and user agent a real click would hash, with the same daily key."""
    from flask import current_app

    from advisor_studio.referrals.clicks import visitor_hash as hash_visitor

    at = at or utcnow()
    visitor_hash = hash_visitor(current_app.config["SECRET_KEY"], business_day(at), None,
                                visitor or secrets.token_hex(8))
    click = Click(click_id=click_id or new_click_id(), at=at, day=business_day(at), link_id=link.id,
                  approval_id=approval_id, advisor_id=link.owner_id, package_id=link.package_id,
                  channel_id=link.channel_id, partner_id=link.partner_id, group_id=link.group_id,
                  campaign=link.campaign, is_bot=is_bot, is_head=False, is_duplicate=False, in_app=in_app,
                  device_class="bot" if is_bot else device_class, visitor_hash=visitor_hash, ip_prefix=None)
    db.session.add(click)
    if flush:
        db.session.flush()
    return click
