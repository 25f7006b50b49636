"""`flask links ...`: per-link stats (contract) and draining the click spool."""

from __future__ import annotations

import json
import sys

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from advisor_studio.extensions import db
from advisor_studio.referrals import clicks
from advisor_studio.referrals.models import ReferralLink
from advisor_studio.referrals.stats import link_stats

links_cli = AppGroup("links", help="Referral links: stats and the click spool.")


@links_cli.command("stats")
@click.argument("code")
def stats_command(code: str) -> None:
    """Print one JSON object of the link's clicks and conversions so far; exit 1 for an unknown code."""
    link = db.session.scalar(sa.select(ReferralLink).where(ReferralLink.code == code.strip()))
    if link is None:
        click.echo(f"unknown link code: {code!r}", err=True)
        sys.exit(1)
    clicks.drain()  # buffered clicks count as soon as they are durable
    click.echo(json.dumps(link_stats(link), ensure_ascii=False))


@links_cli.command("drain")
def drain_command() -> None:
    """Move every spooled click into the clicks table now (the beat task does it every second)."""
    seen = clicks.drain()
    click.echo(f"drained {seen} spooled lines; {clicks.stored_count()} clicks stored")
