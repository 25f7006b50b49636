"""Versioned risk-disclaimer templates owned by compliance

Revision ID: 9334bc893edd
Revises: 6a13a480486c
Create Date: 2026-11-25 19:42:12.765086

"""
import sqlalchemy as sa
from alembic import op



# revision identifiers, used by Alembic.
revision = '9334bc893edd'
down_revision = '6a13a480486c'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('disclaimer_templates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('text', sa.String(length=200), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_disclaimer_templates_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_disclaimer_templates')),
    sa.UniqueConstraint('version', name=op.f('uq_disclaimer_templates_version'))
    )


def downgrade():
    op.drop_table('disclaimer_templates')
