"""Review comments and replies are append-only in the database itself: never changed, never deleted

Revision ID: 3b9e5c7a1d24
Revises: cac49f410eed
Create Date: 2026-12-01 09:00:00

What a reviewer asked and what the author answered is part of the review record, read again in
every later round and kept with the business records (20 years): like revisions and approvals,
the database refuses to delete a comment or to change any of its columns. PostgreSQL reuses the
refuse_frozen_change() function of revision a7c3f19d2b40 with nothing mutable; SQLite gets its own
two triggers.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '3b9e5c7a1d24'
down_revision = 'cac49f410eed'
branch_labels = None
depends_on = None

TABLE = "review_comments"


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(f"CREATE TRIGGER {TABLE}_frozen BEFORE UPDATE OR DELETE ON {TABLE} FOR EACH ROW "
                   "EXECUTE FUNCTION refuse_frozen_change('', '')")
    elif bind.dialect.name == "sqlite":
        columns = [c["name"] for c in sa.inspect(bind).get_columns(TABLE)]
        changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in columns)
        op.execute(f"CREATE TRIGGER {TABLE}_no_delete BEFORE DELETE ON {TABLE} "
                   f"BEGIN SELECT RAISE(ABORT, '{TABLE} rows are immutable and never deleted'); END")
        op.execute(f"CREATE TRIGGER {TABLE}_frozen BEFORE UPDATE ON {TABLE} WHEN {changed} "
                   f"BEGIN SELECT RAISE(ABORT, '{TABLE} rows are immutable'); END")


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_frozen ON {TABLE}")
    elif bind.dialect.name == "sqlite":
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_delete")
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_frozen")
