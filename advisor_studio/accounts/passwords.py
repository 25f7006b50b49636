"""Password policy with no Flask in it: length, guessability (zxcvbn) and personal words."""

from __future__ import annotations

import re

from zxcvbn import zxcvbn

MIN_LENGTH = 10
MAX_LENGTH = 128
# zxcvbn scores 0..4; 3 means "safely unguessable: moderate protection from offline attacks".
MIN_SCORE = 3
MIN_PERSONAL_WORD = 3

TOO_SHORT = "too_short"
TOO_LONG = "too_long"
PERSONAL = "personal"
GUESSABLE = "guessable"


def personal_words(email: str | None, name: str | None) -> list[str]:
    """The words a password must not contain: the email's local part and the person's name."""
    words = []
    local = (email or "").split("@")[0].lower()
    if local:
        words.append(local)
    name = (name or "").strip().lower()
    if name:
        words.append(re.sub(r"\s+", "", name))
        words.extend(re.split(r"[\s._-]+", name))
    return sorted({w for w in words if len(w) >= MIN_PERSONAL_WORD})


def problem(password: str, email: str | None = None, name: str | None = None) -> str | None:
    """The first reason ``password`` is refused (one of the constants above), or None."""
    password = password or ""
    if len(password) < MIN_LENGTH:
        return TOO_SHORT
    if len(password) > MAX_LENGTH:
        return TOO_LONG
    lowered = password.lower()
    words = personal_words(email, name)
    if any(word in lowered for word in words):
        return PERSONAL
    if zxcvbn(password, user_inputs=words)["score"] < MIN_SCORE:
        return GUESSABLE
    return None
