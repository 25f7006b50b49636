"""Identity fit for signatures: role history and two-admin grants, TOTP, recovery codes,
forced password change, sign-in failures and usual addresses, the factor that signed an approval

Revision ID: 4d1e7a2c9b30
Revises: 7b1c0de5a9f2
Create Date: 2026-11-29 22:11:54.746938

"""
import sqlalchemy as sa
from alembic import op



# revision identifiers, used by Alembic.
revision = '4d1e7a2c9b30'
down_revision = '7b1c0de5a9f2'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('login_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email_hash', sa.String(length=64), nullable=False),
    sa.Column('address_hash', sa.String(length=64), nullable=False),
    sa.Column('address_shown', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures'))
    )
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.create_index('ix_login_failures_email_at', ['email_hash', 'at'], unique=False)

    op.create_table('recovery_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.Column('retired_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_recovery_codes_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_codes'))
    )
    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recovery_codes_user_id'), ['user_id'], unique=False)

    op.create_table('role_grant_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('requested_at', sa.DateTime(), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'confirmed', 'cancelled')", name=op.f('ck_role_grant_requests_status_known')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_role_grant_requests_decided_by_id_users')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'], name=op.f('fk_role_grant_requests_requested_by_id_users')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_role_grant_requests_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_role_grant_requests'))
    )
    with op.batch_alter_table('role_grant_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_role_grant_requests_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_role_grant_requests_user_id'), ['user_id'], unique=False)

    op.create_table('sign_in_addresses',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('address_hash', sa.String(length=64), nullable=False),
    sa.Column('first_seen_at', sa.DateTime(), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_sign_in_addresses_user_id_users')),
    sa.PrimaryKeyConstraint('user_id', 'address_hash', name=op.f('pk_sign_in_addresses'))
    )
    op.create_table('role_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('action', sa.String(length=10), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_label', sa.String(length=255), nullable=False),
    sa.Column('grant_request_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("action IN ('granted', 'revoked')", name=op.f('ck_role_events_action_known')),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_role_events_actor_id_users')),
    sa.ForeignKeyConstraint(['grant_request_id'], ['role_grant_requests.id'], name=op.f('fk_role_events_grant_request_id_role_grant_requests')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_role_events_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_role_events'))
    )
    with op.batch_alter_table('role_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_role_events_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('approvals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('signed_factor', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('signed_at', sa.DateTime(), nullable=True))

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('must_change_password', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('totp_secret_enc', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('totp_enabled_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))



def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('totp_last_step')
        batch_op.drop_column('totp_enabled_at')
        batch_op.drop_column('totp_secret_enc')
        batch_op.drop_column('must_change_password')

    with op.batch_alter_table('approvals', schema=None) as batch_op:
        batch_op.drop_column('signed_at')
        batch_op.drop_column('signed_factor')

    with op.batch_alter_table('role_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_role_events_user_id'))

    op.drop_table('role_events')
    op.drop_table('sign_in_addresses')
    with op.batch_alter_table('role_grant_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_role_grant_requests_user_id'))
        batch_op.drop_index(batch_op.f('ix_role_grant_requests_status'))

    op.drop_table('role_grant_requests')
    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recovery_codes_user_id'))

    op.drop_table('recovery_codes')
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.drop_index('ix_login_failures_email_at')

    op.drop_table('login_failures')
