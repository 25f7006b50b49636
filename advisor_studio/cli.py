"""Flask CLI commands of contract.md: users, audit, seed-demo (later issues add more)."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from advisor_studio import audit
from advisor_studio.access import ROLES
from advisor_studio.accounts import services as account_services
from advisor_studio.errors import DomainError
from advisor_studio.extensions import db

users_cli = AppGroup("users", help="Manage user accounts.")
audit_cli = AppGroup("audit", help="Inspect the audit trail.")

# Demo logins printed by seed-demo; fixed so the README can name them.
DEMO_USERS = [
    {"role": "advisor", "email": "advisor@demo.example.com", "password": "demo-advisor-pass", "name": "王晓明",
     "sac_number": "S0570120080123"},
    {"role": "compliance", "email": "compliance@demo.example.com", "password": "demo-compliance-pass",
     "name": "李合规"},
    {"role": "mcn", "email": "mcn@demo.example.com", "password": "demo-mcn-pass", "name": "星河MCN运营"},
    {"role": "admin", "email": "admin@demo.example.com", "password": "demo-admin-pass", "name": "运营管理员"},
]


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice(ROLES))
@click.option("--name", default=None)
@click.option("--sac-number", default=None, help="S followed by 13 digits; required for advisors.")
def users_create(email, password, roles, name, sac_number):
    """Create a user with one or more roles."""
    try:
        user = account_services.create_user(
            email=email, password=password, roles=list(roles), name=name, sac_number=sac_number,
            actor="cli",
        )
    except DomainError as err:
        db.session.rollback()
        details = "; ".join(f"{k}: {v}" for k, v in err.fields.items())
        raise click.ClickException(err.message + (f" ({details})" if details else "")) from err
    db.session.commit()
    click.echo(f"created user {user.id} {user.email} roles={','.join(sorted(user.roles))}")


@audit_cli.command("verify")
def audit_verify():
    """Recompute the audit hash chain; exit 1 naming the first broken entry."""
    result = audit.verify()
    if result.ok:
        click.echo(f"ok: {result.count} entries, chain intact")
        return
    click.echo(f"BROKEN at entry #{result.broken_seq}: {result.reason} ({result.count} entries verified before it)",
               err=True)
    raise SystemExit(1)


@click.command("seed-demo")
def seed_demo():
    """Idempotent demo data; prints one 'login <role> <email> <password>' line per demo user."""
    for spec in DEMO_USERS:
        user = account_services.find_user_by_email(spec["email"])
        if user is None:
            user = account_services.create_user(
                email=spec["email"], password=spec["password"], roles=[spec["role"]], name=spec["name"],
                sac_number=spec.get("sac_number"), actor="seed-demo",
            )
        elif not user.check_password(spec["password"]) or not user.active:
            # Keep the printed logins true even if someone changed the demo password.
            account_services.change_password(user, spec["password"], actor="seed-demo")
            account_services.set_active(user, True, actor="seed-demo")
    db.session.commit()
    for spec in DEMO_USERS:
        click.echo(f"login {spec['role']} {spec['email']} {spec['password']}")


def init_app(app: Flask) -> None:
    """Register the command groups on the app."""
    app.cli.add_command(users_cli)
    app.cli.add_command(audit_cli)
    app.cli.add_command(seed_demo)
