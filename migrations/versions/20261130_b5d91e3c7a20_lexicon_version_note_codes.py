"""Lexicon versions remember what made them as a code with parameters, so their notes read in the
reader's language.

Self-contained (no application imports). Existing rows get NULL in both columns: their notes are
shown as they were written.

Revision ID: b5d91e3c7a20
Revises: 8e4c1a7d2b95
Create Date: 2026-11-30 12:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b5d91e3c7a20'
down_revision = '8e4c1a7d2b95'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('lexicon_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('note_code', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('note_args', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('lexicon_versions', schema=None) as batch_op:
        batch_op.drop_column('note_args')
        batch_op.drop_column('note_code')
