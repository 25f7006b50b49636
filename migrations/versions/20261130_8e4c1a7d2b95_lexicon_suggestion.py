"""Lexicon rules carry a suggested compliant rewording, shown with the findings they raise.

Self-contained (no application imports). Existing rows get "" (no suggestion), as lexicon files
written before the column load.

Revision ID: 8e4c1a7d2b95
Revises: 5f3b7d9e2a48
Create Date: 2026-11-30 06:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8e4c1a7d2b95'
down_revision = '5f3b7d9e2a48'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('lexicon_rules', schema=None) as batch_op:
        batch_op.add_column(sa.Column('suggestion', sa.String(length=500), server_default='', nullable=False))


def downgrade():
    with op.batch_alter_table('lexicon_rules', schema=None) as batch_op:
        batch_op.drop_column('suggestion')
