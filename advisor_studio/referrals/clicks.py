"""Recording clicks of /r/<code>: classification, the visitor hash, and a durable spool drained into
``clicks``.

Why a spool (and not one INSERT per request): the redirect is the hot path of every campaign, and a
database write per click costs about a quarter of its throughput on SQLite (and a round trip on
PostgreSQL). The redirect instead makes each click durable *before* it answers 302, with one cheap
append, and a drain moves the spooled lines into ``clicks`` in batches:

- file spool (default): one append-only file per web process under ``instance/click-spool/``, one
  ``os.write`` of one JSON line per click with ``O_APPEND``; the line is in the kernel's page cache
  when the 302 leaves, so it survives a killed process (not a power cut: no fsync per click). The
  writer holds an exclusive ``flock`` on its file for as long as it writes to it; the kernel drops
  that lock when the process dies, however it dies. The writer starts a new file every
  ``CLICK_SPOOL_ROTATE_SECONDS``.
- Redis spool (when ``CELERY_BROKER_URL`` is redis, so web processes on several hosts share one
  spool): ``RPUSH`` of the same line.

Exactly once: every line carries its random ``click_id`` and the drain inserts with
``ON CONFLICT (click_id) DO NOTHING``, committing before it deletes anything. A drain that dies between
its commit and the deletion, or two drains at once, re-insert lines that are then ignored; nothing is
deleted before it is committed, so nothing is lost. A file whose lock the drain can take belongs to
no live writer: it is drained and deleted under that lock. A file still locked is read and inserted
(idempotently) but kept, so ``flask links stats`` sees every durable click at once.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import socket
import threading
import time
import uuid
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from flask import Flask, current_app

from advisor_studio.dbtypes import business_day
from advisor_studio.extensions import db
from advisor_studio.integrity.services import truncate_ip
from advisor_studio.referrals.models import Click

log = logging.getLogger(__name__)

CLICK_ID_BYTES = 16  # 128 random bits, 22 URL-safe characters
CLICK_ID_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")
UA_MAX = 512  # longer user agents are cut before classification and hashing
DRAIN_BATCH = 1000
COLUMNS = ("click_id", "at", "day", "link_id", "approval_id", "advisor_id", "package_id", "channel_id",
           "partner_id", "group_id", "campaign", "is_bot", "is_head", "is_duplicate", "in_app",
           "device_class", "visitor_hash", "ip_prefix")


def new_click_id() -> str:
    """A random, URL-safe click id of 128 bits."""
    return secrets.token_urlsafe(CLICK_ID_BYTES)


# --- who clicked ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _crawler_detect():
    from crawlerdetect import CrawlerDetect

    return CrawlerDetect()


def in_app_browser(ua: str) -> str:
    """Which in-app browser sent ``ua``: wechat, wecom, douyin, other or none."""
    low = ua.lower()
    if "micromessenger" in low:
        return "wecom" if "wxwork" in low else "wechat"
    if "wxwork" in low:
        return "wecom"
    if "aweme" in low or "bytedancewebview" in low or "bytelocale" in low:
        return "douyin"
    # Other apps' webviews that announce themselves (Weibo, QQ, Alipay, Kuaishou, Xiaohongshu, Feishu,
    # DingTalk, Facebook/Instagram/Line) or Android's generic webview marker "; wv)".
    if any(mark in low for mark in ("weibo", " qq/", "alipayclient", "kwai", "xhsdiscover", "lark/",
                                    "dingtalk", "fban", "fbav", "instagram", " line/", "; wv)")):
        return "other"
    return "none"


def _device_class(ua: str) -> str:
    from ua_parser import parse

    result = parse(ua)
    family = (result.device.family if result.device else "") or ""
    os_family = (result.os.family if result.os else "") or ""
    if family == "Spider":
        return "bot"
    low = ua.lower()
    if family == "iPad" or "tablet" in family.lower() or "tablet" in low or (
            os_family == "Android" and "mobile" not in low):
        return "tablet"
    if family == "iPhone" or os_family in ("iOS", "Android", "HarmonyOS") or "mobile" in low:
        return "mobile"
    if os_family in ("Windows", "Mac OS X", "Linux", "Ubuntu", "Chrome OS", "Fedora", "FreeBSD"):
        return "desktop"
    return "other"


@lru_cache(maxsize=8192)
def classify(ua: str) -> tuple[bool, str, str]:
    """(is_bot, in_app, device_class) of a user agent; cached because campaigns repeat a few UAs."""
    ua = ua[:UA_MAX]
    # No user agent at all is a script: every browser and in-app webview sends one.
    is_bot = not ua.strip() or _crawler_detect().isCrawler(ua)
    device = _device_class(ua) if ua.strip() else "other"
    if device == "bot":
        is_bot = True
    return is_bot, in_app_browser(ua), "bot" if is_bot else device


_day_keys: dict[tuple[str, date], bytes] = {}


def _day_key(secret: str, day: date) -> bytes:
    """The visitor-hash key of one business day (Beijing), derived from SECRET_KEY: never stored, gone the next day."""
    key = _day_keys.get((secret, day))
    if key is None:
        key = hmac.new(secret.encode(), b"referral-visitor:" + day.isoformat().encode(), hashlib.sha256).digest()
        if len(_day_keys) > 8:
            _day_keys.clear()
        _day_keys[(secret, day)] = key
    return key


def visitor_hash(secret: str, day: date, ip_prefix: str | None, ua: str) -> str:
    """HMAC(day key, IP prefix + user agent): the same visitor on the same day, unlinkable across days."""
    message = f"{ip_prefix or ''}\n{ua[:UA_MAX]}".encode()
    return hmac.new(_day_key(secret, day), message, hashlib.sha256).hexdigest()[:32]


def ip_prefix(address: str | None) -> str | None:
    """integrity.services.truncate_ip, with a fast path for the common dotted IPv4 address."""
    parts = (address or "").split(".")
    if len(parts) == 4 and all(p.isdigit() and p.isascii() and len(p) <= 3 and (p == "0" or p[0] != "0")
                               and int(p) <= 255 for p in parts):
        return f"{parts[0]}.{parts[1]}.{parts[2]}.0/24"
    return truncate_ip(address)


def click_row(*, link: dict, approval_id: int | None, click_id: str, at: datetime, address: str | None,
              ua: str, is_head: bool, is_duplicate: bool, secret: str) -> dict:
    """The row of one click: the link's attribution dimensions plus who clicked (JSON-ready)."""
    ua = (ua or "")[:UA_MAX]  # also bounds what the classification cache holds
    is_bot, in_app, device = classify(ua)
    day = business_day(at)
    prefix = ip_prefix(address)
    return {
        "click_id": click_id, "at": at.isoformat(), "day": day.isoformat(), "link_id": link["id"],
        "approval_id": approval_id, "advisor_id": link["owner_id"], "package_id": link["package_id"],
        "channel_id": link["channel_id"], "partner_id": link["partner_id"], "group_id": link["group_id"],
        "campaign": link["campaign"],
        # The contract keeps HEAD out of funnels through is_bot; is_head says why.
        "is_bot": is_bot or is_head, "is_head": is_head, "is_duplicate": is_duplicate, "in_app": in_app,
        "device_class": device, "visitor_hash": visitor_hash(secret, day, prefix, ua), "ip_prefix": prefix,
    }


# --- the spool -----------------------------------------------------------------------------------


class FileSpool:
    """Append-only JSON-lines files, one per writing process, locked while it writes to them."""

    def __init__(self, directory: Path, rotate_seconds: float):
        self.dir = Path(directory)
        self.rotate_seconds = rotate_seconds
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._pid: int | None = None
        self._opened = 0.0
        # Bytes of each file this process has already inserted (and committed): a long-lived drain
        # (the worker) then reads only what a live writer appended since. Only an optimisation:
        # another process starts at 0 and its re-inserts are ignored by ON CONFLICT.
        self._inserted: dict[str, int] = {}

    def _open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(6)}"
        tmp = self.dir / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
        # Locked before it gets the name the drain looks for, so the drain never takes a fresh file
        # for an abandoned one.
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(tmp, self.dir / f"{name}.jsonl")
        self._fd, self._pid, self._opened = fd, os.getpid(), time.monotonic()

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock: the drain may now take the whole file
        self._fd = None

    def append(self, line: bytes) -> None:
        """Write one line (ending in a newline) durably against a crash of this process."""
        with self._lock:
            if self._fd is not None and self._pid != os.getpid():
                # A forked child shares the parent's open file (and its lock): start its own.
                os.close(self._fd)
                self._fd = None
            if self._fd is not None and time.monotonic() - self._opened > self.rotate_seconds:
                self._close()
            if self._fd is None:
                self._open()
            written = os.write(self._fd, line)
            if written != len(line):  # a full disk: refuse the click rather than spool half a line
                raise OSError(errno.ENOSPC, "short write to the click spool")

    def close(self) -> None:
        """Close this process's file (tests and shutdown); the drain then takes it whole."""
        with self._lock:
            self._close()

    def drain(self, insert) -> int:
        """Insert every complete line of every spool file; delete the files no process writes to."""
        if not self.dir.is_dir():
            return 0
        seen = 0
        for path in sorted(self.dir.glob("*.jsonl")):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:  # another drain finished it a moment ago
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    finished = True
                except BlockingIOError:
                    finished = False  # a live writer (or another drain) holds it: insert, keep it
                offset = self._inserted.get(path.name, 0)
                with os.fdopen(os.dup(fd), "rb") as fh:
                    fh.seek(offset)
                    data = fh.read()
                end = data.rfind(b"\n") + 1
                if finished and end < len(data):
                    # A process killed inside a write: that click never got its 302, so it is not one.
                    log.warning("click spool %s: %d bytes of an unfinished line dropped", path.name,
                                len(data) - end)
                seen += insert(data[:end].splitlines())
                if finished:
                    os.unlink(path)  # only after the insert committed; still under the lock
                    self._inserted.pop(path.name, None)
                else:
                    self._inserted[path.name] = offset + end
            finally:
                os.close(fd)
        known = {p.name for p in self.dir.glob("*.jsonl")}
        for name in set(self._inserted) - known:  # deleted by another drain
            self._inserted.pop(name, None)
        return seen


class RedisSpool:
    """One Redis list shared by every web process; drained by renaming it away first."""

    def __init__(self, url: str, key: str):
        import redis

        self.client = redis.Redis.from_url(url)
        self.key = key

    def append(self, line: bytes) -> None:
        """RPUSH one line; Redis has it before the 302 leaves."""
        self.client.rpush(self.key, line)

    def close(self) -> None:
        """Nothing to close (the connection pool is per process)."""

    def drain(self, insert) -> int:
        """Move the list to a private key, insert it, then delete it; leftovers of a dead drain too."""
        import redis

        try:
            self.client.rename(self.key, f"{self.key}:draining:{uuid.uuid4().hex}")
        except redis.ResponseError:  # no such key: nothing new was spooled
            pass
        seen = 0
        for name in self.client.scan_iter(match=f"{self.key}:draining:*", count=100):
            seen += insert(self.client.lrange(name, 0, -1))
            self.client.delete(name)  # after the commit; another drain may have inserted it too
        return seen


def _redis_key(app: Flask) -> str:
    configured = app.config.get("CLICK_SPOOL_REDIS_KEY")
    if configured:
        return configured
    # One spool per deployment: the database it drains into (and the instance, which tells apart
    # test runs that share one database server).
    ident = f"{app.config['SQLALCHEMY_DATABASE_URI']}|{app.instance_path}"
    return "advisor_studio:click-spool:" + hashlib.sha256(ident.encode()).hexdigest()[:16]


def get_spool(app: Flask | None = None):
    """This app's spool (created on first use): Redis when the broker is Redis, else files."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    spool = app.extensions.get("click_spool")
    if spool is None:
        kind = app.config.get("CLICK_SPOOL") or "auto"
        broker = app.config.get("CELERY_BROKER_URL") or ""
        if kind == "redis" or (kind == "auto" and broker.startswith(("redis://", "rediss://"))):
            spool = RedisSpool(broker, _redis_key(app))
        else:
            spool = FileSpool(Path(app.instance_path) / "click-spool",
                              float(app.config.get("CLICK_SPOOL_ROTATE_SECONDS", 1.0)))
        spool = app.extensions.setdefault("click_spool", spool)
    return spool


def record(row: dict) -> None:
    """Make one click durable (the spool, or the database if the spool fails) before the 302."""
    line = json.dumps(row, separators=(",", ":")).encode() + b"\n"
    try:
        get_spool().append(line)
    except Exception:  # a full disk, Redis unreachable: store this one click directly instead
        log.exception("click spool unavailable; click %s stored directly", row["click_id"])
        _insert_lines([line])  # if the database fails too, no 302 is sent (the error page instead)


# --- the drain -----------------------------------------------------------------------------------


def _parse(line: bytes) -> dict | None:
    try:
        raw = json.loads(line)
        row = {key: raw.get(key) for key in COLUMNS}
        row["at"] = datetime.fromisoformat(raw["at"]).astimezone(UTC)
        row["day"] = date.fromisoformat(raw["day"])
        if not isinstance(row["click_id"], str) or not isinstance(row["link_id"], int):
            raise ValueError("click_id or link_id missing")
        return row
    except (ValueError, TypeError, KeyError) as exc:
        log.error("click spool: unreadable line skipped (%s)", exc)
        return None


def _insert_lines(lines) -> int:
    """Insert spooled lines with ON CONFLICT (click_id) DO NOTHING, committed in batches."""
    rows = [row for row in (_parse(line) for line in lines if line.strip()) if row is not None]
    if not rows:
        return 0
    engine = db.engine
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif engine.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - the two databases the project supports
        raise RuntimeError(f"no ON CONFLICT insert for {engine.dialect.name}")
    stmt = insert(Click.__table__).on_conflict_do_nothing(index_elements=["click_id"])
    for start in range(0, len(rows), DRAIN_BATCH):
        # Its own connection and transaction: committed before the spool deletes anything, and
        # independent of whatever the caller's session holds.
        with engine.begin() as conn:
            conn.execute(stmt, rows[start:start + DRAIN_BATCH])
    return len(rows)


def drain(app: Flask | None = None) -> int:
    """Move every durable spooled click into ``clicks`` (idempotent); return the lines seen."""
    return get_spool(app).drain(_insert_lines)


def stored_count(link_id: int | None = None) -> int:
    """How many clicks are stored (all links, or one), for reconciliation."""
    stmt = sa.select(sa.func.count()).select_from(Click)
    if link_id is not None:
        stmt = stmt.where(Click.link_id == link_id)
    return db.session.scalar(stmt) or 0
