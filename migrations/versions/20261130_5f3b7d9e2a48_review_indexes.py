"""Indexes on approvals.script_revision_id (approvals of a script revision) and reviews.claimed_by_id
(an officer's claimed reviews), both looked up on every review page.

Revision ID: 5f3b7d9e2a48
Revises: 4d2a6c8e1f37
Create Date: 2026-11-30 05:09:17.368090

"""
from alembic import op
import sqlalchemy as sa



# revision identifiers, used by Alembic.
revision = '5f3b7d9e2a48'
down_revision = '4d2a6c8e1f37'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('approvals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_approvals_script_revision_id'), ['script_revision_id'], unique=False)

    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reviews_claimed_by_id'), ['claimed_by_id'], unique=False)



def downgrade():
    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reviews_claimed_by_id'))

    with op.batch_alter_table('approvals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_approvals_script_revision_id'))

