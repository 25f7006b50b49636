"""Signed checkpoints of the audit chain, kept outside the database.

A database administrator can rewrite every audit row and recompute every hash, or cut off the
newest rows and rewind ``audit_head``; the chain alone cannot tell. A checkpoint records
(seq, entry hash, time) of the chain head, signed with an Ed25519 key that is not in the database,
and goes to storage the database cannot touch: an S3 object under Object Lock in COMPLIANCE mode
(nobody, not even the account root, can delete or shorten it before its retention date) when S3
is configured, a local append-only JSON-lines file otherwise. ``audit.verify()`` checks the chain
against every checkpoint; a regulator can do the same with the public key alone.
"""

from __future__ import annotations

import abc
import base64
import binascii
import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from flask import Flask, current_app

from advisor_studio.dbtypes import utcnow
from advisor_studio.extensions import db

FORMAT_VERSION = 1
S3_PREFIX = "audit-checkpoints/"
KEY_FILENAME = "audit_signing_key.pem"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class CheckpointError(Exception):
    """The checkpoint store or the signing key cannot be used."""


# --- the signing key ------------------------------------------------------------------------


def parse_private_key(text: str) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM, or base64 of its 32-byte seed or PKCS#8 DER."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            raw = base64.b64decode(text, validate=True)
            if len(raw) == 32:
                key = Ed25519PrivateKey.from_private_bytes(raw)
            else:
                key = serialization.load_der_private_key(raw, password=None)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise CheckpointError("AUDIT_SIGNING_KEY is not an Ed25519 private key (PEM or base64)") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError("AUDIT_SIGNING_KEY must be an Ed25519 key")
    return key


def parse_public_key(data: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (what ``flask audit public-key`` prints)."""
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise CheckpointError("not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError("the public key must be an Ed25519 key")
    return key


def _instance_key(app: Flask) -> Ed25519PrivateKey:
    # Generated once, like the secret key, so the embedded setup needs no configuration.
    path = Path(app.instance_path) / KEY_FILENAME
    if not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            pass
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
    return parse_private_key(path.read_text())


def signing_key() -> Ed25519PrivateKey:
    """The private key that signs checkpoints: AUDIT_SIGNING_KEY, else the instance folder's."""
    app = current_app._get_current_object()
    key = app.extensions.get("audit_signing_key")
    if key is None:
        configured = app.config.get("AUDIT_SIGNING_KEY")
        key = parse_private_key(configured) if configured else _instance_key(app)
        app.extensions["audit_signing_key"] = key
    return key


def public_key_pem(key: Ed25519PublicKey) -> str:
    """The PEM text of a public key, to hand to a regulator."""
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def fingerprint(key: Ed25519PublicKey) -> str:
    """``SHA256:<hex>`` of the raw 32-byte public key; stored in every checkpoint it signs."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + hashlib.sha256(raw).hexdigest()


# --- checkpoint records ---------------------------------------------------------------------


def _signed_bytes(record: dict) -> bytes:
    payload = {k: record[k] for k in ("v", "seq", "entry_hash", "at", "key")}
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def sign(seq: int, entry_hash: str, at: datetime, key: Ed25519PrivateKey) -> dict:
    """A checkpoint record of the head (seq, entry_hash) at ``at``, signed with ``key``."""
    record = {"v": FORMAT_VERSION, "seq": int(seq), "entry_hash": entry_hash, "at": at.strftime(TIME_FORMAT),
              "key": fingerprint(key.public_key())}
    record["sig"] = base64.b64encode(key.sign(_signed_bytes(record))).decode()
    return record


@dataclass
class Checkpoint:
    """One checkpoint read back from the store, with its place there (line or object key)."""

    where: str
    seq: int = 0
    entry_hash: str = ""
    at: str = ""
    problem: str | None = None


def check_record(record, where: str, public_key: Ed25519PublicKey) -> Checkpoint:
    """Parse and authenticate one stored record; ``problem`` says what is wrong with it, if anything."""
    if not isinstance(record, dict):
        return Checkpoint(where, problem=f"checkpoint {where} is not a JSON object")
    try:
        seq, entry_hash, at = int(record["seq"]), str(record["entry_hash"]), str(record["at"])
        signature = base64.b64decode(str(record["sig"]), validate=True)
        signed = _signed_bytes(record)
    except (KeyError, TypeError, ValueError, binascii.Error):
        return Checkpoint(where, problem=f"checkpoint {where} is malformed")
    checkpoint = Checkpoint(where, seq, entry_hash, at)
    if record.get("key") != fingerprint(public_key):
        checkpoint.problem = (f"checkpoint {where} of {at} was signed by key {record.get('key')}, "
                              f"not by {fingerprint(public_key)}")
        return checkpoint
    try:
        public_key.verify(signature, signed)
    except InvalidSignature:
        checkpoint.problem = f"checkpoint {where} of {at} has an invalid signature (forged or edited)"
    return checkpoint


# --- stores ---------------------------------------------------------------------------------


@dataclass
class StoredRecords:
    """What a store holds: the records in order, and any sign that the store itself was tampered with."""

    records: list[tuple[str, object]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class CheckpointStore(abc.ABC):
    """Append-only storage of checkpoint records."""

    name = "abstract"

    @abc.abstractmethod
    def append(self, record: dict) -> str:
        """Store one record durably; return where it went (object key or file line)."""

    @abc.abstractmethod
    def read_all(self) -> StoredRecords:
        """Every stored record, oldest first, with its place in the store."""

    @abc.abstractmethod
    def has(self, seq: int, entry_hash: str) -> bool:
        """True when the newest checkpoint already covers this head (periodic runs skip it)."""


class LocalCheckpointStore(CheckpointStore):
    """A JSON-lines file opened with O_APPEND and fsynced per record."""

    name = "local"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def append(self, record):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()
        created = not self.path.exists()
        # O_APPEND: every write lands at the end, even from two processes at once; one write per line.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
            end = os.lseek(fd, 0, os.SEEK_CUR)
        finally:
            os.close(fd)
        if created:  # make the new directory entry durable too
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return f"{self.path} (bytes {end - len(line)}-{end - 1})"

    def read_all(self):
        stored = StoredRecords()
        if not self.path.exists():
            return stored
        with open(self.path, "rb") as fh:
            for number, line in enumerate(fh, start=1):
                where = f"line {number}"
                try:
                    stored.records.append((where, json.loads(line)))
                except (ValueError, UnicodeDecodeError):
                    stored.records.append((where, None))
        return stored

    def has(self, seq, entry_hash):
        if not self.path.exists():
            return False
        with open(self.path, "rb") as fh:
            # A record is a few hundred bytes: the tail holds the newest line, whatever the file's size.
            fh.seek(max(fh.seek(0, os.SEEK_END) - 4096, 0))
            lines = fh.read().splitlines()
        try:
            record = json.loads(lines[-1]) if lines else None
        except ValueError:
            return False
        return isinstance(record, dict) and record.get("seq") == seq and record.get("entry_hash") == entry_hash


class S3CheckpointStore(CheckpointStore):
    """One object per checkpoint, under Object Lock in COMPLIANCE mode until its retention date."""

    name = "s3"

    def __init__(self, bucket: str, *, endpoint_url: str | None, region: str | None, retention_years: int,
                 create_bucket: bool = False):
        import boto3
        from botocore.config import Config as BotoConfig

        self.bucket = bucket
        self.region = region
        self.retention_years = retention_years
        self.create_bucket = create_bucket
        self._checked = False
        self.client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region,
                                   config=BotoConfig(signature_version="s3v4",
                                                     retries={"max_attempts": 3, "mode": "standard"},
                                                     connect_timeout=5, read_timeout=30))

    def _ensure_bucket(self) -> None:
        """Create the bucket with Object Lock when allowed; refuse a bucket without it."""
        from botocore.exceptions import ClientError

        if self._checked:
            return
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if not self.create_bucket:
                raise CheckpointError(f"the audit checkpoint bucket {self.bucket} does not exist") from exc
            kwargs = {"Bucket": self.bucket, "ObjectLockEnabledForBucket": True}
            if self.region and self.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            self.client.create_bucket(**kwargs)
        try:
            config = self.client.get_object_lock_configuration(Bucket=self.bucket)["ObjectLockConfiguration"]
        except ClientError as exc:
            raise CheckpointError(f"the bucket {self.bucket} does not have S3 Object Lock enabled") from exc
        if config.get("ObjectLockEnabled") != "Enabled":
            raise CheckpointError(f"the bucket {self.bucket} does not have S3 Object Lock enabled")
        self._checked = True

    @staticmethod
    def object_key(record: dict) -> str:
        """Zero-padded seq first, so keys list in chain order and one prefix finds a head's checkpoints."""
        stamp = record["at"].replace("-", "").replace(":", "").replace(".", "")
        return f"{S3_PREFIX}{record['seq']:020d}-{stamp}.json"

    def append(self, record):
        with self._errors():
            return self._append(record)

    def read_all(self):
        with self._errors():
            return self._read_all()

    def has(self, seq, entry_hash):
        with self._errors():
            return self._has(seq, entry_hash)

    @contextlib.contextmanager
    def _errors(self):
        """Any S3 failure becomes a CheckpointError that names the bucket (verify reports it, exit 1)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (BotoCoreError, ClientError) as exc:
            raise CheckpointError(f"the audit checkpoint bucket {self.bucket} cannot be used: {exc}") from exc

    def _append(self, record):
        self._ensure_bucket()
        key = self.object_key(record)
        until = utcnow() + timedelta(days=366 * self.retention_years)
        body = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json",
                               ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until,
                               ChecksumAlgorithm="SHA256")
        return key

    def _read_all(self):
        self._ensure_bucket()
        stored = StoredRecords()
        versions: dict[str, list[dict]] = {}
        markers: set[str] = set()
        for page in self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket,
                                                                                Prefix=S3_PREFIX):
            for version in page.get("Versions", []):
                versions.setdefault(version["Key"], []).append(version)
            for marker in page.get("DeleteMarkers", []):
                markers.add(marker["Key"])
        for key in sorted(versions):
            # The first version is the one written under lock; anything later is someone else's.
            ordered = sorted(versions[key], key=lambda v: v["LastModified"])
            if len(ordered) > 1:
                stored.problems.append(f"checkpoint object {key} was overwritten ({len(ordered)} versions)")
            if key in markers:
                stored.problems.append(f"checkpoint object {key} was deleted (a delete marker hides it)")
            body = self.client.get_object(Bucket=self.bucket, Key=key, VersionId=ordered[0]["VersionId"])["Body"]
            try:
                stored.records.append((key, json.loads(body.read())))
            except (ValueError, UnicodeDecodeError):
                stored.records.append((key, None))
            finally:
                body.close()
        return stored

    def _has(self, seq, entry_hash):
        self._ensure_bucket()
        listing = self.client.list_objects_v2(Bucket=self.bucket, Prefix=f"{S3_PREFIX}{int(seq):020d}-")
        for item in listing.get("Contents", []):
            body = self.client.get_object(Bucket=self.bucket, Key=item["Key"])["Body"]
            try:
                if json.loads(body.read()).get("entry_hash") == entry_hash:
                    return True
            except (ValueError, AttributeError):
                continue
            finally:
                body.close()
        return False


def build_store(app: Flask) -> CheckpointStore:
    """S3 with Object Lock when STORAGE_BACKEND is s3, else the local append-only file."""
    cfg = app.config
    if cfg.get("STORAGE_BACKEND") == "s3":
        return S3CheckpointStore(cfg.get("AUDIT_CHECKPOINT_BUCKET") or f"{cfg['S3_BUCKET']}-audit",
                                 endpoint_url=cfg.get("S3_ENDPOINT_URL"), region=cfg.get("S3_REGION"),
                                 retention_years=int(cfg.get("AUDIT_RETENTION_YEARS") or 20),
                                 create_bucket=bool(cfg.get("S3_CREATE_BUCKET")))
    path = cfg.get("AUDIT_CHECKPOINT_PATH") or str(Path(app.instance_path) / "audit-checkpoints.jsonl")
    return LocalCheckpointStore(path)


def get_store() -> CheckpointStore:
    """The current app's checkpoint store (built on first use)."""
    app = current_app._get_current_object()
    store = app.extensions.get("audit_checkpoints")
    if store is None:
        store = app.extensions["audit_checkpoints"] = build_store(app)
    return store


def take(*, force: bool = True) -> dict | None:
    """Sign the current chain head and append it to the store; None when there is nothing new to sign."""
    from advisor_studio.audit import HEAD_ID, AuditEntry, AuditHead

    head = db.session.get(AuditHead, HEAD_ID)
    newest = db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).first()
    if newest is None:
        return None
    if head is None or head.seq != newest.seq or head.last_hash != newest.entry_hash:
        # Signing a head that disagrees with its own table would bless whatever was done to it.
        raise CheckpointError(f"the chain head (#{head.seq if head else 0}) disagrees with the newest entry "
                              f"(#{newest.seq}); run flask audit verify")
    store = get_store()
    if not force and store.has(newest.seq, newest.entry_hash):
        return None
    record = sign(newest.seq, newest.entry_hash, utcnow(), signing_key())
    record["where"] = store.append(dict(record))
    return record


def load(public_key: Ed25519PublicKey) -> tuple[list[Checkpoint], list[str]]:
    """Every stored checkpoint, authenticated with ``public_key``, and the store's own problems."""
    stored = get_store().read_all()
    return [check_record(record, where, public_key) for where, record in stored.records], stored.problems
