"""Fixtures of the operations tests: the JSON log lines the app writes, captured as parsed objects."""

from __future__ import annotations

import io
import json
import logging

import pytest


class CapturedLogs:
    def __init__(self, stream: io.StringIO):
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict]:
        """Every line as a JSON object (fails the test if any line is not one)."""
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def requests(self) -> list[dict]:
        return [r for r in self.records() if r.get("logger") == "advisor_studio.access"]


@pytest.fixture
def json_logs():
    """The house JSON handler (formatter and request-id filter) writing into memory, at INFO (LOG_LEVEL)."""
    from advisor_studio.observability.logs import LimiterKeyFilter, RequestIdFilter, json_formatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    handler.addFilter(RequestIdFilter())
    handler.addFilter(LimiterKeyFilter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield CapturedLogs(stream)
    root.removeHandler(handler)
    root.setLevel(previous)
