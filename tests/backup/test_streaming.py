"""Backups stream: a stored file far larger than the copy buffer never sits in memory whole."""

from __future__ import annotations

import os
import tracemalloc

import pytest

from advisor_studio import storage
from advisor_studio.backup import services

SIZE = 48 * 1024 * 1024


@pytest.fixture(autouse=True)
def local_storage(monkeypatch):
    """Local media even in the S3 pass of CI: this test measures copying a local file (the restore drill covers S3)."""
    monkeypatch.delenv("S3_ENDPOINT_URL", raising=False)


def test_create_and_verify_hold_a_few_chunks_of_a_large_file_not_the_file(app, tmp_path):
    big = tmp_path / "big.bin"
    with open(big, "wb") as fh:
        for _ in range(SIZE // storage.CHUNK):
            fh.write(os.urandom(storage.CHUNK))
    with app.app_context():
        stored = storage.get_storage().put_file(big, storage.new_key("renditions", ".mp4"))
        tracemalloc.start()
        try:
            manifest = services.create_backup(tmp_path / "backup")
            created_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            report = services.verify_backup(tmp_path / "backup")
            verified_peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert report.ok, report.problems
    assert [(f["key"], f["sha256"], f["size"]) for f in manifest["storage"]["files"]] == [
        (stored.key, stored.sha256, SIZE)]
    # A whole-file read would allocate 48 MB; streaming holds a few 1 MB chunks.
    assert created_peak < 8 * storage.CHUNK, created_peak
    assert verified_peak < 8 * storage.CHUNK, verified_peak
