"""Analytics: the advisor slices of the daily rollups (analytics_advisor_daily), filled from analytics_daily.

One row per (business day, segment, advisor, one dimension's value), so an advisor's funnel, or
everyone's by group, reads a few rows per advisor and day instead of one per link. The rows of the
days already rolled up are computed here from analytics_daily, in plain SQL, so the pages read the
same figures right after the upgrade. Self-contained (no application imports).

Revision ID: 60c0eb0b5eef
Revises: 3b9e5c7a1d24
Create Date: 2026-11-30 08:41:52.017710

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '60c0eb0b5eef'
down_revision = '3b9e5c7a1d24'
branch_labels = None
depends_on = None

MEASURES = ('clicks', 'duplicate_clicks', 'unique_visitors', 'signups', 'accounts_opened', 'accounts_rejected',
            'funded_count', 'funded_amount', 'withdrawals', 'withdrawn_amount', 'first_trades', 'customer_referrals')
SLICE_COLUMNS = {'package': 'package_id', 'channel': 'channel_id', 'partner': 'partner_id', 'group': 'group_id',
                 'platform': 'platform', 'campaign': 'campaign'}


def _fill():
    sums = ', '.join(f'SUM({name})' for name in MEASURES)
    names = ', '.join(MEASURES)
    for dimension, column in [('all', None), *SLICE_COLUMNS.items()]:
        key = f', {column}' if column else ''
        op.execute(sa.text(
            f"INSERT INTO analytics_advisor_daily (day, segment, dimension, advisor_id{key}, {names}) "
            f"SELECT day, segment, '{dimension}', advisor_id{key}, {sums} FROM analytics_daily "
            f"GROUP BY day, segment, advisor_id{key}"))


def upgrade():
    op.create_table('analytics_advisor_daily',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('segment', sa.String(length=12), nullable=False),
    sa.Column('dimension', sa.String(length=12), nullable=False),
    sa.Column('advisor_id', sa.Integer(), nullable=True),
    sa.Column('package_id', sa.Integer(), nullable=True),
    sa.Column('channel_id', sa.Integer(), nullable=True),
    sa.Column('partner_id', sa.Integer(), nullable=True),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.Column('platform', sa.String(length=32), nullable=True),
    sa.Column('campaign', sa.String(length=64), nullable=True),
    sa.Column('clicks', sa.Integer(), nullable=False),
    sa.Column('duplicate_clicks', sa.Integer(), nullable=False),
    sa.Column('unique_visitors', sa.Integer(), nullable=False),
    sa.Column('signups', sa.Integer(), nullable=False),
    sa.Column('accounts_opened', sa.Integer(), nullable=False),
    sa.Column('accounts_rejected', sa.Integer(), nullable=False),
    sa.Column('funded_count', sa.Integer(), nullable=False),
    sa.Column('funded_amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('withdrawals', sa.Integer(), nullable=False),
    sa.Column('withdrawn_amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('first_trades', sa.Integer(), nullable=False),
    sa.Column('customer_referrals', sa.Integer(), nullable=False),
    sa.CheckConstraint("(dimension = 'package' OR package_id IS NULL) AND (dimension = 'channel' OR channel_id IS NULL) AND (dimension = 'partner' OR partner_id IS NULL) AND (dimension = 'group' OR group_id IS NULL) AND (dimension = 'platform' OR platform IS NULL) AND (dimension = 'campaign' OR campaign IS NULL)", name=op.f('ck_analytics_advisor_daily_only_its_dimension')),
    sa.CheckConstraint("dimension IN ('all', 'package', 'channel', 'partner', 'group', 'platform', 'campaign')", name=op.f('ck_analytics_advisor_daily_dimension_known')),
    sa.CheckConstraint("segment IN ('counted', 'bot', 'employee', 'fraud')", name=op.f('ck_analytics_advisor_daily_segment_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_advisor_daily'))
    )
    with op.batch_alter_table('analytics_advisor_daily', schema=None) as batch_op:
        batch_op.create_index('ix_analytics_advisor_daily_advisor_dimension_day', ['advisor_id', 'dimension', 'day'], unique=False)
        batch_op.create_index('ix_analytics_advisor_daily_day', ['day'], unique=False)
        batch_op.create_index('ix_analytics_advisor_daily_dimension_segment_day', ['dimension', 'segment', 'day'], unique=False)
    _fill()


def downgrade():
    with op.batch_alter_table('analytics_advisor_daily', schema=None) as batch_op:
        batch_op.drop_index('ix_analytics_advisor_daily_dimension_segment_day')
        batch_op.drop_index('ix_analytics_advisor_daily_day')
        batch_op.drop_index('ix_analytics_advisor_daily_advisor_dimension_day')

    op.drop_table('analytics_advisor_daily')
