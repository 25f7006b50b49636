"""Compare-and-set writes: the one way a state change checks and writes in a single statement.

Reading a row, checking it in Python and then writing it lets two requests both pass the
check (an advisor's recall and an officer's approval both commit). ``compare_and_set``
puts the check into the UPDATE's WHERE clause instead, so the database decides who won:
on PostgreSQL the loser's UPDATE waits for the winner's row lock and then re-evaluates the
WHERE clause against the committed row; on SQLite writers are serialized by the database
lock. The loser sees zero rows updated and raises a Conflict (409).
"""

from __future__ import annotations

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from advisor_studio.errors import Conflict
from advisor_studio.extensions import db


def compare_and_set(obj, expected, **values) -> bool:
    """UPDATE ``obj``'s row SET ``values`` WHERE its id matches and every ``expected`` clause holds.

    Returns True when this transaction changed the row (the in-memory object then carries the
    new values as committed state), False when someone else changed it first.
    """
    model = type(obj)
    stmt = (sa.update(model).where(model.id == obj.id, *expected).values(**values)
            .execution_options(synchronize_session=False))
    if db.session.execute(stmt).rowcount != 1:
        return False
    for key, value in values.items():
        set_committed_value(obj, key, value)
    return True


def stale_conflict(kind) -> Conflict:
    """The 409 for the loser of a race: someone else changed the ``kind`` since this request read it."""
    return Conflict(_("Someone else changed this %(kind)s just now. Reload the page and try again.", kind=kind),
                    code="changed_concurrently")


def flush_or_conflict(kind) -> None:
    """Flush pending changes; a version-checked row that changed since it was read becomes a Conflict."""
    try:
        db.session.flush()
    except StaleDataError as exc:
        raise stale_conflict(kind) from exc
