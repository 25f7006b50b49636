"""Integrity: alerts, re-verification runs, verified-file fingerprints and the download log

Revision ID: 7b1c0de5a9f2
Revises: 9334bc893edd
Create Date: 2026-11-29 22:13:52.140709

"""
import sqlalchemy as sa
from alembic import op



# revision identifiers, used by Alembic.
revision = '7b1c0de5a9f2'
down_revision = '9334bc893edd'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('verified_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('storage_key', sa.String(length=255), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('fingerprint', sa.String(length=255), nullable=False),
    sa.Column('verified_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_verified_files')),
    sa.UniqueConstraint('storage_key', name=op.f('uq_verified_files_storage_key'))
    )
    op.create_table('integrity_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('checked', sa.Integer(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'running', 'finished', 'failed')", name=op.f('ck_integrity_runs_status_known')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'], name=op.f('fk_integrity_runs_requested_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_integrity_runs'))
    )
    with op.batch_alter_table('integrity_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_integrity_runs_created_at'), ['created_at'], unique=False)

    op.create_table('download_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('partner_id', sa.Integer(), nullable=True),
    sa.Column('rendition_id', sa.Integer(), nullable=True),
    sa.Column('file_kind', sa.String(length=16), nullable=True),
    sa.Column('via', sa.String(length=16), nullable=False),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('range_start', sa.BigInteger(), nullable=True),
    sa.Column('range_end', sa.BigInteger(), nullable=True),
    sa.Column('bytes_sent', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('ip_prefix', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_download_log_partner_id_partners')),
    sa.ForeignKeyConstraint(['rendition_id'], ['renditions.id'], name=op.f('fk_download_log_rendition_id_renditions')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_download_log_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_download_log'))
    )
    with op.batch_alter_table('download_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_download_log_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_download_log_partner_id'), ['partner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_download_log_rendition_id'), ['rendition_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_download_log_user_id'), ['user_id'], unique=False)

    op.create_table('integrity_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('storage_key', sa.String(length=255), nullable=False),
    sa.Column('file_kind', sa.String(length=16), nullable=False),
    sa.Column('rendition_id', sa.Integer(), nullable=True),
    sa.Column('package_id', sa.Integer(), nullable=True),
    sa.Column('expected_sha256', sa.String(length=64), nullable=False),
    sa.Column('actual_sha256', sa.String(length=64), nullable=True),
    sa.Column('detected_by', sa.String(length=16), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('detected_at', sa.DateTime(), nullable=False),
    sa.Column('approval_suspended', sa.Boolean(), nullable=False),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.Column('resolved_by_id', sa.Integer(), nullable=True),
    sa.Column('resolution', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['package_id'], ['packages.id'], name=op.f('fk_integrity_alerts_package_id_packages')),
    sa.ForeignKeyConstraint(['rendition_id'], ['renditions.id'], name=op.f('fk_integrity_alerts_rendition_id_renditions')),
    sa.ForeignKeyConstraint(['resolved_by_id'], ['users.id'], name=op.f('fk_integrity_alerts_resolved_by_id_users')),
    sa.ForeignKeyConstraint(['run_id'], ['integrity_runs.id'], name=op.f('fk_integrity_alerts_run_id_integrity_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_integrity_alerts'))
    )
    with op.batch_alter_table('integrity_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_integrity_alerts_detected_at'), ['detected_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_integrity_alerts_package_id'), ['package_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_integrity_alerts_rendition_id'), ['rendition_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_integrity_alerts_storage_key'), ['storage_key'], unique=False)



def downgrade():
    with op.batch_alter_table('integrity_alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_integrity_alerts_storage_key'))
        batch_op.drop_index(batch_op.f('ix_integrity_alerts_rendition_id'))
        batch_op.drop_index(batch_op.f('ix_integrity_alerts_package_id'))
        batch_op.drop_index(batch_op.f('ix_integrity_alerts_detected_at'))

    op.drop_table('integrity_alerts')
    with op.batch_alter_table('download_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_download_log_user_id'))
        batch_op.drop_index(batch_op.f('ix_download_log_rendition_id'))
        batch_op.drop_index(batch_op.f('ix_download_log_partner_id'))
        batch_op.drop_index(batch_op.f('ix_download_log_at'))

    op.drop_table('download_log')
    with op.batch_alter_table('integrity_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_integrity_runs_created_at'))

    op.drop_table('integrity_runs')
    op.drop_table('verified_files')
