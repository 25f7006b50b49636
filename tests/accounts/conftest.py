"""Fixtures shared by the account tests: a stepping TOTP clock, and the compliance test people."""

from __future__ import annotations

import pytest

from advisor_studio.accounts import totp
from tests.compliance.test_review_pages import people  # noqa: F401 - re-exported fixture


@pytest.fixture
def clock(monkeypatch):
    """Step through TOTP periods without sleeping: ``clock.now`` is the time the server sees."""
    class Clock:
        now = 1_900_000_000.0

        def advance(self, seconds: float = totp.STEP_SECONDS) -> None:
            self.now += seconds

    c = Clock()
    monkeypatch.setattr(totp, "clock", lambda: c.now)
    return c
