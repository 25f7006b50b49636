"""Script revisions and approvals are immutable in the database itself, except named columns

Revision ID: a7c3f19d2b40
Revises: 7c1d2e3f4a5b
Create Date: 2026-11-29 22:30:00

An approval is a signature over exact bytes and a revision is what was reviewed: like the audit
table, the database refuses to delete either or to change what they record, so not even a
direct SQL session can alter them without first dropping a trigger (which the signed audit
checkpoints then expose through the chain). Only the columns listed below may change.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'a7c3f19d2b40'
down_revision = "7c1d2e3f4a5b"
branch_labels = None
depends_on = None

# The one place that says what may still change in a frozen row. To let a new column change,
# add it here (and re-create the triggers in a later migration: on SQLite the UPDATE trigger
# lists the frozen columns, so a column added after this migration is mutable until then).
#   mutable:  may change freely (voiding, lexicon re-scan flags);
#   set_once: may go from NULL to a value, never change again (submit_script sets scan_id
#             right after inserting the revision).
FROZEN_TABLES = {
    "approvals": {
        "mutable": ("voided_at", "void_reason", "flagged_at", "flag_scan_id"),
        "set_once": (),
    },
    "script_revisions": {
        "mutable": (),
        "set_once": ("scan_id",),
    },
}

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION refuse_frozen_change() RETURNS trigger AS $$
DECLARE
    mutable text[] := string_to_array(TG_ARGV[0], ',');
    set_once text[] := string_to_array(TG_ARGV[1], ',');
    col text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION '% rows are immutable and never deleted', TG_TABLE_NAME;
    END IF;
    -- Whole-row comparison: a column added later is frozen too unless it is listed as mutable.
    IF (to_jsonb(NEW) - mutable - set_once) IS DISTINCT FROM (to_jsonb(OLD) - mutable - set_once) THEN
        RAISE EXCEPTION '% rows are immutable (only % may change)', TG_TABLE_NAME, TG_ARGV[0];
    END IF;
    FOREACH col IN ARRAY set_once LOOP
        IF to_jsonb(OLD) -> col <> 'null'::jsonb AND (to_jsonb(OLD) -> col) IS DISTINCT FROM (to_jsonb(NEW) -> col) THEN
            RAISE EXCEPTION '%.% is immutable once set', TG_TABLE_NAME, col;
        END IF;
    END LOOP;
    RETURN NEW;
END; $$ LANGUAGE plpgsql
"""


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for table, spec in FROZEN_TABLES.items():
            op.execute(
                f"CREATE TRIGGER {table}_frozen BEFORE UPDATE OR DELETE ON {table} FOR EACH ROW "
                f"EXECUTE FUNCTION refuse_frozen_change('{','.join(spec['mutable'])}', "
                f"'{','.join(spec['set_once'])}')"
            )
    elif bind.dialect.name == "sqlite":
        inspector = sa.inspect(bind)
        for table, spec in FROZEN_TABLES.items():
            frozen = [c["name"] for c in inspector.get_columns(table)
                      if c["name"] not in spec["mutable"] and c["name"] not in spec["set_once"]]
            changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in frozen)
            op.execute(
                f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} rows are immutable and never deleted'); END"
            )
            op.execute(
                f"CREATE TRIGGER {table}_frozen BEFORE UPDATE ON {table} WHEN {changed} "
                f"BEGIN SELECT RAISE(ABORT, '{table} rows are immutable'); END"
            )
            for col in spec["set_once"]:
                op.execute(
                    f"CREATE TRIGGER {table}_{col}_set_once BEFORE UPDATE OF {col} ON {table} "
                    f"WHEN OLD.{col} IS NOT NULL AND OLD.{col} IS NOT NEW.{col} "
                    f"BEGIN SELECT RAISE(ABORT, '{table}.{col} is immutable once set'); END"
                )


def downgrade():
    bind = op.get_bind()
    for table, spec in FROZEN_TABLES.items():
        if bind.dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_frozen ON {table}")
        elif bind.dialect.name == "sqlite":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_frozen")
            for col in spec["set_once"]:
                op.execute(f"DROP TRIGGER IF EXISTS {table}_{col}_set_once")
    if bind.dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS refuse_frozen_change()")
