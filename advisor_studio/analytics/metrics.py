"""Partner-reported post metrics (views, likes, comments, shares): the service behind
``POST /api/v1/partner/publications/<id>/metrics``.

The counters a platform shows for a post only grow, so every report must fit between the reports of
the same post before and after it in time; a report that does not is refused (422) rather than
stored, since one wrong report would make every later figure wrong. A report is idempotent per
(publication, observed_at) through the table's unique constraint: the same counters again change
nothing, other counters at the same instant are a conflict (409).

Two reports of one post at once are serialized on the post's publication row (``SELECT ... FOR
UPDATE`` on PostgreSQL, the database write lock on SQLite), so the ordering check and the insert of
one see the other's row; the unique constraint is the last word on identical reports.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _

from advisor_studio import audit
from advisor_studio.analytics.models import PublicationMetric
from advisor_studio.dbtypes import utcnow
from advisor_studio.distribution.models import Publication
from advisor_studio.errors import Conflict, Unprocessable, ValidationError
from advisor_studio.extensions import db

COUNTERS = ("views", "likes", "comments", "shares")
# The largest integer every JSON reader keeps exactly (2**53 - 1); far beyond any real post.
COUNTER_MAX = 2**53 - 1
CLOCK_SKEW = timedelta(minutes=5)


def _rfc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _validate(publication: Publication, observed_at, counters: dict) -> datetime:
    fields: dict[str, str] = {}
    for name in COUNTERS:
        value = counters.get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            fields[name] = _("must be a whole number")
        elif value < 0:
            fields[name] = _("must not be negative")
        elif value > COUNTER_MAX:
            fields[name] = _("at most %(n)d", n=COUNTER_MAX)
    if not isinstance(observed_at, datetime) or observed_at.tzinfo is None:
        fields["observed_at"] = _("must be an RFC 3339 date-time with a time zone offset")
    else:
        observed_at = observed_at.astimezone(UTC)
        if observed_at > utcnow() + CLOCK_SKEW:
            fields["observed_at"] = _("in the future")
        elif observed_at < publication.published_at - CLOCK_SKEW:
            fields["observed_at"] = _("before the post was published (%(when)s)", when=_rfc(publication.published_at))
    if fields:
        raise ValidationError(_("Some fields are missing or invalid."), fields=fields)
    return observed_at


def _same(row: PublicationMetric, counters: dict) -> bool:
    return all(getattr(row, name) == counters[name] for name in COUNTERS)


def _conflict(row: PublicationMetric, counters: dict) -> Conflict:
    fields = {name: _("%(n)d was reported for this time", n=getattr(row, name))
              for name in COUNTERS if getattr(row, name) != counters[name]}
    return Conflict(_("Other metrics were already reported for this post at this time; a report is never "
                      "changed."), fields=fields, code="metrics_conflict")


def _at(publication_id: int, observed_at: datetime) -> PublicationMetric | None:
    return db.session.scalar(sa.select(PublicationMetric).where(PublicationMetric.publication_id == publication_id,
                                                                PublicationMetric.observed_at == observed_at))


def _check_order(publication_id: int, observed_at: datetime, counters: dict) -> None:
    """Refuse counters lower than an earlier report's or higher than a later report's (422, naming fields)."""
    base = sa.select(PublicationMetric).where(PublicationMetric.publication_id == publication_id)
    before = db.session.scalar(base.where(PublicationMetric.observed_at < observed_at)
                               .order_by(PublicationMetric.observed_at.desc()).limit(1))
    after = db.session.scalar(base.where(PublicationMetric.observed_at > observed_at)
                              .order_by(PublicationMetric.observed_at.asc()).limit(1))
    fields: dict[str, str] = {}
    for name in COUNTERS:
        value = counters[name]
        if before is not None and value < getattr(before, name):
            fields[name] = _("lower than the %(n)d reported at %(when)s", n=getattr(before, name),
                             when=_rfc(before.observed_at))
        elif after is not None and value > getattr(after, name):
            fields[name] = _("higher than the %(n)d reported at %(when)s", n=getattr(after, name),
                             when=_rfc(after.observed_at))
    if fields:
        raise Unprocessable(_("Post metrics only grow: these counters go backwards against another report of "
                              "this post."), fields=fields, code="metrics_backwards")


def _lock_post(publication_id: int) -> None:
    """Serialize reports of one post until commit, so the ordering check sees a concurrent report's row."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.select(Publication.id).where(Publication.id == publication_id).with_for_update())
    else:
        # SQLite has no row locks: a no-op write takes the database's write lock before we read.
        db.session.execute(sa.update(Publication).where(Publication.id == publication_id)
                           .values(id=Publication.id).execution_options(synchronize_session=False))


def report_metrics(publication: Publication, *, observed_at, views, likes, comments, shares, actor,
                   key_id: int | None = None, user_id: int | None = None) -> tuple[PublicationMetric, bool]:
    """Record a partner's counters of one post at one instant: (the row, True if newly stored)."""
    counters = {"views": views, "likes": likes, "comments": comments, "shares": shares}
    observed_at = _validate(publication, observed_at, counters)
    _lock_post(publication.id)
    existing = _at(publication.id, observed_at)
    if existing is not None:
        if _same(existing, counters):
            return existing, False
        raise _conflict(existing, counters)
    _check_order(publication.id, observed_at, counters)
    row = PublicationMetric(publication_id=publication.id, observed_at=observed_at, reported_by_key_id=key_id,
                            reported_by_user_id=user_id, **counters)
    try:
        with db.session.begin_nested():
            db.session.add(row)
            db.session.flush()
    except sa.exc.IntegrityError:
        # A report for this instant committed between our read and our insert (SQLite, which takes no
        # row lock): the same counters are a replay, others a conflict.
        existing = _at(publication.id, observed_at)
        if existing is None:
            raise
        if _same(existing, counters):
            return existing, False
        raise _conflict(existing, counters) from None
    audit.record("publication.metrics_reported", "publication", publication.id, actor=actor,
                 details={"metric_id": row.id, "observed_at": observed_at.isoformat(), **counters,
                          "api_key_id": key_id})
    return row, True


def serialize(row: PublicationMetric, publication: Publication) -> dict:
    """The API's answer for one stored report."""
    return {"id": row.id, "publication_id": publication.id, "asset_id": publication.assignment_id,
            "observed_at": _rfc(row.observed_at), "views": row.views, "likes": row.likes,
            "comments": row.comments, "shares": row.shares, "reported_at": _rfc(row.reported_at)}
