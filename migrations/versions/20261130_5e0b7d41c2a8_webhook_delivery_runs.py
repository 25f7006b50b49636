"""Webhook delivery runs: when the current run started (its retry window) and which run each attempt
belongs to, so an admin re-send starts a fresh window and the log shows the runs apart.

Revision ID: 5e0b7d41c2a8
Revises: caf2c7f5bfae
Create Date: 2026-11-30 01:55:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '5e0b7d41c2a8'
down_revision = 'caf2c7f5bfae'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('run', sa.Integer(), server_default=sa.text('1'), nullable=False))
        batch_op.add_column(sa.Column('run_started_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('webhook_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('run', sa.Integer(), server_default=sa.text('1'), nullable=False))


def downgrade():
    with op.batch_alter_table('webhook_attempts', schema=None) as batch_op:
        batch_op.drop_column('run')
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_column('run_started_at')
        batch_op.drop_column('run')
