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
    checkpoints: int = 0  # checkpoints read and authenticated
    anchored_seq: int = 0  # the newest entry a checkpoint vouches for
    anchored_at: str | None = None
    key_fingerprint: str | None = None

    @property
    def unanchored(self) -> int:
        """Entries newer than the last checkpoint: a rewrite or cut of these cannot be detected yet."""
        return max(self.count - self.anchored_seq, 0)


def verify(batch_size: int = 2000, *, public_key=None, expected_fingerprint: str | None = None,
           use_checkpoints: bool = True) -> VerifyResult:
    """Recompute the whole chain and check it against every signed checkpoint; report the first break.

    ``public_key`` (an Ed25519 public key) lets a regulator verify without the private key;
    ``expected_fingerprint`` (default AUDIT_PUBLIC_KEY_FINGERPRINT) pins the key that must have signed.
    """
    from flask import current_app

    from advisor_studio import checkpoints as cp

    by_seq: dict[int, list[cp.Checkpoint]] = {}
    fingerprint = None
    if use_checkpoints:
        public_key = public_key or cp.signing_key().public_key()
        fingerprint = cp.fingerprint(public_key)
        expected = expected_fingerprint or current_app.config.get("AUDIT_PUBLIC_KEY_FINGERPRINT")
        if expected and expected != fingerprint:
            return VerifyResult(False, 0, None, f"the checkpoint key is {fingerprint}, but the pinned "
                                f"fingerprint is {expected}", key_fingerprint=fingerprint)
        loaded, store_problems = cp.load(public_key)
        if store_problems:
            return VerifyResult(False, 0, None, store_problems[0], key_fingerprint=fingerprint)
        for checkpoint in loaded:
            if checkpoint.problem:
                return VerifyResult(False, 0, checkpoint.seq or None, checkpoint.problem, len(loaded),
                                    key_fingerprint=fingerprint)
            by_seq.setdefault(checkpoint.seq, []).append(checkpoint)

    def result(ok, count, broken=None, reason=None, anchored=(0, None)):
        return VerifyResult(ok, count, broken, reason, sum(map(len, by_seq.values())), anchored[0], anchored[1],
                            fingerprint)

    expected_prev = GENESIS_HASH
    expected_seq = 1
    count = 0
    anchored: tuple[int, str | None] = (0, None)
    query = sa.select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=batch_size)
    for entry in db.session.scalars(query):
        if entry.seq != expected_seq:
            return result(False, count, expected_seq, f"entry #{expected_seq} is missing", anchored)
        if entry.prev_hash != expected_prev:
            return result(False, count, entry.seq, f"entry #{entry.seq} does not link to its predecessor", anchored)
        if hashlib.sha256(entry.canonical()).hexdigest() != entry.entry_hash:
            return result(False, count, entry.seq, f"entry #{entry.seq} was altered (hash mismatch)", anchored)
        for checkpoint in by_seq.get(entry.seq, ()):
            if checkpoint.entry_hash != entry.entry_hash:
                # The chain is consistent in itself, so it was rewritten and re-hashed from some entry
                # after the previous good checkpoint up to this one.
                return result(False, count, entry.seq,
                              f"entry #{entry.seq} differs from the checkpoint of {checkpoint.at}: the chain was "
                              f"rewritten between #{anchored[0] + 1} and #{entry.seq}", anchored)
            anchored = (entry.seq, checkpoint.at)
        expected_prev = entry.entry_hash
        expected_seq += 1
        count += 1
    beyond = [c for seq, found in by_seq.items() if seq > count for c in found]
    if beyond:
        newest = max(beyond, key=lambda c: c.seq)
        return result(False, count, count + 1, f"the chain ends at #{count} but the checkpoint of {newest.at} saw "
                      f"#{newest.seq}: entries were removed", anchored)
    head = db.session.get(AuditHead, HEAD_ID)
    head_seq = head.seq if head else 0
    head_hash = head.last_hash if head else GENESIS_HASH
    if head_seq != count or head_hash != expected_prev:
        return result(False, count, count + 1 if head_seq > count else head_seq,
                      f"the chain head points at entry #{head_seq} but the chain ends at #{count}", anchored)
    return result(True, count, anchored=anchored)


# --- refused actions ------------------------------------------------------------------------


def _refusal_allowed(action: str, who: str) -> bool:
    """At most AUDIT_REFUSAL_LIMIT entries per action and requester, so a flood of refusals cannot
    monopolize the chain's single head row; the login rate limit stays in front of this."""
    from flask import current_app
    from limits import parse

    from advisor_studio.extensions import limiter

    limit = current_app.config.get("AUDIT_REFUSAL_LIMIT") or "30 per minute"
    try:
        return limiter.limiter.hit(parse(limit), "audit-refusal", action, who)
    except Exception:  # noqa: BLE001 - a limiter store outage must not stop the audit entry
        return True


def record_refusal(action: str, obj_type: str = "request", obj_id="-", *, actor=None,
                   details: dict | None = None) -> AuditEntry | None:
    """Write and commit one audit entry for a refused action, after the request's transaction rolled back.

    In a request it adds the endpoint, method and path (never the query string, which may carry
    tokens) and the signed-in user when ``actor`` is not given. Returns None when the entry was
    throttled (AUDIT_REFUSAL_LIMIT) or could not be written; a refusal is never turned into a 500.
    """
    from flask import current_app, has_request_context, request

    db.session.rollback()  # nothing of the refused request may ride along with its audit entry
    info = dict(details or {})
    who = "anonymous"
    if has_request_context():
        from flask_login import current_user

        info.setdefault("endpoint", request.endpoint)
        info.setdefault("method", request.method)
        info.setdefault("path", request.path[:500])
        if actor is None and current_user.is_authenticated:
            actor = current_user._get_current_object()
        who = request.remote_addr or "anonymous"
    if actor is not None:
        who = f"user:{actor.id}" if not isinstance(actor, str) else actor
    if not _refusal_allowed(action, who):
        return None
    try:
        entry = record(action, obj_type, obj_id, actor=actor if actor is not None else "anonymous", details=info)
        db.session.commit()
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        current_app.logger.exception("could not audit the refused action %s", action)
        return None
    return entry
