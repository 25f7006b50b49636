"""Fraud flags: detection over the raw clicks and conversions, and an officer's decision on a flag.

Five patterns, each a set-based query over an indexed window of ``clicks`` / ``conversions`` (the
day indexes, then the exact instants); only the rows that match come back to Python:

- ``short_lag``: a signup whose attributing click came less than FRAUD_SHORT_LAG_SECONDS before it
  (also a click stamped after the signup: the lag is then negative). Subject ``conversion:<signup>``;
  items: the click and the customer's conversions on that link (if the signup is fake, so is the rest).
- ``visitor_burst``: FRAUD_VISITOR_BURST_CLICKS or more clicks from one visitor hash on one link within
  10 minutes. Visitor hashes are keyed per day, so the subject ``visitor:<link>:<day>:<hash>`` is one
  visitor's day on one link; items: the clicks inside such a 10-minute window.
- ``network_burst``: FRAUD_NETWORK_BURST_CLICKS or more clicks from one /24 (/48) within 10 minutes,
  on any links. Subject ``network:<prefix>:<UTC hour>``: a long attack gives one flag per hour.
- ``self_conversion``: an advisor converting an employee's account (the account-opening system sends
  ``is_employee``; an advisor's own account is an employee's), or a customer converting through their
  own referral link. The platform stores no customer reference for advisors (only keyed hashes of the
  account system's references), so an advisor's own account is recognised through ``is_employee``.
  Subject ``customer:<id>``.
- ``signup_burst``: FRAUD_SIGNUP_BURST_SIGNUPS or more signups within 5 minutes whose attributing clicks
  share one device class and one network. Subject ``signups:<device>:<prefix>:<UTC hour>``; items: the
  signups and their clicks.

Bursts use window functions both databases have: a row whose (N-1)-th predecessor in its partition is
less than the window earlier ends a burst of N; a row belongs to a burst when one of the next N-1 rows
(itself included) ends one.

Detection is idempotent per (kind, subject) (the unique constraint): re-running adds new items to an
open flag and refreshes its numbers, and never touches a decided one. Bot clicks (crawlers, HEAD) are
already out of every funnel and are not flagged again.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from advisor_studio import audit
from advisor_studio.analytics.models import (
    FLAG_CLEARED,
    FLAG_CONFIRMED,
    FLAG_NETWORK_BURST,
    FLAG_OPEN,
    FLAG_SELF_CONVERSION,
    FLAG_SHORT_LAG,
    FLAG_SIGNUP_BURST,
    FLAG_VISITOR_BURST,
    FraudFlag,
    FraudFlagItem,
)
from advisor_studio.analytics.permissions import can_review_fraud
from advisor_studio.analytics.services import mark_days_dirty
from advisor_studio.concurrency import compare_and_set
from advisor_studio.dbtypes import BUSINESS_TZ, business_day, utcnow
from advisor_studio.errors import Conflict, PermissionDenied, ValidationError
from advisor_studio.extensions import db
from advisor_studio.referrals.models import Click, Conversion, Customer

VISITOR_BURST_WINDOW = timedelta(minutes=10)
NETWORK_BURST_WINDOW = timedelta(minutes=10)
SIGNUP_BURST_WINDOW = timedelta(minutes=5)
DETECTOR = "fraud-detector"  # the audit actor of raised flags
DECISIONS = {FLAG_CONFIRMED: "fraud_flag.confirmed", FLAG_CLEARED: "fraud_flag.cleared"}
NOTE_MAX = 2000
CHUNK = 500  # rows per multi-row INSERT / ids per IN list


@dataclass(frozen=True)
class Thresholds:
    """The numbers that make a pattern a flag (config.py FRAUD_*)."""

    short_lag_seconds: int = 10
    visitor_burst_clicks: int = 20
    network_burst_clicks: int = 100
    signup_burst_signups: int = 5

    @classmethod
    def from_config(cls, config=None) -> Thresholds:
        """The thresholds of the app's config; a burst of fewer than 2 is no burst (fail fast)."""
        config = config if config is not None else current_app.config
        made = cls(short_lag_seconds=int(config.get("FRAUD_SHORT_LAG_SECONDS", cls.short_lag_seconds)),
                   visitor_burst_clicks=int(config.get("FRAUD_VISITOR_BURST_CLICKS", cls.visitor_burst_clicks)),
                   network_burst_clicks=int(config.get("FRAUD_NETWORK_BURST_CLICKS", cls.network_burst_clicks)),
                   signup_burst_signups=int(config.get("FRAUD_SIGNUP_BURST_SIGNUPS", cls.signup_burst_signups)))
        if made.short_lag_seconds < 1 or min(made.visitor_burst_clicks, made.network_burst_clicks,
                                             made.signup_burst_signups) < 2:
            raise RuntimeError("FRAUD_SHORT_LAG_SECONDS must be at least 1 and the FRAUD_*_BURST_* counts at least 2")
        return made


@dataclass
class Candidate:
    """A flag as one detection run sees it: its subject, static numbers and the rows it covers."""

    subject: str
    advisor_id: int | None
    day: date
    detail: dict
    click_pks: set[int] = field(default_factory=set)
    conversion_pks: set[int] = field(default_factory=set)


@dataclass
class DetectionResult:
    """What one run did, per kind: flags raised, open flags that got new items, items added."""

    start: datetime
    end: datetime
    raised: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    extended: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    items_added: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    raised_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        """JSON-ready summary; kinds with nothing to report are left out."""
        def nonzero(counts: dict) -> dict:
            return {kind: n for kind, n in sorted(counts.items()) if n}

        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "raised": nonzero(self.raised),
                "extended": nonzero(self.extended), "items_added": nonzero(self.items_added)}


# --- SQL building blocks -------------------------------------------------------------------------


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def _seconds_between(later, earlier):
    """``later - earlier`` in seconds, as SQL."""
    if _dialect() == "postgresql":
        return sa.func.extract("epoch", later - earlier)
    # SQLite keeps datetimes as text that julianday() reads; rounding to the millisecond removes the
    # double's noise, so a lag of exactly 10 s compares as 10, not 9.99999.
    return sa.func.round((sa.func.julianday(later) - sa.func.julianday(earlier)) * 86400.0, 3)


def _burst_rows(base: sa.Select, partition: list[str], n: int, window: timedelta) -> list:
    """The rows of ``base`` (columns ``id``, ``at`` and ``partition``) inside a window of length
    ``window`` holding at least ``n`` rows of the same partition."""
    s0 = base.subquery("s0")
    order0 = (s0.c.at, s0.c.id)
    s1 = sa.select(s0, sa.func.lag(s0.c.at, n - 1).over(partition_by=[s0.c[p] for p in partition],
                                                         order_by=order0).label("nth_prev_at")).subquery("s1")
    ends = sa.case((sa.and_(s1.c.nth_prev_at.is_not(None),
                            _seconds_between(s1.c.at, s1.c.nth_prev_at) < window.total_seconds()), 1), else_=0)
    s2 = sa.select(s1, ends.label("is_end")).subquery("s2")
    member = sa.func.max(s2.c.is_end).over(partition_by=[s2.c[p] for p in partition], order_by=(s2.c.at, s2.c.id),
                                           rows=(0, n - 1))
    s3 = sa.select(s2, member.label("in_burst")).subquery("s3")
    columns = [c for c in s3.c if c.name not in ("nth_prev_at", "is_end", "in_burst")]
    return db.session.execute(sa.select(*columns).where(s3.c.in_burst == 1).order_by(s3.c.at, s3.c.id)).all()


def _click_window(start: datetime, end: datetime, lookback: timedelta) -> list:
    scan_start = start - lookback
    return [Click.day.between(business_day(scan_start), business_day(end)), Click.at >= scan_start, Click.at < end,
            Click.is_bot.is_(False)]


def _chunks(values: list, size: int = CHUNK):
    for i in range(0, len(values), size):
        yield values[i:i + size]


def _hour(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H")


def _single(values: set):
    return next(iter(values)) if len(values) == 1 else None


# --- the five detectors --------------------------------------------------------------------------


def detect_short_lag(start: datetime, end: datetime, t: Thresholds) -> dict[str, Candidate]:
    """Signups in [start, end) whose attributing click is less than the threshold before them."""
    lag = _seconds_between(Conversion.occurred_at, Click.at)
    rows = db.session.execute(
        sa.select(Conversion.id, Conversion.customer_id, Conversion.advisor_id, Conversion.link_id,
                  Conversion.occurred_at, Conversion.day, Click.id.label("click_pk"), Click.at.label("click_at"),
                  Click.day.label("click_day"), lag.label("lag"))
        .join(Customer, Customer.id == Conversion.customer_id)
        .join(Click, Click.click_id == Customer.click_id)
        .where(Conversion.event == "signup", Conversion.day.between(business_day(start), business_day(end)),
               Conversion.occurred_at >= start, Conversion.occurred_at < end, Click.link_id == Conversion.link_id,
               lag < t.short_lag_seconds)).all()
    found: dict[str, Candidate] = {}
    by_customer: dict[tuple[int, int], Candidate] = {}
    for row in rows:
        subject = f"conversion:{row.id}"
        candidate = Candidate(subject, row.advisor_id, min(row.day, row.click_day),
                              {"lag_seconds": round(float(row.lag), 3), "threshold_seconds": t.short_lag_seconds,
                               "click_at": row.click_at.isoformat(), "signup_at": row.occurred_at.isoformat(),
                               "link_id": row.link_id},
                              click_pks={row.click_pk}, conversion_pks={row.id})
        found[subject] = candidate
        by_customer[(row.customer_id, row.link_id)] = candidate
    customers = sorted({customer for customer, _link in by_customer})
    for chunk in _chunks(customers):
        for conv in db.session.execute(sa.select(Conversion.id, Conversion.customer_id, Conversion.link_id)
                                       .where(Conversion.customer_id.in_(chunk))):
            candidate = by_customer.get((conv.customer_id, conv.link_id))
            if candidate is not None:
                candidate.conversion_pks.add(conv.id)
    return found


def detect_visitor_bursts(start: datetime, end: datetime, t: Thresholds) -> dict[str, Candidate]:
    """Clicks of one visitor on one link, many within 10 minutes."""
    base = sa.select(Click.id, Click.at, Click.day, Click.link_id, Click.advisor_id, Click.visitor_hash).where(
        *_click_window(start, end, VISITOR_BURST_WINDOW))
    found: dict[str, Candidate] = {}
    for row in _burst_rows(base, ["link_id", "visitor_hash"], t.visitor_burst_clicks, VISITOR_BURST_WINDOW):
        subject = f"visitor:{row.link_id}:{row.day.isoformat()}:{row.visitor_hash}"
        candidate = found.get(subject)
        if candidate is None:
            candidate = found[subject] = Candidate(subject, row.advisor_id, row.day, {
                "threshold_clicks": t.visitor_burst_clicks, "window_minutes": 10, "link_id": row.link_id,
                "visitor_hash": row.visitor_hash})
        candidate.click_pks.add(row.id)
    return found


def detect_network_bursts(start: datetime, end: datetime, t: Thresholds) -> dict[str, Candidate]:
    """Clicks from one /24 (/48) on any links, many within 10 minutes; one flag per network and hour."""
    base = sa.select(Click.id, Click.at, Click.day, Click.advisor_id, Click.ip_prefix).where(
        *_click_window(start, end, NETWORK_BURST_WINDOW), Click.ip_prefix.is_not(None))
    found: dict[str, Candidate] = {}
    advisors: dict[str, set] = defaultdict(set)
    for row in _burst_rows(base, ["ip_prefix"], t.network_burst_clicks, NETWORK_BURST_WINDOW):
        subject = f"network:{row.ip_prefix}:{_hour(row.at)}"
        candidate = found.get(subject)
        if candidate is None:
            candidate = found[subject] = Candidate(subject, None, row.day, {
                "threshold_clicks": t.network_burst_clicks, "window_minutes": 10, "ip_prefix": row.ip_prefix})
        candidate.click_pks.add(row.id)
        advisors[subject].add(row.advisor_id)
    for subject, candidate in found.items():
        candidate.advisor_id = _single(advisors[subject])
    return found


def detect_self_conversions(start: datetime, end: datetime, t: Thresholds) -> dict[str, Candidate]:
    """Conversions on an advisor's links of an employee's account, or through the customer's own link."""
    rows = db.session.execute(
        sa.select(Conversion.id, Conversion.customer_id, Conversion.advisor_id, Conversion.day,
                  Conversion.is_employee, Conversion.referrer_customer_id)
        .where(Conversion.day.between(business_day(start), business_day(end)), Conversion.occurred_at >= start,
               Conversion.occurred_at < end, Conversion.advisor_id.is_not(None),
               sa.or_(Conversion.is_employee.is_(True), Conversion.referrer_customer_id == Conversion.customer_id))
        .order_by(Conversion.id)).all()
    found: dict[str, Candidate] = {}
    for row in rows:
        subject = f"customer:{row.customer_id}"
        candidate = found.get(subject)
        if candidate is None:
            candidate = found[subject] = Candidate(subject, row.advisor_id, row.day,
                                                   {"customer_id": row.customer_id, "reasons": []})
        reason = "employee" if row.is_employee else "own_referral_link"
        if reason not in candidate.detail["reasons"]:
            candidate.detail["reasons"].append(reason)
        candidate.day = min(candidate.day, row.day)
        candidate.conversion_pks.add(row.id)
    return found


def detect_signup_bursts(start: datetime, end: datetime, t: Thresholds) -> dict[str, Candidate]:
    """Signups from one device class and one network, many within 5 minutes."""
    scan_start = start - SIGNUP_BURST_WINDOW
    base = (sa.select(Conversion.id, Conversion.occurred_at.label("at"), Conversion.day, Conversion.advisor_id,
                      Click.id.label("click_pk"), Click.device_class, Click.ip_prefix)
            .join(Customer, Customer.id == Conversion.customer_id)
            .join(Click, Click.click_id == Customer.click_id)
            .where(Conversion.event == "signup", Conversion.day.between(business_day(scan_start), business_day(end)),
                   Conversion.occurred_at >= scan_start, Conversion.occurred_at < end,
                   Click.link_id == Conversion.link_id, Click.ip_prefix.is_not(None)))
    found: dict[str, Candidate] = {}
    advisors: dict[str, set] = defaultdict(set)
    for row in _burst_rows(base, ["device_class", "ip_prefix"], t.signup_burst_signups, SIGNUP_BURST_WINDOW):
        subject = f"signups:{row.device_class}:{row.ip_prefix}:{_hour(row.at)}"
        candidate = found.get(subject)
        if candidate is None:
            candidate = found[subject] = Candidate(subject, None, row.day, {
                "threshold_signups": t.signup_burst_signups, "window_minutes": 5, "ip_prefix": row.ip_prefix,
                "device_class": row.device_class})
        candidate.conversion_pks.add(row.id)
        candidate.click_pks.add(row.click_pk)
        advisors[subject].add(row.advisor_id)
    for subject, candidate in found.items():
        candidate.advisor_id = _single(advisors[subject])
    return found


DETECTORS = {
    FLAG_SHORT_LAG: detect_short_lag,
    FLAG_VISITOR_BURST: detect_visitor_bursts,
    FLAG_NETWORK_BURST: detect_network_bursts,
    FLAG_SELF_CONVERSION: detect_self_conversions,
    FLAG_SIGNUP_BURST: detect_signup_bursts,
}


# --- storing what was found ----------------------------------------------------------------------


def _insert(model):
    if _dialect() == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(model)


def _store(kind: str, found: dict[str, Candidate], result: DetectionResult) -> None:
    """Raise the new flags, add items to the open ones, refresh their numbers; decided flags stay as they are."""
    if not found:
        return
    subjects = sorted(found)
    now = utcnow()
    for chunk in _chunks(subjects):
        rows = [{"kind": kind, "subject": s, "status": FLAG_OPEN, "advisor_id": found[s].advisor_id,
                 "day": found[s].day, "detail": found[s].detail, "detected_at": now} for s in chunk]
        stmt = _insert(FraudFlag).values(rows).on_conflict_do_nothing(index_elements=["kind", "subject"])
        raised = db.session.execute(stmt.returning(FraudFlag.id)).scalars().all()
        result.raised[kind] += len(raised)
        result.raised_ids.extend(raised)
    raised_ids = set(result.raised_ids)
    open_flags: dict[int, str] = {}
    for chunk in _chunks(subjects):
        # Lock the open ones in id order (PostgreSQL; SQLite serializes writers anyway): an officer's
        # decision waits until these items are in, and two detection runs cannot deadlock.
        stmt = (sa.select(FraudFlag.id, FraudFlag.subject)
                .where(FraudFlag.kind == kind, FraudFlag.subject.in_(chunk), FraudFlag.status == FLAG_OPEN)
                .order_by(FraudFlag.id).with_for_update())
        open_flags.update({row.id: row.subject for row in db.session.execute(stmt)})
    added = _add_items({flag_id: found[subject] for flag_id, subject in open_flags.items()})
    for flag_id, n in added.items():
        result.items_added[kind] += n
        if flag_id not in raised_ids:
            result.extended[kind] += 1
    _refresh_numbers(set(added), found, open_flags)


def _add_items(candidates: dict[int, Candidate]) -> dict[int, int]:
    """Insert the items of these flags in few multi-row statements; how many were new, per flag."""
    added: dict[int, int] = defaultdict(int)
    for column, attr in (("click_pk", "click_pks"), ("conversion_pk", "conversion_pks")):
        rows = [{"flag_id": flag_id, column: pk} for flag_id in sorted(candidates)
                for pk in sorted(getattr(candidates[flag_id], attr))]
        for chunk in _chunks(rows):
            stmt = _insert(FraudFlagItem).values(chunk).on_conflict_do_nothing(index_elements=["flag_id", column])
            # RETURNING rather than rowcount, which is -1 for a multi-row INSERT on psycopg.
            for flag_id in db.session.scalars(stmt.returning(FraudFlagItem.flag_id)):
                added[flag_id] += 1
    return dict(added)


def _refresh_numbers(flag_ids: set[int], found: dict[str, Candidate], subjects: dict[int, str]) -> None:
    """Recompute the counts of each touched flag from all of its items (not just this run's)."""
    if not flag_ids:
        return
    ids = sorted(flag_ids)
    clicks = {row.flag_id: row for row in db.session.execute(
        sa.select(FraudFlagItem.flag_id, sa.func.count().label("n"), sa.func.min(Click.at).label("first"),
                  sa.func.max(Click.at).label("last"), sa.func.min(Click.day).label("day"),
                  sa.func.count(sa.distinct(Click.link_id)).label("links"),
                  sa.func.count(sa.distinct(Click.visitor_hash)).label("visitors"),
                  sa.func.count(sa.distinct(Click.advisor_id)).label("advisors"))
        .join(Click, Click.id == FraudFlagItem.click_pk).where(FraudFlagItem.flag_id.in_(ids))
        .group_by(FraudFlagItem.flag_id))}
    conversions: dict[int, dict] = defaultdict(dict)
    conversion_days: dict[int, date] = {}
    for row in db.session.execute(
            sa.select(FraudFlagItem.flag_id, Conversion.event, sa.func.count().label("n"),
                      sa.func.min(Conversion.day).label("day"))
            .join(Conversion, Conversion.id == FraudFlagItem.conversion_pk).where(FraudFlagItem.flag_id.in_(ids))
            .group_by(FraudFlagItem.flag_id, Conversion.event)):
        conversions[row.flag_id][row.event] = row.n
        conversion_days[row.flag_id] = min(row.day, conversion_days.get(row.flag_id, row.day))
    stored = dict(db.session.execute(sa.select(FraudFlag.id, FraudFlag.detail).where(FraudFlag.id.in_(ids))).all())
    updates = []
    for flag_id in ids:
        detail = dict(stored[flag_id] or {})
        candidate = found[subjects[flag_id]]
        for key, value in candidate.detail.items():
            if key == "reasons":
                detail[key] = sorted(set(detail.get(key, [])) | set(value))
            else:
                detail.setdefault(key, value)
        days = [candidate.day]
        if flag_id in clicks:
            c = clicks[flag_id]
            detail.update(clicks=c.n, first_click_at=c.first.isoformat(), last_click_at=c.last.isoformat(),
                          links=c.links, visitors=c.visitors, advisors=c.advisors)
            days.append(c.day)
        if flag_id in conversions:
            detail.update(conversions=sum(conversions[flag_id].values()), events=dict(conversions[flag_id]))
            days.append(conversion_days[flag_id])
        updates.append({"flag_pk": flag_id, "new_detail": detail, "new_day": min(days)})
    # One executemany; the status condition keeps a decided flag's numbers as they were decided on.
    table = FraudFlag.__table__
    db.session.connection().execute(
        table.update().where(table.c.id == sa.bindparam("flag_pk"), table.c.status == FLAG_OPEN)
        .values(detail=sa.bindparam("new_detail"), day=sa.bindparam("new_day")), updates)
    for flag_id in ids:
        flag = db.session.identity_map.get(db.session.identity_key(FraudFlag, flag_id))
        if flag is not None:
            db.session.expire(flag)


def detect(start: datetime, end: datetime, *, kinds=None, thresholds: Thresholds | None = None) -> DetectionResult:
    """Run the detectors over events in [start, end) and store what they find (flushed, not committed).

    Idempotent: a second run over the same data adds nothing. The audit entries of raised flags are
    written last, so the audit chain's lock is held only for the end of the transaction.
    """
    if end <= start:
        raise ValidationError(_("The end of the detection window must come after its start."), code="bad_window")
    t = thresholds or Thresholds.from_config()
    result = DetectionResult(start=start, end=end)
    for kind in kinds or DETECTORS:
        _store(kind, DETECTORS[kind](start, end, t), result)
    db.session.flush()
    for flag_id in sorted(result.raised_ids):
        flag = db.session.get(FraudFlag, flag_id)
        audit.record("fraud_flag.raised", "fraud_flag", flag.id, actor=DETECTOR,
                     details={"kind": flag.kind, "subject": flag.subject, "advisor_id": flag.advisor_id,
                              "day": flag.day.isoformat(), "clicks": flag.detail.get("clicks", 0),
                              "conversions": flag.detail.get("conversions", 0)})
    return result


def detect_days(first: date, last: date, **kwargs) -> DetectionResult:
    """Detection over whole business days ``first`` to ``last`` (Beijing, as the ``day`` columns), one day
    at a time (bounded work per query)."""
    from datetime import time

    total = DetectionResult(start=datetime.combine(first, time(), BUSINESS_TZ),
                            end=datetime.combine(last + timedelta(days=1), time(), BUSINESS_TZ))
    day = first
    while day <= last:
        start = datetime.combine(day, time(), BUSINESS_TZ)
        part = detect(start, start + timedelta(days=1), **kwargs)
        for name in ("raised", "extended", "items_added"):
            for kind, n in getattr(part, name).items():
                getattr(total, name)[kind] += n
        total.raised_ids.extend(part.raised_ids)
        day += timedelta(days=1)
    return total


# --- deciding ------------------------------------------------------------------------------------


def covered_days(flag: FraudFlag) -> set[date]:
    """The business days of the clicks and conversions a flag covers (the rollup days it changes)."""
    clicks = sa.select(Click.day).join(FraudFlagItem, FraudFlagItem.click_pk == Click.id).where(
        FraudFlagItem.flag_id == flag.id)
    conversions = sa.select(Conversion.day).join(FraudFlagItem, FraudFlagItem.conversion_pk == Conversion.id).where(
        FraudFlagItem.flag_id == flag.id)
    return set(db.session.scalars(sa.union(clicks, conversions)))


def _already_decided(flag: FraudFlag) -> Conflict:
    db.session.refresh(flag)
    who = flag.decided_by.name if flag.decided_by is not None else "?"
    if flag.status == FLAG_CONFIRMED:
        message = _("%(who)s already confirmed this flag; nothing was changed.", who=who)
    else:
        message = _("%(who)s already cleared this flag; nothing was changed.", who=who)
    return Conflict(message, code="flag_decided")


def decide(flag: FraudFlag, decision: str, note: str | None, *, actor) -> FraudFlag:
    """Confirm (held out of funnels and rankings) or clear an open flag, with the officer's note.

    A compare-and-set on ``status = 'open'``: of two officers deciding at once, one decision is stored
    and audited, the other gets a Conflict naming who decided. The covered days are marked dirty so the
    rollups recompute them.
    """
    if not can_review_fraud(actor):
        raise PermissionDenied(_("Only compliance officers decide on fraud flags."))
    fields = {}
    if decision not in DECISIONS:
        fields["decision"] = _("Choose confirm or clear.")
    note = (note or "").strip()
    if not note:
        fields["note"] = _("A note is required: say why.")
    elif len(note) > NOTE_MAX:
        fields["note"] = _("At most %(n)d characters.", n=NOTE_MAX)
    if fields:
        raise ValidationError(_("The decision was not saved: check the fields below."), fields=fields,
                              code="invalid_decision")
    if flag.status != FLAG_OPEN:
        raise _already_decided(flag)
    now = utcnow()
    if not compare_and_set(flag, [FraudFlag.status == FLAG_OPEN], status=decision, decided_by_id=actor.id,
                           decided_at=now, decision_note=note):
        raise _already_decided(flag)
    days = covered_days(flag)
    mark_days_dirty(days)
    counts = db.session.execute(sa.select(sa.func.count(FraudFlagItem.click_pk),
                                          sa.func.count(FraudFlagItem.conversion_pk))
                                .where(FraudFlagItem.flag_id == flag.id)).one()
    audit.record(DECISIONS[decision], "fraud_flag", flag.id, actor=actor,
                 details={"kind": flag.kind, "subject": flag.subject, "note": note, "clicks": counts[0],
                          "conversions": counts[1], "days": sorted(d.isoformat() for d in days)})
    return flag
