"""Enqueue Celery tasks only once the transaction that asked for them has committed.

A task sent before the commit could run before its rows are visible (or after a rollback,
for rows that never existed), so services call ``enqueue_after_commit`` instead of ``delay``.

Savepoints (``session.begin_nested()``) fire the same session events as the real transaction,
so each pending task remembers the savepoint it was asked for in: releasing a savepoint hands its
tasks to the enclosing one, rolling it back drops them, and only the outermost commit sends.
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

_KEY = "advisor_studio_pending_tasks"


def enqueue_after_commit(task, *args, **kwargs) -> None:
    """Send ``task.apply_async(args, kwargs)`` after the current session commits."""
    from advisor_studio.extensions import db

    session = db.session()
    session.info.setdefault(_KEY, []).append([task, args, kwargs, session.get_nested_transaction()])


def _enclosing_savepoint(transaction: SessionTransaction) -> SessionTransaction | None:
    parent = transaction.parent
    while parent is not None and not parent.nested:
        parent = parent.parent
    return parent


@event.listens_for(Session, "after_commit")
def _send_pending(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint was released: nothing is committed yet
        released = session.get_nested_transaction()
        enclosing = _enclosing_savepoint(released)
        for item in session.info.get(_KEY, []):
            if item[3] is released:
                item[3] = enclosing
        return
    pending = session.info.pop(_KEY, [])
    for task, args, kwargs, _savepoint in pending:
        task.apply_async(args=args, kwargs=kwargs)


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.nested:  # only what was asked for inside this savepoint is void
        pending = session.info.get(_KEY)
        if pending:
            session.info[_KEY] = [item for item in pending if item[3] is not previous_transaction]
        return
    session.info.pop(_KEY, None)
