"""Integrity under races: version columns on scripts and packages, one open review per subject,
one unvoided package approval per package

Revision ID: 7c1d2e3f4a5b
Revises: 4d1e7a2c9b30
Create Date: 2026-11-29 22:13:55.895315

"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '7c1d2e3f4a5b'
down_revision = "4d1e7a2c9b30"
branch_labels = None
depends_on = None

OPEN_PACKAGE_REVIEW = "stage = 'package' AND decision IS NULL AND superseded_at IS NULL"
OPEN_SCRIPT_REVIEW = "stage = 'script' AND decision IS NULL AND superseded_at IS NULL"
UNVOIDED_PACKAGE_APPROVAL = "stage = 'package' AND voided_at IS NULL"


def _close_duplicates(bind) -> None:
    # Races before this revision could leave duplicates the new unique indexes refuse: keep the
    # newest open review / unvoided approval of each subject and close the older ones (no row is
    # deleted; the reason says why).
    now = datetime.now(UTC).replace(tzinfo=None)
    for stage, subject in (("package", "package_id"), ("script", "script_id")):
        bind.execute(sa.text(
            f"UPDATE reviews SET superseded_at = :now WHERE stage = :stage AND decision IS NULL "
            f"AND superseded_at IS NULL AND id < (SELECT MAX(r2.id) FROM reviews r2 "
            f"WHERE r2.{subject} = reviews.{subject} AND r2.stage = :stage AND r2.decision IS NULL "
            f"AND r2.superseded_at IS NULL)"), {"now": now, "stage": stage})
    bind.execute(sa.text(
        f"UPDATE approvals SET voided_at = :now, void_reason = :reason WHERE {UNVOIDED_PACKAGE_APPROVAL} AND id < "
        "(SELECT MAX(a2.id) FROM approvals a2 WHERE a2.package_id = approvals.package_id "
        "AND a2.stage = 'package' AND a2.voided_at IS NULL)"),
        {"now": now, "reason": "superseded by a newer approval (duplicate closed by migration 7c1d2e3f4a5b)"})


def upgrade():
    with op.batch_alter_table('packages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=False))

    with op.batch_alter_table('scripts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=False))

    _close_duplicates(op.get_bind())

    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.create_index('uq_reviews_one_open_per_package', ['package_id'], unique=True,
                              sqlite_where=sa.text(OPEN_PACKAGE_REVIEW), postgresql_where=sa.text(OPEN_PACKAGE_REVIEW))
        batch_op.create_index('uq_reviews_one_open_per_script', ['script_id'], unique=True,
                              sqlite_where=sa.text(OPEN_SCRIPT_REVIEW), postgresql_where=sa.text(OPEN_SCRIPT_REVIEW))

    with op.batch_alter_table('approvals', schema=None) as batch_op:
        batch_op.create_index('uq_approvals_one_unvoided_per_package', ['package_id'], unique=True,
                              sqlite_where=sa.text(UNVOIDED_PACKAGE_APPROVAL),
                              postgresql_where=sa.text(UNVOIDED_PACKAGE_APPROVAL))


def downgrade():
    with op.batch_alter_table('approvals', schema=None) as batch_op:
        batch_op.drop_index('uq_approvals_one_unvoided_per_package')

    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.drop_index('uq_reviews_one_open_per_script')
        batch_op.drop_index('uq_reviews_one_open_per_package')

    with op.batch_alter_table('scripts', schema=None) as batch_op:
        batch_op.drop_column('version')

    with op.batch_alter_table('packages', schema=None) as batch_op:
        batch_op.drop_column('version')
