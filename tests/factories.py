"""Test data builders that go through the real services."""

from __future__ import annotations

import itertools

from advisor_studio.accounts import services

PASSWORD = "correct-horse-battery"
_counter = itertools.count(1)


def sac_number(n: int) -> str:
    return f"S{n:013d}"


def make_user(*roles: str, email: str | None = None, password: str = PASSWORD, name: str | None = None,
              sac: str | None = None, actor=None):
    """Create (flush, not commit) a user with ``roles``; advisors get a unique SAC number."""
    n = next(_counter)
    roles = roles or ("advisor",)
    email = email or f"{'-'.join(roles)}{n}@example.com"
    if "advisor" in roles and sac is None:
        sac = sac_number(1_000_000 + n)
    user = services.create_user(email=email, password=password, roles=list(roles), name=name or f"User {n}",
                                sac_number=sac, actor=actor)
    user.test_password = password
    return user
