"""File storage: one interface, a local backend under media/ and an S3 backend (boto3).

The database only ever stores the generated keys and checksums this module returns,
never paths or URLs. Bytes stream in fixed-size chunks in both directions, so a
multi-gigabyte video never sits in memory.
"""

from __future__ import annotations

import abc
import base64
import binascii
import hashlib
import os
import re
import secrets
import shutil
import stat
import tempfile
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlsplit

from flask import Flask, current_app, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from werkzeug.http import dump_options_header

CHUNK = 1024 * 1024
KEY_ALPHABET = set("abcdefghijklmnopqrstuvwxyz0123456789-_/.")
SUFFIX_RE = re.compile(r"(\.[a-z0-9]+){0,3}")


class StorageError(Exception):
    """A storage operation failed (missing object, bad key, backend unreachable)."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    sha256: str
    size: int


def new_key(prefix: str, suffix: str = "") -> str:
    """A fresh, unguessable key such as ``videos/2026/11/3f...e1.mp4``; never a user's file name."""
    prefix = prefix.strip("/").lower()
    suffix = suffix.lower()
    if suffix and not suffix.startswith("."):
        suffix = "." + suffix
    # The suffix is an extension only (".mp4", ".tar.gz"): no slashes, so it cannot add folders.
    if not SUFFIX_RE.fullmatch(suffix):
        raise StorageError(f"invalid key suffix {suffix!r}")
    now = datetime.now(UTC)
    try:
        return _check_key(f"{prefix}/{now:%Y/%m}/{secrets.token_hex(16)}{suffix}")
    except StorageError:
        raise StorageError(f"invalid key prefix {prefix!r}") from None


def _check_key(key: str) -> str:
    # Empty and "." segments are refused too: the local backend would fold "a//b" and "a/./b"
    # into "a/b" while S3 keeps them apart, and both backends must name the same objects.
    if not key or not set(key) <= KEY_ALPHABET or set(key.split("/")) & {"", ".", ".."}:
        raise StorageError(f"invalid storage key {key!r}")
    return key


def content_disposition(filename: str) -> str:
    """An ``attachment`` header value for any file name (ASCII fallback plus RFC 6266 UTF-8)."""
    fallback = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii")
    fallback = "".join(ch for ch in fallback if ch.isprintable()).strip() or "download"
    options = {"filename": fallback}
    if fallback != filename:
        options["filename*"] = "UTF-8''" + quote(filename, safe="")
    return dump_options_header("attachment", options)


class Storage(abc.ABC):
    """The interface every backend implements."""

    name = "abstract"

    @abc.abstractmethod
    def put_stream(self, stream: BinaryIO, key: str, content_type: str | None = None) -> StoredObject:
        """Store the bytes of ``stream`` under ``key``; return its SHA-256 and size."""

    def put_file(self, path: str | os.PathLike, key: str, content_type: str | None = None) -> StoredObject:
        """Store a local file under ``key``."""
        with open(path, "rb") as fh:
            return self.put_stream(fh, key, content_type)

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A readable binary file object for ``key`` (caller closes it)."""

    @abc.abstractmethod
    def iter_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Yield the bytes of ``key`` from ``start`` to ``end`` inclusive, in chunks."""

    @abc.abstractmethod
    def size(self, key: str) -> int:
        """Size in bytes of the object stored under ``key``."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """True if an object is stored under ``key``."""

    @abc.abstractmethod
    def delete_unreferenced(self, key: str) -> None:
        """Remove an object that was never referenced (a refused upload); never for kept records."""

    def fetch_to_path(self, key: str, path: str | os.PathLike) -> None:
        """Copy an object to a local file (for ffmpeg), streaming."""
        with self.open(key) as src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst, CHUNK)

    def presigned_url(self, key: str, ttl_seconds: int, filename: str | None = None, *,
                      content_type: str | None = None, cache_control: str | None = None) -> str | None:
        """A direct backend URL valid for ``ttl_seconds``, or None when the backend has none."""
        return None

    def direct_origin(self) -> str | None:
        """The origin (scheme://host[:port]) of presigned URLs, which pages must allow to load media from."""
        return None

    def sha256_of(self, key: str) -> str:
        """The SHA-256 of the bytes stored under ``key``, read in chunks (never whole into memory)."""
        digest = hashlib.sha256()
        for chunk in self.iter_range(key):
            digest.update(chunk)
        return digest.hexdigest()

    @abc.abstractmethod
    def fingerprint(self, key: str) -> str:
        """A cheap token that changes whenever the object's bytes may have changed (no bytes read)."""

    def stored_sha256(self, key: str) -> str | None:
        """The whole-object SHA-256 the backend itself keeps for ``key``, or None when it keeps none."""
        return None

    @abc.abstractmethod
    def healthcheck(self) -> bool:
        """True when the backend answers."""


class LocalStorage(Storage):
    """Files under a root folder (``media/`` by default), written atomically."""

    name = "local"

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / _check_key(key)).resolve()
        if self.root not in path.parents:
            raise StorageError(f"key escapes the storage root: {key!r}")
        return path

    def put_stream(self, stream, key, content_type=None):
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        # Write to a temp file in the same folder, then rename: readers never see half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return StoredObject(key, digest.hexdigest(), size)

    def open(self, key):
        try:
            return open(self._path(key), "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise StorageError(f"no object {key!r}") from exc

    def iter_range(self, key, start=0, end=None):
        with self.open(key) as fh:
            fh.seek(start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                chunk = fh.read(CHUNK if remaining is None else min(CHUNK, remaining))
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    def size(self, key):
        try:
            info = self._path(key).stat()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise StorageError(f"no object {key!r}") from exc
        if not stat.S_ISREG(info.st_mode):  # a "folder" of keys is not an object (as on S3)
            raise StorageError(f"no object {key!r}")
        return info.st_size

    def exists(self, key):
        return self._path(key).is_file()

    def delete_unreferenced(self, key):
        self._path(key).unlink(missing_ok=True)

    def fingerprint(self, key):
        try:
            info = self._path(key).stat()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise StorageError(f"no object {key!r}") from exc
        # Any write changes mtime_ns and ctime_ns (which, unlike mtime, cannot be set back), a replace the inode.
        return f"local:{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}:{info.st_ino}"

    def local_path(self, key: str) -> Path:
        """The file behind ``key`` (local backend only), for streaming with sendfile."""
        return self._path(key)

    def healthcheck(self):
        return self.root.is_dir() and os.access(self.root, os.W_OK)


class S3Storage(Storage):
    """Objects in an S3-compatible bucket through boto3 (custom endpoint for MinIO/moto)."""

    name = "s3"

    def __init__(self, bucket: str, endpoint_url: str | None = None, region: str | None = None,
                 create_bucket: bool = False):
        import boto3
        from botocore.config import Config as BotoConfig

        self.bucket = bucket
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=BotoConfig(signature_version="s3v4", retries={"max_attempts": 3, "mode": "standard"},
                              connect_timeout=5, read_timeout=60),
        )
        if create_bucket:
            self._ensure_bucket(region)

    def _ensure_bucket(self, region: str | None) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            kwargs = {"Bucket": self.bucket}
            if region and region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
            self.client.create_bucket(**kwargs)

    def put_stream(self, stream, key, content_type=None):
        _check_key(key)
        digest = hashlib.sha256()
        size = 0

        class _Hashing:
            """Hashes what boto3 reads, so the upload and the checksum take one pass."""

            def read(self_inner, n=-1):
                nonlocal size
                chunk = stream.read(CHUNK if n is None or n < 0 else n)
                digest.update(chunk)
                size += len(chunk)
                return chunk

        # S3 computes and keeps a SHA-256 of the object (whole-object for a single-part upload), so a
        # Range request can later be checked against it without reading the bytes.
        extra = {"ChecksumAlgorithm": "SHA256"}
        if content_type:
            extra["ContentType"] = content_type
        self.client.upload_fileobj(_Hashing(), self.bucket, key, ExtraArgs=extra)
        return StoredObject(key, digest.hexdigest(), size)

    def open(self, key):
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=_check_key(key))["Body"]
        except ClientError as exc:
            raise StorageError(f"no object {key!r}") from exc

    def iter_range(self, key, start=0, end=None):
        from botocore.exceptions import ClientError

        kwargs = {"Bucket": self.bucket, "Key": _check_key(key)}
        if start or end is not None:  # S3 refuses any Range on an empty object, even "bytes=0-"
            kwargs["Range"] = f"bytes={start}-" + ("" if end is None else str(end))
        try:
            body = self.client.get_object(**kwargs)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return  # the range lies past the end: nothing to yield, as on the local backend
            raise StorageError(f"no object {key!r}") from exc
        try:
            yield from body.iter_chunks(CHUNK)
        finally:
            body.close()

    def size(self, key):
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=_check_key(key))["ContentLength"]
        except ClientError as exc:
            raise StorageError(f"no object {key!r}") from exc

    def _head(self, key: str) -> dict:
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=_check_key(key), ChecksumMode="ENABLED")
        except ClientError as exc:
            raise StorageError(f"no object {key!r}") from exc

    def fingerprint(self, key):
        head = self._head(key)
        return "s3:{}:{}:{}:{}".format(head.get("ETag", ""), head.get("LastModified", ""),
                                       head.get("ContentLength", ""), head.get("ChecksumSHA256", ""))

    def stored_sha256(self, key):
        head = self._head(key)
        value = head.get("ChecksumSHA256")
        # A multipart upload gets a checksum of part checksums ("...-N"): not the object's SHA-256.
        if not value or "-" in value or head.get("ChecksumType", "FULL_OBJECT") != "FULL_OBJECT":
            return None
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
        return raw.hex() if len(raw) == 32 else None

    def exists(self, key):
        _check_key(key)  # an invalid key is an error, not a missing object (as on the local backend)
        try:
            self.size(key)
            return True
        except StorageError:
            return False

    def delete_unreferenced(self, key):
        self.client.delete_object(Bucket=self.bucket, Key=_check_key(key))

    def presigned_url(self, key, ttl_seconds, filename=None, *, content_type=None, cache_control=None):
        params = {"Bucket": self.bucket, "Key": _check_key(key)}
        if filename:
            params["ResponseContentDisposition"] = content_disposition(filename)
        # S3 sends these headers with the object, so the direct response is typed and never cached.
        if content_type:
            params["ResponseContentType"] = content_type
        if cache_control:
            params["ResponseCacheControl"] = cache_control
        return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=int(ttl_seconds))

    def direct_origin(self):
        # Signing is local (no request): the origin every presigned URL of this bucket starts with.
        parts = urlsplit(self.client.generate_presigned_url("get_object", Params={"Bucket": self.bucket,
                                                                                  "Key": "origin-probe"},
                                                            ExpiresIn=1))
        return f"{parts.scheme}://{parts.netloc}"

    def healthcheck(self):
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return True
        except Exception:  # noqa: BLE001 - any failure means "down" for /healthz
            return False


# --- signed, expiring download URLs served by the app --------------------------------------

_SALT = "storage-download"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def download_token(purpose: dict, ttl_seconds: int, filename: str | None = None) -> str:
    """A signed token naming what it serves and to whom (``purpose``) that expires after ``ttl_seconds``."""
    if not isinstance(purpose, dict) or not purpose:
        raise StorageError("a download token must name what it serves")
    payload = {"p": purpose, "x": int(time.time()) + int(ttl_seconds)}
    if filename:
        payload["f"] = filename
    return _serializer().dumps(payload)


def read_download_token(token: str) -> dict:
    """Decode a download token; raise StorageError if forged, expired or naming no purpose."""
    try:
        payload = _serializer().loads(token, max_age=7 * 24 * 3600)
    except (SignatureExpired, BadSignature) as exc:
        raise StorageError("invalid download link") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("p"), dict):
        # Tokens for a bare storage key (issued before purposes existed) serve nothing.
        raise StorageError("invalid download link")
    if time.time() >= int(payload.get("x", 0)):
        raise StorageError("the download link has expired")
    return payload


def download_url(purpose: dict, ttl_seconds: int | None = None, filename: str | None = None, *,
                 external: bool = False) -> str:
    """An expiring URL of this app (``core.storage_download``) for the download ``purpose`` names."""
    # "is None", not "or": a ttl of 0 means "already expired", not "the default lifetime".
    ttl = current_app.config["DOWNLOAD_URL_TTL_SECONDS"] if ttl_seconds is None else ttl_seconds
    return url_for("core.storage_download", token=download_token(purpose, ttl, filename), _external=external)


# --- registry ------------------------------------------------------------------------------


def build_storage(config) -> Storage:
    """The backend named by STORAGE_BACKEND."""
    backend = config.get("STORAGE_BACKEND", "local")
    if backend == "local":
        return LocalStorage(config["MEDIA_ROOT"])
    if backend == "s3":
        return S3Storage(
            bucket=config["S3_BUCKET"],
            endpoint_url=config.get("S3_ENDPOINT_URL"),
            region=config.get("S3_REGION"),
            create_bucket=bool(config.get("S3_CREATE_BUCKET")),
        )
    raise RuntimeError(f"unknown STORAGE_BACKEND {backend!r} (use local or s3)")


def init_app(app: Flask) -> None:
    """Attach the configured backend as ``app.extensions['storage']``."""
    app.extensions["storage"] = build_storage(app.config)


def get_storage() -> Storage:
    """The current app's storage backend."""
    return current_app.extensions["storage"]
