"""Pure rules of the conversion webhook: its signature, the shape of each field, and which click or link
an event is attributed to. No Flask and no database here; conversions.py applies them."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

SIGNATURE_TOLERANCE_SECONDS = 300
IDEMPOTENCY_KEY_MAX = 255
CUSTOMER_REF_MAX = 128
CLICK_ID_MAX = 32  # the width of clicks.click_id
REFERRAL_CODE_MAX = 16
# 15 significant digits: exact in NUMERIC(18, 2) and in the double SQLite keeps NUMERIC in (10 trillion).
AMOUNT_INTEGER_DIGITS = 13

_AMOUNT_RE = re.compile(rf"[0-9]{{1,{AMOUNT_INTEGER_DIGITS}}}(\.[0-9]{{1,2}})?")
_CURRENCY_RE = re.compile(r"[A-Z]{3}")
# RFC 3339 date-time: the offset is mandatory (a time without one is ambiguous across time zones).
_RFC3339_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
                         r"([Zz]|[+-][0-9]{2}:[0-9]{2})")
_HEX_RE = re.compile(r"[0-9a-fA-F]{64}")
_DIGITS_RE = re.compile(r"[0-9]{1,12}")


# --- signature ------------------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Signature header value for ``body`` at ``timestamp`` (what the account-opening system sends)."""
    return f"t={timestamp},v1={_digest(secret, str(timestamp), body)}"


def _digest(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_is_valid(secret: str, header: str | None, body: bytes, now: float,
                       tolerance: int = SIGNATURE_TOLERANCE_SECONDS) -> bool:
    """Whether ``header`` (t=<unix>,v1=<hex>[,v1=...]) signs ``body`` within ``tolerance`` seconds of ``now``.

    Several v1 values are allowed so the sender can sign with an old and a new secret while rotating.
    """
    if not header or len(header) > 1000:
        return False
    timestamp, candidates = None, []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if key == "t":
            timestamp = value
        elif key == "v1" and _HEX_RE.fullmatch(value):
            candidates.append(value.lower())
    if timestamp is None or not _DIGITS_RE.fullmatch(timestamp) or not candidates:
        return False
    if abs(now - int(timestamp)) > tolerance:
        return False
    expected = _digest(secret, timestamp, body)
    # Compare against every candidate (no early exit), each in constant time.
    return sum(hmac.compare_digest(expected, c) for c in candidates) > 0


def idempotency_key_is_valid(key: str | None) -> bool:
    """1..255 printable ASCII characters."""
    return key is not None and 0 < len(key) <= IDEMPOTENCY_KEY_MAX and all(32 <= ord(ch) < 127 for ch in key)


def body_sha256(body: bytes) -> str:
    """The hash that tells a replay (same bytes) from a reuse of the key (other bytes)."""
    return hashlib.sha256(body).hexdigest()


# --- fields ---------------------------------------------------------------------------------------


class FieldError(ValueError):
    """A field's value is unusable; ``reason`` is a stable code mapped to a message by the caller."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def parse_amount(value) -> Decimal:
    """A positive amount with at most two decimals, from a decimal string (or an exact JSON number)."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise FieldError("not_decimal")
    text = str(value).strip() if not isinstance(value, str) else value
    if text.startswith("-"):
        raise FieldError("not_positive")
    if not _AMOUNT_RE.fullmatch(text):
        if re.fullmatch(r"[0-9]+\.[0-9]{3,}", text):
            raise FieldError("too_many_decimals")
        raise FieldError("not_decimal")
    try:
        amount = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern already excludes it
        raise FieldError("not_decimal") from None
    if amount <= 0:
        raise FieldError("not_positive")
    return amount


def parse_timestamp(value) -> datetime:
    """An RFC 3339 timestamp with its offset, as an aware UTC datetime."""
    if not isinstance(value, str) or not _RFC3339_RE.fullmatch(value):
        raise FieldError("not_rfc3339")
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        raise FieldError("not_rfc3339") from None
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise FieldError("not_rfc3339") from None


def parse_currency(value) -> str:
    """An ISO 4217 code (three capital letters)."""
    if not isinstance(value, str) or not _CURRENCY_RE.fullmatch(value):
        raise FieldError("not_currency")
    return value


# --- attribution ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Touch:
    """What an event can be attributed to: a link, and the click through it when one is known."""

    link_id: int
    click_id: str | None = None
    click_at: datetime | None = None


def click_attributes(click_at: datetime, occurred_at: datetime, window_days: int) -> bool:
    """A click attributes an event that happened at most ``window_days`` after it.

    A click stamped a little after the event (the two systems' clocks differ) still counts.
    """
    return occurred_at - timedelta(days=window_days) <= click_at <= occurred_at + timedelta(days=1)


def choose_touch(*, inherited: Touch | None, click: Touch | None, code_link_id: int | None,
                 occurred_at: datetime, window_days: int) -> tuple[Touch | None, bool]:
    """(the touch the event counts under, whether it is the customer's first attribution).

    A customer keeps the attribution of their first attributed event; otherwise the click names the
    link (if it is recent enough), else the referral code does.
    """
    if inherited is not None:
        return inherited, False
    if click is not None and click.click_at is not None and click_attributes(click.click_at, occurred_at,
                                                                              window_days):
        return click, True
    if click is None and code_link_id is not None:
        return Touch(link_id=code_link_id), True
    return None, False
