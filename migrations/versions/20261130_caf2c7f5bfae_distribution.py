"""Distribution: assignments (the partner API's assets), publications, take-downs, the webhook
outbox, API key bookkeeping, partner contacts, channel follower counts and the "other" platform, the
mcn user's partner, and which key and asset a download followed.

Approvals that are live when this runs get their assignments, as a final approval would have made.

Revision ID: caf2c7f5bfae
Revises: a7c3f19d2b40
Create Date: 2026-11-30 01:35:27.653556

"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op


CHANNEL_PLATFORMS_OLD = "platform IN ('douyin', 'kuaishou', 'bilibili', 'wechat_channels', 'xiaohongshu')"
CHANNEL_PLATFORMS_NEW = ("platform IN ('douyin', 'kuaishou', 'bilibili', 'wechat_channels', 'xiaohongshu', "
                         "'other')")


def _backfill_assignments(bind) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    bind.execute(sa.text(
        "INSERT INTO assignments (approval_id, package_id, channel_id, partner_id, status, created_at, "
        "status_changed_at, version) "
        "SELECT a.id, a.package_id, c.id, c.partner_id, 'ready', :now, :now, 1 FROM approvals a "
        "JOIN packages p ON p.id = a.package_id JOIN package_channels pc ON pc.package_id = p.id "
        "JOIN channels c ON c.id = pc.channel_id "
        "WHERE a.stage = 'package' AND a.voided_at IS NULL AND a.expires_at > :now AND p.status = 'approved' "
        "ORDER BY a.id, c.id"), {"now": now})


# revision identifiers, used by Alembic.
revision = 'caf2c7f5bfae'
down_revision = 'a7c3f19d2b40'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('assignments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('approval_id', sa.Integer(), nullable=False),
    sa.Column('package_id', sa.Integer(), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('status_changed_at', sa.DateTime(), nullable=False),
    sa.Column('takedown_due_at', sa.DateTime(), nullable=True),
    sa.Column('takedown_completed_at', sa.DateTime(), nullable=True),
    sa.Column('overdue_notified_at', sa.DateTime(), nullable=True),
    sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.CheckConstraint("status IN ('ready', 'published', 'withdrawn', 'expired')", name=op.f('ck_assignments_status_known')),
    sa.ForeignKeyConstraint(['approval_id'], ['approvals.id'], name=op.f('fk_assignments_approval_id_approvals')),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], name=op.f('fk_assignments_channel_id_channels')),
    sa.ForeignKeyConstraint(['package_id'], ['packages.id'], name=op.f('fk_assignments_package_id_packages')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_assignments_partner_id_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assignments')),
    sa.UniqueConstraint('approval_id', 'channel_id', name='uq_assignments_approval_channel')
    )
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_assignments_approval_id'), ['approval_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_assignments_channel_id'), ['channel_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_assignments_package_id'), ['package_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_assignments_takedown_due_at'), ['takedown_due_at'], unique=False)
        batch_op.create_index('ix_assignments_partner_newest', ['partner_id', 'id'], unique=False)
        batch_op.create_index('ix_assignments_partner_status_newest', ['partner_id', 'status', 'id'],
                              unique=False)

    op.create_table('publications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=False),
    sa.Column('platform', sa.String(length=32), nullable=False),
    sa.Column('post_url', sa.String(length=1000), nullable=False),
    sa.Column('post_url_key', sa.String(length=1000), nullable=False),
    sa.Column('published_at', sa.DateTime(), nullable=False),
    sa.Column('reported_at', sa.DateTime(), nullable=False),
    sa.Column('reported_by_user_id', sa.Integer(), nullable=True),
    sa.Column('reported_by_key_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("platform IN ('douyin', 'kuaishou', 'bilibili', 'wechat_channels', 'xiaohongshu', 'other')", name=op.f('ck_publications_platform_known')),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'], name=op.f('fk_publications_assignment_id_assignments')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_publications_partner_id_partners')),
    sa.ForeignKeyConstraint(['reported_by_key_id'], ['partner_api_keys.id'], name=op.f('fk_publications_reported_by_key_id_partner_api_keys')),
    sa.ForeignKeyConstraint(['reported_by_user_id'], ['users.id'], name=op.f('fk_publications_reported_by_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_publications')),
    sa.UniqueConstraint('assignment_id', 'post_url_key', name='uq_publications_assignment_post')
    )
    with op.batch_alter_table('publications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_publications_assignment_id'), ['assignment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_publications_partner_id'), ['partner_id'], unique=False)

    op.create_table('webhook_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=40), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=True),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=True),
    sa.Column('delivered_at', sa.DateTime(), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'delivered', 'failed', 'skipped')", name=op.f('ck_webhook_events_status_known')),
    sa.CheckConstraint("type IN ('asset.assigned', 'asset.withdrawn', 'asset.expired', 'takedown.overdue', 'test')", name=op.f('ck_webhook_events_type_known')),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'], name=op.f('fk_webhook_events_assignment_id_assignments')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_webhook_events_partner_id_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_events')),
    sa.UniqueConstraint('event_id', name=op.f('uq_webhook_events_event_id'))
    )
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_events_assignment_id'), ['assignment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_events_next_attempt_at'), ['next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_events_partner_id'), ['partner_id'], unique=False)
        batch_op.create_index('ix_webhook_events_status_next', ['status', 'next_attempt_at'], unique=False)

    op.create_table('takedowns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('publication_id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=False),
    sa.Column('removed_at', sa.DateTime(), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(), nullable=False),
    sa.Column('confirmed_by_user_id', sa.Integer(), nullable=True),
    sa.Column('confirmed_by_key_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'], name=op.f('fk_takedowns_assignment_id_assignments')),
    sa.ForeignKeyConstraint(['confirmed_by_key_id'], ['partner_api_keys.id'], name=op.f('fk_takedowns_confirmed_by_key_id_partner_api_keys')),
    sa.ForeignKeyConstraint(['confirmed_by_user_id'], ['users.id'], name=op.f('fk_takedowns_confirmed_by_user_id_users')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_takedowns_partner_id_partners')),
    sa.ForeignKeyConstraint(['publication_id'], ['publications.id'], name=op.f('fk_takedowns_publication_id_publications')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_takedowns')),
    sa.UniqueConstraint('publication_id', name=op.f('uq_takedowns_publication_id'))
    )
    with op.batch_alter_table('takedowns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_takedowns_assignment_id'), ['assignment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_takedowns_partner_id'), ['partner_id'], unique=False)

    op.create_table('webhook_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('attempted_at', sa.DateTime(), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('latency_ms', sa.Integer(), nullable=True),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('response_excerpt', sa.String(length=1000), nullable=True),
    sa.ForeignKeyConstraint(['event_id'], ['webhook_events.id'], name=op.f('fk_webhook_attempts_event_id_webhook_events')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_attempts'))
    )
    with op.batch_alter_table('webhook_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_attempts_event_id'), ['event_id'], unique=False)

    with op.batch_alter_table('channels', schema=None) as batch_op:
        batch_op.add_column(sa.Column('follower_count', sa.BigInteger(), nullable=True))
        batch_op.drop_constraint(op.f('ck_channels_platform_known'), type_='check')
        batch_op.create_check_constraint('platform_known', sa.text(CHANNEL_PLATFORMS_NEW))
        batch_op.create_check_constraint('follower_count_nonnegative',
                                         sa.text('follower_count IS NULL OR follower_count >= 0'))

    with op.batch_alter_table('download_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('api_key_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('assignment_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_download_log_assignment_id'), ['assignment_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_download_log_assignment_id_assignments'), 'assignments', ['assignment_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_download_log_api_key_id_partner_api_keys'), 'partner_api_keys', ['api_key_id'], ['id'])

    with op.batch_alter_table('partner_api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('label', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('created_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('last_used_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('revoked_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('revoke_reason', sa.String(length=500), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_partner_api_keys_created_by_id_users'), 'users', ['created_by_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_partner_api_keys_revoked_by_id_users'), 'users', ['revoked_by_id'], ['id'])

    with op.batch_alter_table('partners', schema=None) as batch_op:
        batch_op.add_column(sa.Column('contact_name', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('contact_email', sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column('contact_phone', sa.String(length=40), nullable=True))

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('partner_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_users_partner_id'), ['partner_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_users_partner_id_partners'), 'partners', ['partner_id'], ['id'])

    _backfill_assignments(op.get_bind())


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_users_partner_id_partners'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_users_partner_id'))
        batch_op.drop_column('partner_id')

    with op.batch_alter_table('partners', schema=None) as batch_op:
        batch_op.drop_column('contact_phone')
        batch_op.drop_column('contact_email')
        batch_op.drop_column('contact_name')

    with op.batch_alter_table('partner_api_keys', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_partner_api_keys_revoked_by_id_users'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_partner_api_keys_created_by_id_users'), type_='foreignkey')
        batch_op.drop_column('revoke_reason')
        batch_op.drop_column('revoked_by_id')
        batch_op.drop_column('last_used_at')
        batch_op.drop_column('created_by_id')
        batch_op.drop_column('label')

    with op.batch_alter_table('download_log', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_download_log_api_key_id_partner_api_keys'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_download_log_assignment_id_assignments'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_download_log_assignment_id'))
        batch_op.drop_column('assignment_id')
        batch_op.drop_column('api_key_id')


    with op.batch_alter_table('channels', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_channels_follower_count_nonnegative'), type_='check')
        batch_op.drop_constraint(op.f('ck_channels_platform_known'), type_='check')
        batch_op.create_check_constraint('platform_known', sa.text(CHANNEL_PLATFORMS_OLD))
        batch_op.drop_column('follower_count')

    with op.batch_alter_table('webhook_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_attempts_event_id'))

    op.drop_table('webhook_attempts')
    with op.batch_alter_table('takedowns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_takedowns_partner_id'))
        batch_op.drop_index(batch_op.f('ix_takedowns_assignment_id'))

    op.drop_table('takedowns')
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_events_status_next')
        batch_op.drop_index(batch_op.f('ix_webhook_events_partner_id'))
        batch_op.drop_index(batch_op.f('ix_webhook_events_next_attempt_at'))
        batch_op.drop_index(batch_op.f('ix_webhook_events_assignment_id'))

    op.drop_table('webhook_events')
    with op.batch_alter_table('publications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_publications_partner_id'))
        batch_op.drop_index(batch_op.f('ix_publications_assignment_id'))

    op.drop_table('publications')
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_index('ix_assignments_partner_status_newest')
        batch_op.drop_index('ix_assignments_partner_newest')
        batch_op.drop_index(batch_op.f('ix_assignments_takedown_due_at'))
        batch_op.drop_index(batch_op.f('ix_assignments_package_id'))
        batch_op.drop_index(batch_op.f('ix_assignments_channel_id'))
        batch_op.drop_index(batch_op.f('ix_assignments_approval_id'))

    op.drop_table('assignments')
