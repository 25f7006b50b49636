"""Scripts and revisions, packages, reviews and approvals, lexicon, videos, partners and channels

Revision ID: 6a13a480486c
Revises: 2ef12052f7db
Create Date: 2026-11-25 19:33:15.951439

"""
import sqlalchemy as sa
from alembic import op



# revision identifiers, used by Alembic.
revision = '6a13a480486c'
down_revision = '2ef12052f7db'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('lexicon_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('phrase', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('severity', sa.String(length=8), nullable=False),
    sa.Column('category', sa.String(length=40), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('platforms', sa.JSON(), nullable=False),
    sa.Column('group', sa.String(length=60), nullable=False),
    sa.Column('added_in', sa.Integer(), nullable=False),
    sa.Column('removed_in', sa.Integer(), nullable=True),
    sa.CheckConstraint("kind IN ('forbidden', 'required', 'allow')", name=op.f('ck_lexicon_rules_kind_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lexicon_rules'))
    )
    with op.batch_alter_table('lexicon_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lexicon_rules_added_in'), ['added_in'], unique=False)
        batch_op.create_index(batch_op.f('ix_lexicon_rules_removed_in'), ['removed_in'], unique=False)

    op.create_table('partners',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('webhook_url', sa.String(length=500), nullable=True),
    sa.Column('webhook_secret', sa.String(length=128), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partners')),
    sa.UniqueConstraint('name', name=op.f('uq_partners_name'))
    )
    op.create_table('scans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject_type', sa.String(length=32), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('lexicon_version', sa.Integer(), nullable=False),
    sa.Column('platform', sa.String(length=32), nullable=True),
    sa.Column('text_sha256', sa.String(length=64), nullable=False),
    sa.Column('blocking', sa.Boolean(), nullable=False),
    sa.Column('findings', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scans'))
    )
    with op.batch_alter_table('scans', schema=None) as batch_op:
        batch_op.create_index('ix_scans_subject', ['subject_type', 'subject_id'], unique=False)

    op.create_table('channels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=False),
    sa.Column('platform', sa.String(length=32), nullable=False),
    sa.Column('handle', sa.String(length=120), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("platform IN ('douyin', 'kuaishou', 'bilibili', 'wechat_channels', 'xiaohongshu')", name=op.f('ck_channels_platform_known')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_channels_partner_id_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_channels')),
    sa.UniqueConstraint('platform', 'handle', name='uq_channels_platform_handle')
    )
    with op.batch_alter_table('channels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_channels_partner_id'), ['partner_id'], unique=False)

    op.create_table('lexicon_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('entry_count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_lexicon_versions_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lexicon_versions')),
    sa.UniqueConstraint('number', name=op.f('uq_lexicon_versions_number'))
    )
    op.create_table('partner_api_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_partner_api_keys_partner_id_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_partner_api_keys_key_hash'))
    )
    with op.batch_alter_table('partner_api_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_partner_api_keys_partner_id'), ['partner_id'], unique=False)

    op.create_table('scripts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('caption', sa.Text(), nullable=False),
    sa.Column('hashtags', sa.JSON(), nullable=False),
    sa.Column('platforms', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('latest_revision_id', sa.Integer(), nullable=True),
    sa.Column('approved_revision_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("status IN ('draft', 'submitted', 'changes_requested', 'approved', 'rejected', 'archived')", name=op.f('ck_scripts_status_known')),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_scripts_author_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scripts'))
    )
    with op.batch_alter_table('scripts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scripts_author_id'), ['author_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_scripts_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_scripts_updated_at'), ['updated_at'], unique=False)

    op.create_table('script_revisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('script_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('caption', sa.Text(), nullable=False),
    sa.Column('hashtags', sa.JSON(), nullable=False),
    sa.Column('platforms', sa.JSON(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('scan_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_script_revisions_created_by_id_users')),
    sa.ForeignKeyConstraint(['scan_id'], ['scans.id'], name=op.f('fk_script_revisions_scan_id_scans')),
    sa.ForeignKeyConstraint(['script_id'], ['scripts.id'], name=op.f('fk_script_revisions_script_id_scripts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_script_revisions')),
    sa.UniqueConstraint('script_id', 'number', name='uq_script_revisions_script_number')
    )
    with op.batch_alter_table('script_revisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_script_revisions_script_id'), ['script_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_script_revisions_sha256'), ['sha256'], unique=False)

    op.create_table('packages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('script_id', sa.Integer(), nullable=False),
    sa.Column('script_revision_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('caption', sa.Text(), nullable=False),
    sa.Column('hashtags', sa.JSON(), nullable=False),
    sa.Column('subtitles_srt', sa.Text(), nullable=True),
    sa.Column('subtitles_sha256', sa.String(length=64), nullable=True),
    sa.Column('cover_time_s', sa.Float(), nullable=False),
    sa.Column('title_card', sa.Boolean(), nullable=False),
    sa.Column('rendition_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("status IN ('draft', 'submitted', 'changes_requested', 'approved', 'rejected', 'withdrawn', 'expired', 'archived')", name=op.f('ck_packages_status_known')),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_packages_author_id_users')),
    sa.ForeignKeyConstraint(['script_id'], ['scripts.id'], name=op.f('fk_packages_script_id_scripts')),
    sa.ForeignKeyConstraint(['script_revision_id'], ['script_revisions.id'], name=op.f('fk_packages_script_revision_id_script_revisions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_packages'))
    )
    with op.batch_alter_table('packages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_packages_author_id'), ['author_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_packages_script_id'), ['script_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_packages_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_packages_updated_at'), ['updated_at'], unique=False)

    op.create_table('package_channels',
    sa.Column('package_id', sa.Integer(), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], name=op.f('fk_package_channels_channel_id_channels')),
    sa.ForeignKeyConstraint(['package_id'], ['packages.id'], name=op.f('fk_package_channels_package_id_packages')),
    sa.PrimaryKeyConstraint('package_id', 'channel_id', name=op.f('pk_package_channels'))
    )
    op.create_table('reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('script_id', sa.Integer(), nullable=False),
    sa.Column('script_revision_id', sa.Integer(), nullable=False),
    sa.Column('package_id', sa.Integer(), nullable=True),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('submitted_at', sa.DateTime(), nullable=False),
    sa.Column('due_at', sa.DateTime(), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('manifest', sa.JSON(), nullable=False),
    sa.Column('manifest_sha256', sa.String(length=64), nullable=False),
    sa.Column('scan_id', sa.Integer(), nullable=True),
    sa.Column('claimed_by_id', sa.Integer(), nullable=True),
    sa.Column('claimed_until', sa.DateTime(), nullable=True),
    sa.Column('claimed_manifest_sha256', sa.String(length=64), nullable=True),
    sa.Column('decision', sa.String(length=20), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('superseded_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("stage IN ('script', 'package')", name=op.f('ck_reviews_stage_known')),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_reviews_author_id_users')),
    sa.ForeignKeyConstraint(['claimed_by_id'], ['users.id'], name=op.f('fk_reviews_claimed_by_id_users')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_reviews_decided_by_id_users')),
    sa.ForeignKeyConstraint(['package_id'], ['packages.id'], name=op.f('fk_reviews_package_id_packages')),
    sa.ForeignKeyConstraint(['scan_id'], ['scans.id'], name=op.f('fk_reviews_scan_id_scans')),
    sa.ForeignKeyConstraint(['script_id'], ['scripts.id'], name=op.f('fk_reviews_script_id_scripts')),
    sa.ForeignKeyConstraint(['script_revision_id'], ['script_revisions.id'], name=op.f('fk_reviews_script_revision_id_script_revisions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reviews'))
    )
    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reviews_author_id'), ['author_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reviews_decision'), ['decision'], unique=False)
        batch_op.create_index(batch_op.f('ix_reviews_due_at'), ['due_at'], unique=False)
        batch_op.create_index('ix_reviews_open', ['decision', 'superseded_at', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_reviews_package_id'), ['package_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reviews_script_id'), ['script_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reviews_stage'), ['stage'], unique=False)
        batch_op.create_index(batch_op.f('ix_reviews_submitted_at'), ['submitted_at'], unique=False)

    op.create_table('source_videos',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('package_id', sa.Integer(), nullable=False),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=False),
    sa.Column('storage_key', sa.String(length=255), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('original_name', sa.String(length=255), nullable=False),
    sa.Column('probe', sa.JSON(), nullable=False),
    sa.Column('duration_s', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['package_id'], ['packages.id'], name=op.f('fk_source_videos_package_id_packages')),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['users.id'], name=op.f('fk_source_videos_uploaded_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_source_videos')),
    sa.UniqueConstraint('storage_key', name=op.f('uq_source_videos_storage_key'))
    )
    with op.batch_alter_table('source_videos', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_source_videos_package_id'), ['package_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_source_videos_sha256'), ['sha256'], unique=False)

    op.create_table('approvals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('review_id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('script_revision_id', sa.Integer(), nullable=False),
    sa.Column('package_id', sa.Integer(), nullable=True),
    sa.Column('manifest', sa.JSON(), nullable=False),
    sa.Column('manifest_sha256', sa.String(length=64), nullable=False),
    sa.Column('approved_by_id', sa.Integer(), nullable=False),
    sa.Column('approved_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.Column('voided_at', sa.DateTime(), nullable=True),
    sa.Column('void_reason', sa.String(length=500), nullable=True),
    sa.Column('flagged_at', sa.DateTime(), nullable=True),
    sa.Column('flag_scan_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['approved_by_id'], ['users.id'], name=op.f('fk_approvals_approved_by_id_users')),
    sa.ForeignKeyConstraint(['flag_scan_id'], ['scans.id'], name=op.f('fk_approvals_flag_scan_id_scans')),
    sa.ForeignKeyConstraint(['package_id'], ['packages.id'], name=op.f('fk_approvals_package_id_packages')),
    sa.ForeignKeyConstraint(['review_id'], ['reviews.id'], name=op.f('fk_approvals_review_id_reviews')),
    sa.ForeignKeyConstraint(['script_revision_id'], ['script_revisions.id'], name=op.f('fk_approvals_script_revision_id_script_revisions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_approvals')),
    sa.UniqueConstraint('review_id', name=op.f('uq_approvals_review_id'))
    )
    with op.batch_alter_table('approvals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_approvals_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_approvals_manifest_sha256'), ['manifest_sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_approvals_package_id'), ['package_id'], unique=False)

    op.create_table('renditions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('package_id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('recipe', sa.JSON(), nullable=False),
    sa.Column('recipe_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('progress', sa.Float(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.String(length=64), nullable=True),
    sa.Column('storage_key', sa.String(length=255), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('size_bytes', sa.BigInteger(), nullable=True),
    sa.Column('duration_s', sa.Float(), nullable=True),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('cover_key', sa.String(length=255), nullable=True),
    sa.Column('cover_sha256', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'running', 'ready', 'failed')", name=op.f('ck_renditions_status_known')),
    sa.ForeignKeyConstraint(['package_id'], ['packages.id'], name=op.f('fk_renditions_package_id_packages')),
    sa.ForeignKeyConstraint(['source_id'], ['source_videos.id'], name=op.f('fk_renditions_source_id_source_videos')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_renditions'))
    )
    with op.batch_alter_table('renditions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_renditions_package_id'), ['package_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_renditions_recipe_hash'), ['recipe_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_renditions_source_id'), ['source_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_renditions_status'), ['status'], unique=False)

    op.create_table('review_comments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('review_id', sa.Integer(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('anchor_field', sa.String(length=20), nullable=True),
    sa.Column('anchor_start', sa.Integer(), nullable=True),
    sa.Column('anchor_end', sa.Integer(), nullable=True),
    sa.Column('anchor_text', sa.Text(), nullable=True),
    sa.Column('timecode_ms', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_review_comments_author_id_users')),
    sa.ForeignKeyConstraint(['parent_id'], ['review_comments.id'], name=op.f('fk_review_comments_parent_id_review_comments')),
    sa.ForeignKeyConstraint(['review_id'], ['reviews.id'], name=op.f('fk_review_comments_review_id_reviews')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_comments'))
    )
    with op.batch_alter_table('review_comments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_comments_review_id'), ['review_id'], unique=False)


    # Foreign keys between tables that reference each other are added once both exist.
    with op.batch_alter_table('scripts', schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f('fk_scripts_approved_revision_id_script_revisions'), 'script_revisions', ['approved_revision_id'], ['id'])
    with op.batch_alter_table('scripts', schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f('fk_scripts_latest_revision_id_script_revisions'), 'script_revisions', ['latest_revision_id'], ['id'])
    with op.batch_alter_table('packages', schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f('fk_packages_rendition_id_renditions'), 'renditions', ['rendition_id'], ['id'])


def downgrade():
    with op.batch_alter_table('scripts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_scripts_approved_revision_id_script_revisions'), type_='foreignkey')
    with op.batch_alter_table('scripts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_scripts_latest_revision_id_script_revisions'), type_='foreignkey')
    with op.batch_alter_table('packages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_packages_rendition_id_renditions'), type_='foreignkey')
    with op.batch_alter_table('review_comments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_comments_review_id'))

    op.drop_table('review_comments')
    with op.batch_alter_table('renditions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_renditions_status'))
        batch_op.drop_index(batch_op.f('ix_renditions_source_id'))
        batch_op.drop_index(batch_op.f('ix_renditions_recipe_hash'))
        batch_op.drop_index(batch_op.f('ix_renditions_package_id'))

    op.drop_table('renditions')
    with op.batch_alter_table('approvals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_approvals_package_id'))
        batch_op.drop_index(batch_op.f('ix_approvals_manifest_sha256'))
        batch_op.drop_index(batch_op.f('ix_approvals_expires_at'))

    op.drop_table('approvals')
    with op.batch_alter_table('source_videos', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_source_videos_sha256'))
        batch_op.drop_index(batch_op.f('ix_source_videos_package_id'))

    op.drop_table('source_videos')
    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reviews_submitted_at'))
        batch_op.drop_index(batch_op.f('ix_reviews_stage'))
        batch_op.drop_index(batch_op.f('ix_reviews_script_id'))
        batch_op.drop_index(batch_op.f('ix_reviews_package_id'))
        batch_op.drop_index('ix_reviews_open')
        batch_op.drop_index(batch_op.f('ix_reviews_due_at'))
        batch_op.drop_index(batch_op.f('ix_reviews_decision'))
        batch_op.drop_index(batch_op.f('ix_reviews_author_id'))

    op.drop_table('reviews')
    op.drop_table('package_channels')
    with op.batch_alter_table('packages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_packages_updated_at'))
        batch_op.drop_index(batch_op.f('ix_packages_status'))
        batch_op.drop_index(batch_op.f('ix_packages_script_id'))
        batch_op.drop_index(batch_op.f('ix_packages_author_id'))

    op.drop_table('packages')
    with op.batch_alter_table('script_revisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_script_revisions_sha256'))
        batch_op.drop_index(batch_op.f('ix_script_revisions_script_id'))

    op.drop_table('script_revisions')
    with op.batch_alter_table('scripts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scripts_updated_at'))
        batch_op.drop_index(batch_op.f('ix_scripts_status'))
        batch_op.drop_index(batch_op.f('ix_scripts_author_id'))

    op.drop_table('scripts')
    with op.batch_alter_table('partner_api_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_partner_api_keys_partner_id'))

    op.drop_table('partner_api_keys')
    op.drop_table('lexicon_versions')
    with op.batch_alter_table('channels', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_channels_partner_id'))

    op.drop_table('channels')
    with op.batch_alter_table('scans', schema=None) as batch_op:
        batch_op.drop_index('ix_scans_subject')

    op.drop_table('scans')
    op.drop_table('partners')
    with op.batch_alter_table('lexicon_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lexicon_rules_removed_in'))
        batch_op.drop_index(batch_op.f('ix_lexicon_rules_added_in'))

    op.drop_table('lexicon_rules')
