"""Browser tests share the session-wide Chromium fixtures of tests/conftest.py."""
