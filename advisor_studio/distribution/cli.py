"""`flask partners ...` commands of contract.md."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from advisor_studio.distribution import services
from advisor_studio.errors import DomainError
from advisor_studio.extensions import db

partners_cli = AppGroup("partners", help="Manage MCN partners.")


@partners_cli.command("create")
@click.option("--name", required=True)
@click.option("--channel", "channels", multiple=True, help="PLATFORM:HANDLE, repeatable.")
@click.option("--webhook-url", default=None)
def partners_create(name, channels, webhook_url):
    """Create a partner with channels; the new API key is printed alone on the last line."""
    try:
        partner, key = services.create_partner(name, channels, actor="cli", webhook_url=webhook_url)
    except DomainError as err:
        db.session.rollback()
        details = "; ".join(f"{k}: {v}" for k, v in err.fields.items())
        raise click.ClickException(err.message + (f" ({details})" if details else "")) from err
    db.session.commit()
    click.echo(f"created partner {partner.id} {partner.name} channels="
               + ",".join(f"{c.platform}:{c.handle}" for c in partner.channels))
    click.echo(key)
