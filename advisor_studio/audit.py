"""Append-only, hash-chained audit trail.

Every entry stores the SHA-256 of its own canonical encoding together with the previous
entry's hash, so changing, removing or reordering any stored entry breaks the chain.
Writers serialize on the single ``audit_head`` row: ``record()`` first bumps the head with
an ``UPDATE ... RETURNING`` (a row lock on PostgreSQL, the write lock on SQLite), so two
concurrent transactions can never both extend the same predecessor. The lock is held
until the caller's transaction commits, which is why services record their audit entry
as the last step of a state change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from advisor_studio.dbtypes import UTCDateTime, utcnow
from advisor_studio.extensions import db

GENESIS_HASH = "0" * 64
HEAD_ID = 1


class AuditEntry(db.Model):
    """One immutable audit record; never updated or deleted (database triggers refuse it)."""

    __tablename__ = "audit_entries"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    seq: so.Mapped[int] = so.mapped_column(sa.BigInteger, unique=True)
    at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, index=True)
    actor_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    actor_label: so.Mapped[str] = so.mapped_column(sa.String(255))
    action: so.Mapped[str] = so.mapped_column(sa.String(64), index=True)
    object_type: so.Mapped[str] = so.mapped_column(sa.String(64))
    object_id: so.Mapped[str] = so.mapped_column(sa.String(64))
    details: so.Mapped[dict] = so.mapped_column(sa.JSON)
    prev_hash: so.Mapped[str] = so.mapped_column(sa.String(64))
    entry_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)

    __table_args__ = (sa.Index("ix_audit_entries_object", "object_type", "object_id"),)

    def canonical(self) -> bytes:
        """The exact bytes that are hashed for this entry."""
        return canonical_bytes(
            seq=self.seq,
            at=self.at,
            actor_id=self.actor_id,
            actor_label=self.actor_label,
            action=self.action,
            object_type=self.object_type,
            object_id=self.object_id,
            details=self.details,
            prev_hash=self.prev_hash,
        )


class AuditHead(db.Model):
    """The single row that points at the newest entry; its lock serializes writers."""

    __tablename__ = "audit_head"

    id: so.Mapped[int] = so.mapped_column(primary_key=True, autoincrement=False)
    seq: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    last_hash: so.Mapped[str] = so.mapped_column(sa.String(64))


def canonical_bytes(*, seq, at: datetime, actor_id, actor_label, action, object_type, object_id,
                    details, prev_hash) -> bytes:
    """Canonical JSON (sorted keys, no spaces, UTF-8) of an entry's fields."""
    payload = {
        "seq": int(seq),
        "at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor_id": actor_id,
        "actor_label": actor_label,
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id),
        "details": details,
        "prev_hash": prev_hash,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _normalize_details(details: dict | None) -> dict:
    # Round-trip through JSON so the hashed value equals what the database gives back.
    return json.loads(json.dumps(details or {}, default=str, sort_keys=True))


def _actor_fields(actor) -> tuple[int | None, str]:
    if actor is None:
        return None, "system"
    if isinstance(actor, str):
        return None, actor
    return actor.id, actor.email


def _advance_head() -> tuple[int, str]:
    """Lock the head row and reserve the next sequence number; return (seq, prev_hash)."""
    stmt = (
        sa.update(AuditHead)
        .where(AuditHead.id == HEAD_ID)
        .values(seq=AuditHead.seq + 1)
        .returning(AuditHead.seq, AuditHead.last_hash)
    )
    row = db.session.execute(stmt).one_or_none()
    if row is None:
        ensure_head()
        row = db.session.execute(stmt).one()
    return row.seq, row.last_hash


def ensure_head() -> None:
    """Create the head row of an empty chain (migrations do this; kept for fresh schemas)."""
    if db.session.get(AuditHead, HEAD_ID) is None:
        db.session.add(AuditHead(id=HEAD_ID, seq=0, last_hash=GENESIS_HASH))
        db.session.flush()


def record(action: str, obj_type: str, obj_id, *, actor=None, details: dict | None = None) -> AuditEntry:
    """Append one entry to the chain in the caller's transaction (flushed, not committed)."""
    actor_id, actor_label = _actor_fields(actor)
    seq, prev_hash = _advance_head()
    entry = AuditEntry(
        seq=seq,
        at=utcnow(),
        actor_id=actor_id,
        actor_label=actor_label,
        action=action,
        object_type=obj_type,
        object_id=str(obj_id),
        details=_normalize_details(details),
        prev_hash=prev_hash,
    )
    entry.entry_hash = hashlib.sha256(entry.canonical()).hexdigest()
    db.session.add(entry)
    db.session.execute(
        sa.update(AuditHead).where(AuditHead.id == HEAD_ID).values(last_hash=entry.entry_hash)
    )
    db.session.flush()
    return entry


@dataclass
class VerifyResult:
    ok: bool
    count: int
    broken_seq: int | None = None
    reason: str | None = None


def verify(batch_size: int = 2000) -> VerifyResult:
    """Recompute the whole chain; report the first entry whose hash or link is wrong."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    count = 0
    query = sa.select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=batch_size)
    for entry in db.session.scalars(query):
        if entry.seq != expected_seq:
            return VerifyResult(False, count, expected_seq, f"entry #{expected_seq} is missing")
        if entry.prev_hash != expected_prev:
            return VerifyResult(False, count, entry.seq, f"entry #{entry.seq} does not link to its predecessor")
        if hashlib.sha256(entry.canonical()).hexdigest() != entry.entry_hash:
            return VerifyResult(False, count, entry.seq, f"entry #{entry.seq} was altered (hash mismatch)")
        expected_prev = entry.entry_hash
        expected_seq += 1
        count += 1
    head = db.session.get(AuditHead, HEAD_ID)
    head_seq = head.seq if head else 0
    head_hash = head.last_hash if head else GENESIS_HASH
    if head_seq != count or head_hash != expected_prev:
        return VerifyResult(False, count, count + 1 if head_seq > count else head_seq,
                            f"the chain head points at entry #{head_seq} but the chain ends at #{count}")
    return VerifyResult(True, count)
