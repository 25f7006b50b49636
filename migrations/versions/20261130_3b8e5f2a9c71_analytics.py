"""Analytics: daily rollups per (day, link, segment) with their refresh state and dirty days, fraud flags
with the clicks and conversions they cover, reconciliation uploads and partner-reported post metrics.

Self-contained (no application imports): UTC datetimes are plain DateTime columns, as dbtypes stores them.

Revision ID: 3b8e5f2a9c71
Revises: 1ceccb337576
Create Date: 2026-11-30 04:41:56.006353

"""
from alembic import op
import sqlalchemy as sa



# revision identifiers, used by Alembic.
revision = '3b8e5f2a9c71'
down_revision = '1ceccb337576'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('analytics_dirty_days',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('marked_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_analytics_dirty_days'))
    )
    op.create_table('analytics_rollup_state',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('last_click_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('last_conversion_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('fresh_as_of', sa.DateTime(), nullable=True),
    sa.Column('refreshed_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_analytics_rollup_state'))
    )
    op.create_table('fraud_flags',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('advisor_id', sa.Integer(), nullable=True),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('detected_at', sa.DateTime(), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('decision_note', sa.Text(), nullable=True),
    sa.CheckConstraint("kind IN ('short_lag', 'visitor_burst', 'network_burst', 'self_conversion', 'signup_burst')", name=op.f('ck_fraud_flags_kind_known')),
    sa.CheckConstraint("status IN ('open', 'confirmed', 'cleared')", name=op.f('ck_fraud_flags_status_known')),
    sa.ForeignKeyConstraint(['advisor_id'], ['users.id'], name=op.f('fk_fraud_flags_advisor_id_users')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_fraud_flags_decided_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fraud_flags')),
    sa.UniqueConstraint('kind', 'subject', name='uq_fraud_flags_kind_subject')
    )
    with op.batch_alter_table('fraud_flags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fraud_flags_advisor_id'), ['advisor_id'], unique=False)
        batch_op.create_index('ix_fraud_flags_status_day', ['status', 'day'], unique=False)

    op.create_table('reconciliation_uploads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('period_from', sa.Date(), nullable=False),
    sa.Column('period_to', sa.Date(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('storage_key', sa.String(length=255), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('encoding', sa.String(length=16), nullable=False),
    sa.Column('row_count', sa.Integer(), nullable=False),
    sa.Column('matched', sa.Integer(), nullable=False),
    sa.Column('missing_here', sa.Integer(), nullable=False),
    sa.Column('missing_there', sa.Integer(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('period_from <= period_to', name=op.f('ck_reconciliation_uploads_period_ordered')),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['users.id'], name=op.f('fk_reconciliation_uploads_uploaded_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconciliation_uploads'))
    )
    op.create_table('analytics_daily',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('segment', sa.String(length=12), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=True),
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
    sa.CheckConstraint("segment IN ('counted', 'bot', 'employee', 'fraud')", name=op.f('ck_analytics_daily_segment_known')),
    sa.ForeignKeyConstraint(['advisor_id'], ['users.id'], name=op.f('fk_analytics_daily_advisor_id_users')),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], name=op.f('fk_analytics_daily_channel_id_channels')),
    sa.ForeignKeyConstraint(['group_id'], ['community_groups.id'], name=op.f('fk_analytics_daily_group_id_community_groups')),
    sa.ForeignKeyConstraint(['link_id'], ['referral_links.id'], name=op.f('fk_analytics_daily_link_id_referral_links')),
    sa.ForeignKeyConstraint(['package_id'], ['packages.id'], name=op.f('fk_analytics_daily_package_id_packages')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_analytics_daily_partner_id_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_daily'))
    )
    with op.batch_alter_table('analytics_daily', schema=None) as batch_op:
        batch_op.create_index('ix_analytics_daily_advisor_day', ['advisor_id', 'day'], unique=False)
        batch_op.create_index('ix_analytics_daily_day_segment', ['day', 'segment'], unique=False)
        batch_op.create_index('ix_analytics_daily_link_day', ['link_id', 'day'], unique=False)

    op.create_table('fraud_flag_items',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('flag_id', sa.Integer(), nullable=False),
    sa.Column('click_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('conversion_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.CheckConstraint('(click_pk IS NULL) <> (conversion_pk IS NULL)', name=op.f('ck_fraud_flag_items_one_subject')),
    sa.ForeignKeyConstraint(['click_pk'], ['clicks.id'], name=op.f('fk_fraud_flag_items_click_pk_clicks')),
    sa.ForeignKeyConstraint(['conversion_pk'], ['conversions.id'], name=op.f('fk_fraud_flag_items_conversion_pk_conversions')),
    sa.ForeignKeyConstraint(['flag_id'], ['fraud_flags.id'], name=op.f('fk_fraud_flag_items_flag_id_fraud_flags')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fraud_flag_items')),
    )
    with op.batch_alter_table('fraud_flag_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fraud_flag_items_click_pk'), ['click_pk'], unique=False)
        batch_op.create_index(batch_op.f('ix_fraud_flag_items_conversion_pk'), ['conversion_pk'], unique=False)
        batch_op.create_index(batch_op.f('ix_fraud_flag_items_flag_id'), ['flag_id'], unique=False)
        batch_op.create_index('uq_fraud_flag_items_click', ['flag_id', 'click_pk'], unique=True)
        batch_op.create_index('uq_fraud_flag_items_conversion', ['flag_id', 'conversion_pk'], unique=True)

    op.create_table('publication_metrics',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('publication_id', sa.Integer(), nullable=False),
    sa.Column('observed_at', sa.DateTime(), nullable=False),
    sa.Column('views', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('likes', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('comments', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('shares', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('reported_at', sa.DateTime(), nullable=False),
    sa.Column('reported_by_key_id', sa.Integer(), nullable=True),
    sa.Column('reported_by_user_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('views >= 0 AND likes >= 0 AND comments >= 0 AND shares >= 0', name=op.f('ck_publication_metrics_counters_nonnegative')),
    sa.ForeignKeyConstraint(['publication_id'], ['publications.id'], name=op.f('fk_publication_metrics_publication_id_publications')),
    sa.ForeignKeyConstraint(['reported_by_key_id'], ['partner_api_keys.id'], name=op.f('fk_publication_metrics_reported_by_key_id_partner_api_keys')),
    sa.ForeignKeyConstraint(['reported_by_user_id'], ['users.id'], name=op.f('fk_publication_metrics_reported_by_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_publication_metrics')),
    sa.UniqueConstraint('publication_id', 'observed_at', name='uq_publication_metrics_publication_time')
    )


def downgrade():
    op.drop_table('publication_metrics')
    with op.batch_alter_table('fraud_flag_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fraud_flag_items_flag_id'))
        batch_op.drop_index('uq_fraud_flag_items_click')
        batch_op.drop_index('uq_fraud_flag_items_conversion')
        batch_op.drop_index(batch_op.f('ix_fraud_flag_items_conversion_pk'))
        batch_op.drop_index(batch_op.f('ix_fraud_flag_items_click_pk'))

    op.drop_table('fraud_flag_items')
    with op.batch_alter_table('analytics_daily', schema=None) as batch_op:
        batch_op.drop_index('ix_analytics_daily_link_day')
        batch_op.drop_index('ix_analytics_daily_day_segment')
        batch_op.drop_index('ix_analytics_daily_advisor_day')

    op.drop_table('analytics_daily')
    op.drop_table('reconciliation_uploads')
    with op.batch_alter_table('fraud_flags', schema=None) as batch_op:
        batch_op.drop_index('ix_fraud_flags_status_day')
        batch_op.drop_index(batch_op.f('ix_fraud_flags_advisor_id'))

    op.drop_table('fraud_flags')
    op.drop_table('analytics_rollup_state')
    op.drop_table('analytics_dirty_days')
