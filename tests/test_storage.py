"""Storage: the same tests against the local backend and against moto's S3 server over HTTP.

boto3 talks to moto on loopback exactly as it would to real S3, so these tests exercise the
real request/response path of both backends, including the app's signed download route.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import time
import uuid
from types import SimpleNamespace

import pytest
import requests
import sqlalchemy as sa
from werkzeug.http import parse_options_header

from advisor_studio import storage as storage_module
from advisor_studio.storage import LocalStorage, S3Storage, StorageError, build_storage, new_key

MiB = 1024 * 1024
KEY_RE = re.compile(r"^videos/\d{4}/\d{2}/[0-9a-f]{32}\.mp4$")
TRAVERSAL_KEYS = ["../x", "/etc/passwd", "a/../../b"]


# --- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture(params=["local", "s3"])
def storage_app(request, app_factory):
    """The app on the local backend, or on S3 (moto over HTTP) with a fresh bucket per test."""
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_server")
        return app_factory(STORAGE_BACKEND="s3", S3_ENDPOINT_URL=endpoint,
                           S3_BUCKET=f"test-{uuid.uuid4().hex}", S3_CREATE_BUCKET=True,
                           S3_REGION="us-east-1")
    return app_factory(STORAGE_BACKEND="local")


@pytest.fixture
def store(storage_app):
    with storage_app.app_context():
        return storage_module.get_storage()


class Source:
    """A readable source (like an upload body) that records every read() size asked of it."""

    def __init__(self, data: bytes, fail_after: int | None = None):
        self._buf = io.BytesIO(data)
        self._fail_after = fail_after
        self.reads: list[int | None] = []

    def read(self, n: int | None = -1) -> bytes:
        self.reads.append(n)
        if self._fail_after is not None and self._buf.tell() >= self._fail_after:
            raise ConnectionResetError("client went away mid-upload")
        return self._buf.read(n)


def put_bytes(store, data: bytes, suffix: str = ".bin") -> str:
    key = new_key("tests", suffix)
    stored = store.put_stream(io.BytesIO(data), key)
    assert stored.size == len(data)
    return key


def signed_url(app, blob, ttl: int | None = 60, filename: str | None = None) -> str:
    """A signed link to the approved rendition holding ``blob``'s bytes (a raw key is never signed)."""
    from advisor_studio.integrity.downloads import Audience
    from tests.integrity.conftest import link

    return link(app, blob.rendition_id, Audience(partner_id=blob.partner_id), ttl_seconds=ttl, filename=filename)


def fetch(app, url: str, method: str = "GET", **kwargs):
    """One request through the test client, body read and closed (as a WSGI server would); on S3 the
    redirect of a signed link to a presigned GET is followed."""
    from tests.integrity.conftest import fetch as follow

    return follow(app, url, method, **kwargs)


# --- put, read, size, exists ----------------------------------------------------------------------


def test_put_stream_returns_sha256_and_size_of_a_multi_chunk_stream(store):
    data = os.urandom(3 * MiB + MiB // 2)
    key = new_key("videos", ".mp4")

    stored = store.put_stream(io.BufferedReader(io.BytesIO(data)), key, "video/mp4")

    assert stored.key == key
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.size == len(data)
    with store.open(key) as fh:
        assert fh.read() == data
    assert b"".join(store.iter_range(key)) == data


def test_put_stream_of_an_empty_stream_stores_an_empty_object(store):
    key = new_key("tests", ".txt")

    stored = store.put_stream(io.BytesIO(b""), key)

    assert (stored.sha256, stored.size) == (hashlib.sha256(b"").hexdigest(), 0)
    assert store.exists(key)
    assert store.size(key) == 0
    with store.open(key) as fh:
        assert fh.read() == b""
    assert b"".join(store.iter_range(key)) == b""


def test_put_file_stores_a_local_file(store, tmp_path):
    data = os.urandom(100_000)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    key = new_key("tests", ".bin")

    stored = store.put_file(src, key)

    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert b"".join(store.iter_range(key)) == data


@pytest.mark.parametrize(("start", "end"), [
    (0, 0), (10, 19), (MiB - 5, MiB + 5), (0, 2 * MiB - 1), (2 * MiB - 1, 2 * MiB - 1), (123, None),
    (100, 10 * MiB), (2 * MiB, None), (3 * MiB, 4 * MiB),
])
def test_iter_range_returns_the_inclusive_slice(store, start, end):
    data = os.urandom(2 * MiB)
    key = put_bytes(store, data)

    got = b"".join(store.iter_range(key, start, end))

    assert got == data[start:None if end is None else end + 1]


def test_iter_range_yields_bounded_chunks(store):
    key = put_bytes(store, os.urandom(3 * MiB))

    chunks = list(store.iter_range(key))

    assert len(chunks) >= 3
    assert max(map(len, chunks)) <= storage_module.CHUNK


def test_size_and_exists_report_a_stored_object(store):
    key = put_bytes(store, b"x" * 1234)

    assert store.size(key) == 1234
    assert store.exists(key) is True


def test_exists_is_false_for_an_unknown_key(store):
    assert store.exists(new_key("tests", ".bin")) is False


def test_unknown_key_raises_storage_error_on_open_size_and_iter_range(store):
    key = new_key("tests", ".bin")

    with pytest.raises(StorageError):
        store.open(key)
    with pytest.raises(StorageError):
        store.size(key)
    with pytest.raises(StorageError):
        b"".join(store.iter_range(key))


def test_a_folder_of_keys_is_not_an_object(store):
    key = put_bytes(store, b"data")
    folder = key.rsplit("/", 1)[0]

    assert store.exists(folder) is False
    with pytest.raises(StorageError):
        store.size(folder)
    with pytest.raises(StorageError):
        store.open(folder)


def test_fetch_to_path_copies_the_exact_bytes(store, tmp_path):
    data = os.urandom(MiB + 7)
    key = put_bytes(store, data)

    store.fetch_to_path(key, tmp_path / "copy.bin")

    assert (tmp_path / "copy.bin").read_bytes() == data


def test_put_stream_reads_the_source_in_bounded_chunks(store):
    data = os.urandom(MiB) * 20
    source = Source(data)

    stored = store.put_stream(source, new_key("videos", ".mp4"))

    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.size == len(data)
    # Never "read everything": every read asks for a bounded size, so memory stays bounded.
    assert all(n is not None and 0 < n <= 8 * MiB for n in source.reads), set(source.reads)
    assert len(source.reads) >= 3


def test_a_failed_upload_leaves_no_object_and_keeps_the_previous_one(store):
    fresh, existing = new_key("tests", ".bin"), new_key("tests", ".bin")
    old = os.urandom(1000)
    store.put_stream(io.BytesIO(old), existing)

    for key in (fresh, existing):
        with pytest.raises(ConnectionResetError):
            store.put_stream(Source(os.urandom(3 * MiB), fail_after=2 * MiB), key)

    assert store.exists(fresh) is False
    assert b"".join(store.iter_range(existing)) == old


def test_local_storage_writes_atomically_and_cleans_up_temp_files(tmp_path):
    store = LocalStorage(tmp_path / "media")
    key = new_key("videos", ".mp4")

    with pytest.raises(ConnectionResetError):
        store.put_stream(Source(os.urandom(3 * MiB), fail_after=MiB), key)

    folder = store.root / key.rsplit("/", 1)[0]
    assert not (store.root / key).exists()
    assert list(folder.iterdir()) == []  # no stray .upload-* temp file


def test_delete_unreferenced_removes_the_object(store):
    key = put_bytes(store, b"refused upload")

    store.delete_unreferenced(key)

    assert store.exists(key) is False
    with pytest.raises(StorageError):
        store.open(key)
    store.delete_unreferenced(key)  # deleting again is harmless


# --- keys -----------------------------------------------------------------------------------------


def test_new_key_is_fresh_and_keeps_only_the_given_suffix():
    user_filename = "Quarterly Outlook FINAL.MP4"
    keys = {new_key("videos", os.path.splitext(user_filename)[1]) for _ in range(1000)}

    assert len(keys) == 1000
    for key in keys:
        assert KEY_RE.match(key), key
        assert "quarterly" not in key.lower() and "outlook" not in key.lower()
    assert new_key("videos", "mp4").endswith(".mp4")
    assert new_key("exports", ".tar.gz").endswith(".tar.gz")
    assert not os.path.splitext(new_key("videos"))[1]
    assert new_key("/videos/").startswith("videos/")  # always relative to the storage root


@pytest.mark.parametrize(("prefix", "suffix"), [
    ("../x", ""), ("a/../../b", ""), ("videos", "../x"), ("videos", ".mp4/../../x"),
    ("videos", "/etc/passwd"), ("videos", ".mp4/x"), ("", ".mp4"), ("/", ""), ("a//b", ""),
    ("Videos 2026", ""), ("videos", ".mp4;rm"), ("videos", "."),
])
def test_new_key_rejects_traversal_and_odd_characters(prefix, suffix):
    with pytest.raises(StorageError):
        new_key(prefix, suffix)


@pytest.mark.parametrize("key", TRAVERSAL_KEYS + ["", "a//b", "a/./b", "A.mp4", "a b"])
def test_backends_refuse_invalid_keys(store, key):
    for operation in (lambda: store.put_stream(io.BytesIO(b"x"), key), lambda: store.open(key),
                      lambda: store.size(key), lambda: store.exists(key),
                      lambda: store.delete_unreferenced(key)):
        with pytest.raises(StorageError):
            operation()


def test_local_storage_refuses_keys_escaping_the_root(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    store = LocalStorage(tmp_path / "media")
    (store.root / "linked").symlink_to(outside, target_is_directory=True)

    with pytest.raises(StorageError, match="escapes"):
        store.put_stream(io.BytesIO(b"x"), "linked/file.bin")
    for key in TRAVERSAL_KEYS:
        with pytest.raises(StorageError):
            store.put_stream(io.BytesIO(b"x"), key)
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "x").exists()


# --- health, registry, config ---------------------------------------------------------------------


def test_healthcheck_is_true_for_a_working_backend(store):
    assert store.healthcheck() is True


def test_s3_healthcheck_is_false_for_a_missing_bucket(s3_server):
    store = S3Storage(f"missing-{uuid.uuid4().hex}", endpoint_url=s3_server, region="us-east-1")

    assert store.healthcheck() is False


def test_build_storage_rejects_an_unknown_backend(tmp_path):
    with pytest.raises(RuntimeError, match="STORAGE_BACKEND"):
        build_storage({"STORAGE_BACKEND": "ftp", "MEDIA_ROOT": str(tmp_path)})


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("true", True), ("TRUE", True),
                                                 ("0", False), ("", False), (None, False)])
def test_config_reads_s3_create_bucket_from_the_environment(monkeypatch, value, expected):
    from config import Config

    if value is None:
        monkeypatch.delenv("S3_CREATE_BUCKET", raising=False)
    else:
        monkeypatch.setenv("S3_CREATE_BUCKET", value)

    assert Config().S3_CREATE_BUCKET is expected


# --- signed download URLs served by the app -------------------------------------------------------


def redirected_whole(app, url: str, headers: dict) -> bool:
    """On S3: the app redirected and logged a whole-object follow (what S3 then does with odd Range
    headers is S3's own behaviour, which moto does not reproduce faithfully). False on local storage."""
    if app.config["STORAGE_BACKEND"] != "s3":
        return False
    from advisor_studio.extensions import db
    from advisor_studio.integrity.models import DownloadLog

    resp = app.test_client().get(url, headers=headers)
    assert resp.status_code == 302
    with app.app_context():
        row = db.session.scalars(sa.select(DownloadLog).order_by(DownloadLog.id.desc())).first()
        assert (row.status, row.range_start, row.range_end, row.bytes_sent) == (302, None, None, 1000)
    return True


@pytest.fixture
def approved_blob(storage_app):
    """Make an approved package whose rendition holds exactly the given bytes; return its ids and URL."""
    from tests.conftest import record_of
    from tests.factories import ensure_lexicon, make_user
    from tests.integrity.conftest import approved_package

    with storage_app.app_context():
        ensure_lexicon()
        people = {"advisor": make_user("advisor"), "compliance": make_user("compliance")}
        from advisor_studio.extensions import db

        db.session.commit()
        people = {key: record_of(user) for key, user in people.items()}

    def make(data: bytes) -> SimpleNamespace:
        made = approved_package(storage_app, people, data, exact=True)
        made.url = signed_url(storage_app, made)
        return made

    return make


@pytest.fixture
def blob(approved_blob):
    """A stored 1000-byte approved rendition and its signed download URL."""
    return approved_blob(os.urandom(1000))


def test_download_url_serves_the_exact_bytes(storage_app, blob):
    resp = fetch(storage_app, blob.url)

    assert resp.status_code == 200
    assert resp.data == blob.data
    assert resp.headers["Accept-Ranges"] == "bytes"
    assert resp.headers["Content-Length"] == "1000"
    assert "no-store" in resp.headers["Cache-Control"]


@pytest.mark.parametrize(("header", "start", "end"), [
    ("bytes=10-19", 10, 19), ("bytes=-5", 995, 999), ("bytes=100-", 100, 999), ("bytes=0-0", 0, 0),
    ("bytes=990-5000", 990, 999), ("bytes=-5000", 0, 999),
])
def test_range_request_returns_partial_content(storage_app, blob, header, start, end):
    resp = fetch(storage_app, blob.url, headers={"Range": header})

    assert resp.status_code == 206
    assert resp.headers["Content-Range"] == f"bytes {start}-{end}/1000"
    assert resp.headers["Content-Length"] == str(end - start + 1)
    assert resp.data == blob.data[start:end + 1]
    assert "no-store" in resp.headers["Cache-Control"]


@pytest.mark.parametrize("header", ["bytes=999999-", "bytes=1000-1001", "bytes=-0"])
def test_unsatisfiable_range_returns_416(storage_app, blob, header):
    resp = fetch(storage_app, blob.url, headers={"Range": header})

    assert resp.status_code == 416
    assert resp.headers["Content-Range"] == "bytes */1000"
    assert resp.data == b""


@pytest.mark.parametrize("header", ["bytes=abc", "items=0-9", "bytes=0-1,5-6", "bytes=-", "bytes 0-9",
                                    "bytes=20-10"])
def test_malformed_range_header_returns_the_whole_object(storage_app, blob, header):
    if redirected_whole(storage_app, blob.url, {"Range": header}):
        return
    resp = fetch(storage_app, blob.url, headers={"Range": header})

    assert resp.status_code == 200
    assert "Content-Range" not in resp.headers
    assert resp.data == blob.data


def test_range_with_if_range_is_ignored_since_no_validator_is_offered(storage_app, blob):
    if redirected_whole(storage_app, blob.url, {"Range": "bytes=10-19", "If-Range": '"some-etag"'}):
        return
    resp = fetch(storage_app, blob.url, headers={"Range": "bytes=10-19", "If-Range": '"some-etag"'})

    assert resp.status_code == 200
    assert resp.data == blob.data


def test_head_returns_headers_and_no_body(storage_app, blob):
    resp = fetch(storage_app, blob.url, "HEAD")
    ranged = fetch(storage_app, blob.url, "HEAD", headers={"Range": "bytes=10-19"})

    assert resp.status_code == 200
    assert resp.headers["Content-Length"] == "1000"
    assert resp.headers["Accept-Ranges"] == "bytes"
    assert resp.data == b""
    assert ranged.status_code == 206
    assert ranged.headers["Content-Range"] == "bytes 10-19/1000"
    assert ranged.data == b""


def test_empty_object_downloads_as_an_empty_body(storage_app, approved_blob):
    empty = approved_blob(b"")

    resp = fetch(storage_app, empty.url)

    assert resp.status_code == 200
    assert resp.headers["Content-Length"] == "0"
    assert resp.data == b""


def test_expired_download_link_returns_410(storage_app, blob, monkeypatch):
    assert fetch(storage_app, blob.url).status_code == 200

    later = time.time() + 61
    monkeypatch.setattr(storage_module, "time", SimpleNamespace(time=lambda: later))

    assert fetch(storage_app, blob.url).status_code == 410


@pytest.mark.parametrize("ttl", [0, -1])
def test_download_link_with_no_lifetime_left_is_already_expired(storage_app, blob, ttl):
    url = signed_url(storage_app, blob, ttl)

    assert fetch(storage_app, url).status_code == 410


def test_download_url_without_ttl_uses_the_configured_lifetime(storage_app, blob, monkeypatch):
    url = signed_url(storage_app, blob, None)
    ttl = storage_app.config["DOWNLOAD_URL_TTL_SECONDS"]
    now = time.time()

    monkeypatch.setattr(storage_module, "time", SimpleNamespace(time=lambda: now + ttl - 5))
    assert fetch(storage_app, url).status_code == 200
    monkeypatch.setattr(storage_module, "time", SimpleNamespace(time=lambda: now + ttl + 5))
    assert fetch(storage_app, url).status_code == 410


def test_forged_or_tampered_download_link_returns_410(storage_app, app_factory, blob):
    token = blob.url.rsplit("/", 1)[1]
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    other_app = app_factory(SECRET_KEY="some-other-secret")
    forged = signed_url(other_app, blob).rsplit("/", 1)[1]

    assert fetch(storage_app, f"/files/{token}").status_code == 200
    for bad in (tampered, forged, "not-a-token", token[: len(token) // 2]):
        assert fetch(storage_app, f"/files/{bad}").status_code == 410, bad


def test_download_link_to_a_missing_object_is_refused_with_an_integrity_alert(storage_app, blob):
    with storage_app.app_context():
        storage_module.get_storage().delete_unreferenced(blob.key)

    resp = fetch(storage_app, blob.url)

    assert resp.status_code == 409
    assert resp.data != b""


@pytest.mark.parametrize("filename", ["report.pdf", "理财周报 2026.mp4", 'a"b; c.txt', "x\r\nSet-Cookie: a=b"])
def test_download_sends_a_safe_content_disposition(storage_app, blob, filename):
    resp = fetch(storage_app, signed_url(storage_app, blob, filename=filename))

    assert resp.status_code == 200
    disposition = resp.headers["Content-Disposition"]
    disposition.encode("latin-1")  # WSGI (PEP 3333) header values must be latin-1
    assert "\n" not in disposition and "Set-Cookie" not in resp.headers
    assert parse_options_header(disposition) == ("attachment", {"filename": filename})
    assert resp.data == blob.data


def test_large_download_streams_in_chunks(storage_app, approved_blob):
    if storage_app.config["STORAGE_BACKEND"] == "s3":
        pytest.skip("on S3 a signed link redirects to a presigned GET: S3 sends the bytes")
    data = os.urandom(5 * MiB)
    url = approved_blob(data).url

    # The view's own response: a lazy iterator handed straight to the server, not a buffer.
    with storage_app.test_request_context(url):
        view = storage_app.view_functions["core.storage_download"]
        own = view(url.rsplit("/", 1)[1])
        assert own.is_streamed and own.direct_passthrough
        own.close()

    resp = storage_app.test_client().get(url, buffered=False)
    try:
        assert resp.status_code == 200
        assert resp.is_streamed
        chunks = list(resp.response)
    finally:
        resp.close()

    assert len(chunks) >= 5
    assert max(map(len, chunks)) <= storage_module.CHUNK
    assert b"".join(chunks) == data


# --- presigned URLs -------------------------------------------------------------------------------


def test_s3_presigned_url_downloads_the_exact_bytes(s3_server, app_factory):
    app = app_factory(STORAGE_BACKEND="s3", S3_ENDPOINT_URL=s3_server,
                      S3_BUCKET=f"test-{uuid.uuid4().hex}", S3_CREATE_BUCKET=True, S3_REGION="us-east-1")
    store = app.extensions["storage"]
    data = os.urandom(300_000)
    key = put_bytes(store, data)

    url = store.presigned_url(key, 60, filename="理财 report.mp4")

    assert url.startswith(s3_server + "/")
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 200
    assert resp.content == data
    assert parse_options_header(resp.headers["Content-Disposition"]) == (
        "attachment", {"filename": "理财 report.mp4"})


def test_local_storage_has_no_presigned_url(tmp_path):
    store = LocalStorage(tmp_path / "media")
    key = put_bytes(store, b"x")

    assert store.presigned_url(key, 60) is None


@pytest.mark.parametrize(("header", "expected"), [
    ("bytes=0-9", (0, 9)), ("bytes=990-", (990, 999)), ("bytes=-10", (990, 999)),
    ("bytes=-5000", (0, 999)),  # a suffix longer than the file is the whole file (RFC 9110 14.1.2)
    ("bytes=0-5000", (0, 999)), (" bytes=5-9 ", (5, 9)),
    ("bytes=1000-", False), ("bytes=-0", False), (f"bytes={2**64}-", False),
    ("bytes=0-1,5-6", None), ("items=0-9", None), ("bytes=9-3", None), ("bytes=٣-", None), (None, None),
    ("bytes=" + "9" * 5000 + "-", None),
])
def test_parse_range_reads_a_header_as_rfc_9110_does(header, expected):
    from advisor_studio.web import parse_range

    assert parse_range(header, 1000) == expected
