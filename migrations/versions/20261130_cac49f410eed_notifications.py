"""Notifications (the bell and its page, optional e-mail) and each user's e-mail preference.

A partial index holds only unread rows (the bell counts them on every page); another lets the
database refuse a second "review due soon" row of one recipient and review.

Self-contained (no application imports).

Revision ID: cac49f410eed
Revises: b5d91e3c7a20
Create Date: 2026-11-30 08:36:37.065358

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'cac49f410eed'
down_revision = 'b5d91e3c7a20'
branch_labels = None
depends_on = None

UNREAD = sa.text('read_at IS NULL')
DUE_SOON = sa.text("kind = 'review_due_soon'")


def upgrade():
    op.create_table('notification_settings',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('email_enabled', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notification_settings_user_id_users')),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_notification_settings'))
    )
    op.create_table('notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recipient_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('object_type', sa.String(length=20), nullable=False),
    sa.Column('object_id', sa.Integer(), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('read_at', sa.DateTime(), nullable=True),
    sa.Column('emailed_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("object_type IN ('script', 'package', 'review')",
                       name=op.f('ck_notifications_object_type_known')),
    sa.ForeignKeyConstraint(['recipient_id'], ['users.id'], name=op.f('fk_notifications_recipient_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_object', ['object_type', 'object_id', 'kind'], unique=False)
        batch_op.create_index('ix_notifications_recipient_list', ['recipient_id', 'id'], unique=False)
        batch_op.create_index('ix_notifications_unread', ['recipient_id'], unique=False,
                              sqlite_where=UNREAD, postgresql_where=UNREAD)
        batch_op.create_index('uq_notifications_due_soon_once', ['recipient_id', 'object_id'], unique=True,
                              sqlite_where=DUE_SOON, postgresql_where=DUE_SOON)


def downgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('uq_notifications_due_soon_once')
        batch_op.drop_index('ix_notifications_unread')
        batch_op.drop_index('ix_notifications_recipient_list')
        batch_op.drop_index('ix_notifications_object')

    op.drop_table('notifications')
    op.drop_table('notification_settings')
