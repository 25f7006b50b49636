"""Referrals: community groups with their member-count history, referral links, clicks, customers (keyed
hashes only), conversions and sharing tasks; attribution dimensions copied onto clicks and conversions.

Revision ID: 1ceccb337576
Revises: 5e0b7d41c2a8
Create Date: 2026-11-30 01:43:28.081050

"""
from alembic import op
import sqlalchemy as sa



# revision identifiers, used by Alembic.
revision = '1ceccb337576'
down_revision = '5e0b7d41c2a8'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('community_groups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('platform', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('external_id', sa.String(length=128), nullable=True),
    sa.Column('member_count', sa.Integer(), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('archived_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("platform IN ('wecom', 'wechat', 'qq', 'feishu', 'dingtalk', 'other')", name=op.f('ck_community_groups_platform_known')),
    sa.CheckConstraint('member_count >= 0', name=op.f('ck_community_groups_member_count_nonnegative')),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_community_groups_owner_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_community_groups')),
    sa.UniqueConstraint('platform', 'external_id', name='uq_community_groups_platform_external_id')
    )
    with op.batch_alter_table('community_groups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_community_groups_owner_id'), ['owner_id'], unique=False)

    op.create_table('group_member_counts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('member_count', sa.Integer(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['group_id'], ['community_groups.id'], name=op.f('fk_group_member_counts_group_id_community_groups')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'], name=op.f('fk_group_member_counts_recorded_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_group_member_counts'))
    )
    with op.batch_alter_table('group_member_counts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_group_member_counts_group_id'), ['group_id'], unique=False)

    op.create_table('referral_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('package_id', sa.Integer(), nullable=True),
    sa.Column('channel_id', sa.Integer(), nullable=True),
    sa.Column('partner_id', sa.Integer(), nullable=True),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('campaign', sa.String(length=64), nullable=True),
    sa.Column('destination', sa.String(length=1000), nullable=False),
    sa.Column('utm', sa.JSON(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('disabled_at', sa.DateTime(), nullable=True),
    sa.Column('replaced_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("kind IN ('package', 'group', 'general', 'customer')", name=op.f('ck_referral_links_kind_known')),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], name=op.f('fk_referral_links_channel_id_channels')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_referral_links_created_by_id_users')),
    sa.ForeignKeyConstraint(['group_id'], ['community_groups.id'], name=op.f('fk_referral_links_group_id_community_groups')),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_referral_links_owner_id_users')),
    sa.ForeignKeyConstraint(['package_id'], ['packages.id'], name=op.f('fk_referral_links_package_id_packages')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_referral_links_partner_id_partners')),
    sa.ForeignKeyConstraint(['replaced_by_id'], ['referral_links.id'], name=op.f('fk_referral_links_replaced_by_id_referral_links')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_links')),
    sa.UniqueConstraint('code', name=op.f('uq_referral_links_code'))
    )
    with op.batch_alter_table('referral_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_referral_links_channel_id'), ['channel_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_referral_links_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_referral_links_group_id'), ['group_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_referral_links_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_referral_links_package_id'), ['package_id'], unique=False)

    op.create_table('customers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ref_hash', sa.String(length=64), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=True),
    sa.Column('click_id', sa.String(length=32), nullable=True),
    sa.Column('attributed_at', sa.DateTime(), nullable=True),
    sa.Column('is_employee', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['link_id'], ['referral_links.id'], name=op.f('fk_customers_link_id_referral_links')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customers')),
    sa.UniqueConstraint('ref_hash', name=op.f('uq_customers_ref_hash'))
    )
    # referral_links and customers point at each other: the link's foreign key comes after both tables.
    with op.batch_alter_table('referral_links', schema=None) as batch_op:
        batch_op.create_foreign_key('fk_referral_links_customer_id_customers', 'customers', ['customer_id'], ['id'])
    op.create_table('clicks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('click_id', sa.String(length=32), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=False),
    sa.Column('approval_id', sa.Integer(), nullable=True),
    sa.Column('advisor_id', sa.Integer(), nullable=False),
    sa.Column('package_id', sa.Integer(), nullable=True),
    sa.Column('channel_id', sa.Integer(), nullable=True),
    sa.Column('partner_id', sa.Integer(), nullable=True),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.Column('campaign', sa.String(length=64), nullable=True),
    sa.Column('is_bot', sa.Boolean(), nullable=False),
    sa.Column('is_head', sa.Boolean(), nullable=False),
    sa.Column('is_duplicate', sa.Boolean(), nullable=False),
    sa.Column('in_app', sa.String(length=16), nullable=False),
    sa.Column('device_class', sa.String(length=16), nullable=False),
    sa.Column('visitor_hash', sa.String(length=32), nullable=False),
    sa.Column('ip_prefix', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['advisor_id'], ['users.id'], name=op.f('fk_clicks_advisor_id_users')),
    sa.ForeignKeyConstraint(['approval_id'], ['approvals.id'], name=op.f('fk_clicks_approval_id_approvals')),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], name=op.f('fk_clicks_channel_id_channels')),
    sa.ForeignKeyConstraint(['group_id'], ['community_groups.id'], name=op.f('fk_clicks_group_id_community_groups')),
    sa.ForeignKeyConstraint(['link_id'], ['referral_links.id'], name=op.f('fk_clicks_link_id_referral_links')),
    sa.ForeignKeyConstraint(['package_id'], ['packages.id'], name=op.f('fk_clicks_package_id_packages')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_clicks_partner_id_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clicks')),
    sa.UniqueConstraint('click_id', name=op.f('uq_clicks_click_id'))
    )
    with op.batch_alter_table('clicks', schema=None) as batch_op:
        batch_op.create_index('ix_clicks_advisor_day', ['advisor_id', 'day'], unique=False)
        batch_op.create_index('ix_clicks_day', ['day'], unique=False)
        batch_op.create_index('ix_clicks_link_day', ['link_id', 'day'], unique=False)

    op.create_table('conversions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('body_sha256', sa.String(length=64), nullable=False),
    sa.Column('response', sa.JSON(), nullable=False),
    sa.Column('event', sa.String(length=24), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('is_employee', sa.Boolean(), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=True),
    sa.Column('advisor_id', sa.Integer(), nullable=True),
    sa.Column('package_id', sa.Integer(), nullable=True),
    sa.Column('channel_id', sa.Integer(), nullable=True),
    sa.Column('partner_id', sa.Integer(), nullable=True),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.Column('campaign', sa.String(length=64), nullable=True),
    sa.Column('referrer_customer_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("event IN ('signup', 'account_opened', 'funded', 'first_trade', 'account_rejected', 'withdrawal')", name=op.f('ck_conversions_event_known')),
    sa.CheckConstraint('amount IS NULL OR amount > 0', name=op.f('ck_conversions_amount_positive')),
    sa.ForeignKeyConstraint(['advisor_id'], ['users.id'], name=op.f('fk_conversions_advisor_id_users')),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], name=op.f('fk_conversions_channel_id_channels')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_conversions_customer_id_customers')),
    sa.ForeignKeyConstraint(['group_id'], ['community_groups.id'], name=op.f('fk_conversions_group_id_community_groups')),
    sa.ForeignKeyConstraint(['link_id'], ['referral_links.id'], name=op.f('fk_conversions_link_id_referral_links')),
    sa.ForeignKeyConstraint(['package_id'], ['packages.id'], name=op.f('fk_conversions_package_id_packages')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_conversions_partner_id_partners')),
    sa.ForeignKeyConstraint(['referrer_customer_id'], ['customers.id'], name=op.f('fk_conversions_referrer_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversions')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_conversions_idempotency_key'))
    )
    with op.batch_alter_table('conversions', schema=None) as batch_op:
        batch_op.create_index('ix_conversions_advisor_day', ['advisor_id', 'day'], unique=False)
        batch_op.create_index(batch_op.f('ix_conversions_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index('ix_conversions_day', ['day'], unique=False)
        batch_op.create_index('ix_conversions_link_day', ['link_id', 'day'], unique=False)

    op.create_table('sharing_tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('advisor_id', sa.Integer(), nullable=False),
    sa.Column('package_id', sa.Integer(), nullable=False),
    sa.Column('approval_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('opened_at', sa.DateTime(), nullable=True),
    sa.Column('done_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['advisor_id'], ['users.id'], name=op.f('fk_sharing_tasks_advisor_id_users')),
    sa.ForeignKeyConstraint(['approval_id'], ['approvals.id'], name=op.f('fk_sharing_tasks_approval_id_approvals')),
    sa.ForeignKeyConstraint(['package_id'], ['packages.id'], name=op.f('fk_sharing_tasks_package_id_packages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sharing_tasks')),
    sa.UniqueConstraint('approval_id', name=op.f('uq_sharing_tasks_approval_id'))
    )
    with op.batch_alter_table('sharing_tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sharing_tasks_advisor_id'), ['advisor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sharing_tasks_package_id'), ['package_id'], unique=False)

    op.create_table('sharing_task_links',
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['link_id'], ['referral_links.id'], name=op.f('fk_sharing_task_links_link_id_referral_links')),
    sa.ForeignKeyConstraint(['task_id'], ['sharing_tasks.id'], name=op.f('fk_sharing_task_links_task_id_sharing_tasks')),
    sa.PrimaryKeyConstraint('task_id', 'link_id', name=op.f('pk_sharing_task_links'))
    )


def downgrade():
    with op.batch_alter_table('referral_links', schema=None) as batch_op:
        batch_op.drop_constraint('fk_referral_links_customer_id_customers', type_='foreignkey')
    op.drop_table('sharing_task_links')
    with op.batch_alter_table('sharing_tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sharing_tasks_package_id'))
        batch_op.drop_index(batch_op.f('ix_sharing_tasks_advisor_id'))

    op.drop_table('sharing_tasks')
    with op.batch_alter_table('conversions', schema=None) as batch_op:
        batch_op.drop_index('ix_conversions_link_day')
        batch_op.drop_index('ix_conversions_day')
        batch_op.drop_index(batch_op.f('ix_conversions_customer_id'))
        batch_op.drop_index('ix_conversions_advisor_day')

    op.drop_table('conversions')
    with op.batch_alter_table('clicks', schema=None) as batch_op:
        batch_op.drop_index('ix_clicks_link_day')
        batch_op.drop_index('ix_clicks_day')
        batch_op.drop_index('ix_clicks_advisor_day')

    op.drop_table('clicks')
    op.drop_table('customers')
    with op.batch_alter_table('referral_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_referral_links_package_id'))
        batch_op.drop_index(batch_op.f('ix_referral_links_owner_id'))
        batch_op.drop_index(batch_op.f('ix_referral_links_group_id'))
        batch_op.drop_index(batch_op.f('ix_referral_links_customer_id'))
        batch_op.drop_index(batch_op.f('ix_referral_links_channel_id'))

    op.drop_table('referral_links')
    with op.batch_alter_table('group_member_counts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_group_member_counts_group_id'))

    op.drop_table('group_member_counts')
    with op.batch_alter_table('community_groups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_community_groups_owner_id'))

    op.drop_table('community_groups')
