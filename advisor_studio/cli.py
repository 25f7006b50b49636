"""Flask CLI commands of contract.md: users, audit, lexicon, seed-demo (later issues add more)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from advisor_studio import audit, checkpoints
from advisor_studio.access import ROLES
from advisor_studio.accounts import services as account_services
from advisor_studio.compliance.scanner import PLATFORMS
from advisor_studio.errors import DomainError
from advisor_studio.extensions import db

users_cli = AppGroup("users", help="Manage user accounts.")
audit_cli = AppGroup("audit", help="Inspect the audit trail.")
lexicon_cli = AppGroup("lexicon", help="Import and try the compliance lexicon.")

# Demo logins printed by seed-demo; fixed so the README can name them.
DEMO_USERS = [
    {"role": "advisor", "email": "advisor@demo.example.com", "password": "Blue-Harbor-Lantern-7", "name": "王晓明",
     "sac_number": "S0570120080123"},
    {"role": "compliance", "email": "compliance@demo.example.com", "password": "Quiet-Maple-Ledger-3",
     "name": "李合规"},
    {"role": "mcn", "email": "mcn@demo.example.com", "password": "Amber-River-Kite-5", "name": "星河MCN运营"},
    {"role": "admin", "email": "admin@demo.example.com", "password": "Stone-Violet-Compass-9", "name": "运营管理员"},
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
@click.option("--public-key", "public_key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Check checkpoint signatures with this PEM public key (no private key needed).")
@click.option("--fingerprint", default=None, help="The key fingerprint that must have signed (SHA256:...).")
def audit_verify(public_key_file: Path | None, fingerprint: str | None):
    """Recompute the audit hash chain and check it against every signed checkpoint; exit 1 naming the
    first broken entry."""
    try:
        public_key = checkpoints.parse_public_key(public_key_file.read_bytes()) if public_key_file else None
        result = audit.verify(public_key=public_key, expected_fingerprint=fingerprint)
    except checkpoints.CheckpointError as err:
        click.echo(f"cannot verify: {err}", err=True)
        raise SystemExit(1) from err
    if result.ok:
        click.echo(f"ok: {result.count} entries, chain intact; {result.checkpoints} checkpoints signed by "
                   f"{result.key_fingerprint} agree")
        if result.anchored_seq:
            click.echo(f"anchored up to entry #{result.anchored_seq} (checkpoint of {result.anchored_at})")
        if result.unanchored:
            click.echo(f"warning: {result.unanchored} newer entries are not covered by a checkpoint yet", err=True)
        return
    where = f"entry #{result.broken_seq}" if result.broken_seq else "the checkpoints"
    click.echo(f"BROKEN at {where}: {result.reason} ({result.count} entries verified before it)", err=True)
    raise SystemExit(1)


@audit_cli.command("checkpoint")
def audit_checkpoint():
    """Sign the current chain head and append it to the append-only checkpoint store."""
    try:
        record = checkpoints.take(force=True)
    except checkpoints.CheckpointError as err:
        click.echo(f"cannot checkpoint: {err}", err=True)
        raise SystemExit(1) from err
    if record is None:
        click.echo("the audit chain is empty: nothing to checkpoint")
        return
    click.echo(f"checkpoint of entry #{record['seq']} {record['entry_hash']} at {record['at']} "
               f"signed by {record['key']} -> {record['where']}")


@audit_cli.command("public-key")
def audit_public_key():
    """Print the PEM public key that verifies checkpoints, and its fingerprint (for a regulator)."""
    key = checkpoints.signing_key().public_key()
    click.echo(checkpoints.public_key_pem(key), nl=False)
    click.echo(checkpoints.fingerprint(key))


@click.command("seed-demo")
def seed_demo():
    """Idempotent demo data: users of each role, the default lexicon, a partner with channels, an approved,
    rendered package, community groups, referral links and a few weeks of synthetic clicks and conversions;
    prints 'login <role> <email> <password>' lines and a fresh partner key."""
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
    from advisor_studio import demo
    from advisor_studio.compliance import services as compliance

    compliance.ensure_default_lexicon("seed-demo")
    partner, api_key = demo.ensure_partner()
    mcn_user = account_services.find_user_by_email(next(s["email"] for s in DEMO_USERS if s["role"] == "mcn"))
    if mcn_user.partner_id != partner.id:
        from advisor_studio.distribution import services as distribution

        distribution.set_user_partner(mcn_user, partner, actor="seed-demo")
    db.session.commit()
    by_role = {spec["role"]: spec["email"] for spec in DEMO_USERS}
    demo.ensure_groups(by_role["advisor"])  # before the approval, so its sharing task has a link per group
    db.session.commit()
    package = demo.ensure_content(by_role["advisor"], by_role["compliance"], partner)
    db.session.commit()
    demo.ensure_referrals(by_role["advisor"], package)
    db.session.commit()
    demo.ensure_rollups()  # commits itself
    for spec in DEMO_USERS:
        click.echo(f"login {spec['role']} {spec['email']} {spec['password']}")
    click.echo(f"partner-api-key {api_key}")


@lexicon_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--note", default="", help="Note recorded with the new lexicon version.")
def lexicon_import(file: Path, note: str):
    """Merge FILE.csv (phrase,kind,severity,note[,category,platforms,group]) into the lexicon as one version."""
    from advisor_studio.compliance import services as compliance
    from advisor_studio.compliance.models import NOTE_IMPORT_FILE

    try:
        data = file.read_bytes()
    except OSError as exc:
        click.echo(f"cannot read {file}: {exc.strerror or exc}", err=True)
        raise SystemExit(1) from exc
    try:
        if note:
            version, counts = compliance.import_csv(data, actor="cli", note=note)
        else:
            version, counts = compliance.import_csv(data, actor="cli", note=f"import of {file.name}",
                                                    note_code=NOTE_IMPORT_FILE, note_args={"file": file.name})
    except DomainError as err:
        db.session.rollback()
        click.echo(err.message, err=True)
        for key, reason in err.fields.items():
            click.echo(f"{key}: {reason}", err=True)
        raise SystemExit(1) from err
    db.session.commit()
    number = version.number if version is not None else compliance.current_lexicon_version()
    click.echo(f"added {counts['added']}, updated {counts['updated']}, unchanged {counts['unchanged']}; "
               f"lexicon version {number}" + ("" if version is not None else " (no change)"))


def _read_scan_input(file: str) -> str:
    """The UTF-8 text of FILE (``-``: stdin); exit 2 when it cannot be read or decoded."""
    try:
        raw = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        click.echo(f"cannot read {file}: {exc.strerror or exc}", err=True)
        raise SystemExit(2) from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        click.echo(f"{'stdin' if file == '-' else file} is not valid UTF-8 (line {line}, byte {exc.start})", err=True)
        raise SystemExit(2) from exc


@lexicon_cli.command("scan")
@click.argument("file")
@click.option("--platform", type=click.Choice(sorted(PLATFORMS)), default=None,
              help="Apply this platform's rules (default: every rule).")
@click.option("--advisor", "advisor_email", default=None, help="Check the SAC number and name of this advisor.")
def lexicon_scan(file: str, platform: str | None, advisor_email: str | None):
    """Scan FILE (- for stdin) as a submission would; print one JSON object with the findings."""
    from advisor_studio.compliance import services as compliance

    advisor_name = sac_number = None
    if advisor_email:
        user = account_services.find_user_by_email(advisor_email)
        profile = user.advisor_profile if user is not None else None
        if profile is None:
            click.echo(f"no advisor with the email {advisor_email}", err=True)
            raise SystemExit(2)
        advisor_name, sac_number = profile.real_name, profile.sac_number
    text = _read_scan_input(file)
    result, version = compliance.scan_text(text, platforms=[platform] if platform else [],
                                           advisor_name=advisor_name, sac_number=sac_number)
    click.echo(json.dumps({"lexicon_version": version, "blocking": result.blocking,
                           "findings": [f.to_dict() for f in result.findings]}, ensure_ascii=False))


def init_app(app: Flask) -> None:
    """Register the command groups on the app."""
    app.cli.add_command(users_cli)
    app.cli.add_command(audit_cli)
    app.cli.add_command(lexicon_cli)
    app.cli.add_command(seed_demo)
