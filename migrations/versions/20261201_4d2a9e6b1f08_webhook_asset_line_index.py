"""Webhook events: one index for "is an earlier event of this asset still pending?".

The due-events query asks it for every due event. With only single-column indexes SQLite (no
statistics) could choose partner_id and read every event of the partner per candidate: 24.6 s for
2,000 due events over 52,000, against 4 ms with this index. It leads with assignment_id, so the
single-column index on that foreign key goes.

Revision ID: 4d2a9e6b1f08
Revises: 60c0eb0b5eef
Create Date: 2026-12-01 13:20:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '4d2a9e6b1f08'
down_revision = '60c0eb0b5eef'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_events_asset_line', ['assignment_id', 'partner_id', 'status', 'id'],
                              unique=False)
        batch_op.drop_index(batch_op.f('ix_webhook_events_assignment_id'))


def downgrade():
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_events_assignment_id'), ['assignment_id'], unique=False)
        batch_op.drop_index('ix_webhook_events_asset_line')
