"""`flask fraud detect [--from YYYY-MM-DD] [--to YYYY-MM-DD]`: fraud detection over whole business days."""

from __future__ import annotations

import json
import sys
from datetime import date, timedelta

import click
from flask import current_app
from flask.cli import AppGroup

from advisor_studio.analytics import fraud
from advisor_studio.dbtypes import business_today, utcnow
from advisor_studio.extensions import db

fraud_cli = AppGroup("fraud", help="Fraud flags: detection.")

MAX_DAYS = 366


def _day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        click.echo(f"--{name} must be a date written YYYY-MM-DD, got {value!r}", err=True)
        sys.exit(2)


@fraud_cli.command("detect")
@click.option("--from", "day_from", help="first business day, Beijing (YYYY-MM-DD); default: the recent window")
@click.option("--to", "day_to", help="last business day, inclusive (YYYY-MM-DD); default: --from or today")
def detect_command(day_from: str | None, day_to: str | None) -> None:
    """Raise fraud flags over the given days (or the last FRAUD_DETECT_LOOKBACK_MINUTES); prints JSON.

    Idempotent: running it again adds nothing new; decided flags are never reopened.
    """
    first, last = _day(day_from, "from"), _day(day_to, "to")
    if first is None and last is None:
        end = utcnow()
        result = fraud.detect(end - timedelta(minutes=current_app.config["FRAUD_DETECT_LOOKBACK_MINUTES"]), end)
    else:
        first = first or last
        last = last or max(first, business_today())
        if last < first:
            click.echo("--to lies before --from", err=True)
            sys.exit(2)
        if (last - first).days + 1 > MAX_DAYS:
            click.echo(f"at most {MAX_DAYS} days at a time; split the range", err=True)
            sys.exit(2)
        result = fraud.detect_days(first, last)
    db.session.commit()
    click.echo(json.dumps(result.as_dict(), sort_keys=True))
