"""Second-factor primitives with no Flask in them: TOTP codes, secret encryption, recovery codes.

TOTP secrets are encrypted at rest (Fernet, AES-128-CBC + HMAC-SHA256) under a key derived with
HKDF-SHA256 from a master key the caller passes in (TOTP_ENCRYPTION_KEY, else SECRET_KEY), so a
copy of the database alone does not let an insider generate anyone's codes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ISSUER = "Advisor Studio"
STEP_SECONDS = 30
# One step either side absorbs clock drift between the phone and the server.
VALID_WINDOW = 1
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper without mistakes


def clock() -> float:
    """The current Unix time; one seam so tests can step through TOTP periods without sleeping."""
    return time.time()


def _derive(master_key: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"advisor-studio " + purpose).derive(
        master_key.encode("utf-8"))


def _fernet(master_key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_derive(master_key, b"totp-secret v1")))


def new_secret() -> str:
    """A new random base32 TOTP secret (160 bits)."""
    return pyotp.random_base32(32)


def encrypt_secret(secret: str, master_key: str) -> str:
    """The secret encrypted for storage."""
    return _fernet(master_key).encrypt(secret.encode("ascii")).decode("ascii")


def decrypt_secret(token: str, master_key: str) -> str | None:
    """The stored secret in clear, or None when the key does not open it (the key was changed)."""
    try:
        return _fernet(master_key).decrypt(token.encode("ascii")).decode("ascii")
    except (InvalidToken, ValueError):
        return None


def provisioning_uri(secret: str, account: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The QR code of ``uri`` as an inline SVG element (no script, no external reference)."""
    return segno.make(uri, error="m").svg_inline(scale=4, dark="#000", light="#fff")


def matching_step(secret: str, code: str, after_step: int | None, now: float | None = None) -> int | None:
    """The time step whose code equals ``code`` within the window and is later than ``after_step``.

    Returning the step lets the caller store it: a code of that step or an earlier one is then a
    replay and is refused, even inside its own 30 seconds.
    """
    code = "".join((code or "").split())
    if len(code) != 6 or not code.isdigit():
        return None
    now = clock() if now is None else now
    totp = pyotp.TOTP(secret)
    current = int(now // STEP_SECONDS)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if after_step is not None and step <= after_step:
            continue
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """Fresh one-time recovery codes such as ``k7m2q-x9prt`` (about 49 bits each)."""
    def one() -> str:
        chars = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        return f"{chars[:5]}-{chars[5:]}"
    return [one() for _ in range(count)]


def normalize_recovery_code(code: str) -> str:
    """Lower-case, without spaces and dashes: how a code is compared."""
    return "".join(c for c in (code or "").lower() if c.isalnum())


def hash_recovery_code(code: str, master_key: str) -> str:
    """Keyed hash of a recovery code: the database alone cannot be used to test guesses."""
    key = _derive(master_key, b"recovery-code v1")
    return hmac.new(key, normalize_recovery_code(code).encode("ascii", "ignore"), hashlib.sha256).hexdigest()


def keyed_hash(value: str, master_key: str, purpose: bytes) -> str:
    """HMAC-SHA256 of ``value`` under a key derived for ``purpose`` (emails and addresses at rest)."""
    return hmac.new(_derive(master_key, purpose), value.encode("utf-8"), hashlib.sha256).hexdigest()
