"""`flask analytics ...` (contract.md): the funnel as JSON, rebuilding and refreshing the rollups.

`funnel` reads the same query layer as the pages and their CSV export. Bad input (an unknown advisor,
dimension or date, an end before its start, a range over three years) exits 2 with a message.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import date

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from advisor_studio import audit
from advisor_studio.accounts.models import User
from advisor_studio.analytics import queries, rollups
from advisor_studio.errors import ValidationError
from advisor_studio.extensions import db
from advisor_studio.web import FIRST_DAY, LAST_DAY

DAY_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

analytics_cli = AppGroup("analytics", help="Funnels and the rollups behind them.")


def _fail(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(2)


def _day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    text = value.strip()
    try:
        if not DAY_RE.fullmatch(text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        _fail(f"--{name} must be a date written YYYY-MM-DD, got {value!r}")
    if not FIRST_DAY <= day <= LAST_DAY:
        _fail(f"--{name} must lie between {FIRST_DAY.isoformat()} and {LAST_DAY.isoformat()}")
    return day


def _period(start: date | None, end: date | None) -> tuple[date, date]:
    """The contract's defaults: the last 30 days; --from alone runs to today, --to alone goes 29 days back."""
    default_start, default_end = queries.default_range()
    if start is None and end is None:
        return default_start, default_end
    if start is None:
        return end - (default_end - default_start), end
    if end is None:
        return start, max(start, default_end)
    return start, end


def _iso(moment) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


@analytics_cli.command("funnel")
@click.option("--advisor", "advisor_email", default=None, help="Only this advisor's figures (email).")
@click.option("--from", "date_from", default=None, help="First business day, YYYY-MM-DD (default: 29 days before).")
@click.option("--to", "date_to", default=None, help="Last business day (Beijing), YYYY-MM-DD (default: today).")
@click.option("--by", default=None, help="Group by: " + ", ".join(queries.DIMENSIONS) + ".")
def funnel_command(advisor_email: str | None, date_from: str | None, date_to: str | None, by: str | None) -> None:
    """Print the funnel as one JSON object {from, to, as_of, rows}; the pages' numbers."""
    if by is not None and by not in queries.DIMENSIONS:
        _fail(f"--by must be one of {', '.join(queries.DIMENSIONS)}, got {by!r}")
    start, end = _period(_day(date_from, "from"), _day(date_to, "to"))
    filters: dict = {}
    if advisor_email is not None:
        advisor = db.session.scalar(sa.select(User).where(sa.func.lower(User.email) == advisor_email.strip().lower()))
        if advisor is None or not advisor.has_role("advisor"):
            _fail(f"no advisor with the email {advisor_email!r}")
        filters["advisor"] = advisor.id
    try:
        filters = queries.check_filters(None, filters)
        result = queries.funnel(None, start, end, by=by, filters=filters, compare=False)
    except ValidationError as err:
        _fail(err.message)
    click.echo(json.dumps({"from": start.isoformat(), "to": end.isoformat(), "as_of": _iso(result.as_of),
                           "rows": [row.contract_dict() for row in result.rows]}, ensure_ascii=False, default=str))


@analytics_cli.command("rebuild")
@click.option("--from", "date_from", default=None, help="First business day to recompute, YYYY-MM-DD.")
@click.option("--to", "date_to", default=None, help="Last business day to recompute, YYYY-MM-DD.")
def rebuild_command(date_from: str | None, date_to: str | None) -> None:
    """Recompute the rollups of a range of days (default: every day with data) from the raw tables, then
    fold in anything newer; idempotent."""
    start, end = _day(date_from, "from"), _day(date_to, "to")
    if start is not None and end is not None and end < start:
        _fail("--to is before --from")
    result = rollups.rebuild(start, end)
    if start is not None or end is not None:
        rollups.refresh()  # the rest of the days catch up, so the funnel agrees with `links stats`
    audit.record("analytics.rebuilt", "analytics_daily", "daily", actor="cli",
                 details={"from": start.isoformat() if start else None, "to": end.isoformat() if end else None,
                          "days": len(result.days), "rows": result.rows})
    db.session.commit()
    first, last = (result.days[0].isoformat(), result.days[-1].isoformat()) if result.days else ("-", "-")
    click.echo(f"rebuilt {len(result.days)} days ({first} to {last}), {result.rows} rollup rows; "
               f"as of {_iso(rollups.fresh_as_of())}")


@analytics_cli.command("refresh")
def refresh_command() -> None:
    """Fold new clicks and conversions into the rollups now (the beat task does it every minute)."""
    result = rollups.refresh()
    click.echo(f"refreshed {len(result.days)} days, {result.rows} rollup rows; as of {_iso(result.fresh_as_of)}")
