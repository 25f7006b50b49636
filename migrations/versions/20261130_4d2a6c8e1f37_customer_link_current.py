"""One enabled, unreplaced own link per customer (a partial unique index), so two people issuing a
customer's link at once get the same one.

Revision ID: 4d2a6c8e1f37
Revises: 3b8e5f2a9c71
Create Date: 2026-11-30 04:44:24.386746

"""
from alembic import op
import sqlalchemy as sa



# revision identifiers, used by Alembic.
revision = '4d2a6c8e1f37'
down_revision = '3b8e5f2a9c71'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('referral_links', schema=None) as batch_op:
        batch_op.create_index('uq_referral_links_customer_current', ['customer_id'], unique=True, postgresql_where=sa.text("kind = 'customer' AND replaced_by_id IS NULL AND enabled"), sqlite_where=sa.text("kind = 'customer' AND replaced_by_id IS NULL AND enabled"))



def downgrade():
    with op.batch_alter_table('referral_links', schema=None) as batch_op:
        batch_op.drop_index('uq_referral_links_customer_current', postgresql_where=sa.text("kind = 'customer' AND replaced_by_id IS NULL AND enabled"), sqlite_where=sa.text("kind = 'customer' AND replaced_by_id IS NULL AND enabled"))

