"""campaign idempotency key, notice recipients

Revision ID: 81580da68943
Revises: c311eb3745d9
Create Date: 2026-12-01 13:51:04.244216

A campaign remembers the caller's idempotency key (one campaign per admin and key), and a notice
version how many customers it was queued for, so that a retried request answers the first one.
Existing versions count their notice_change messages still kept.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '81580da68943'
down_revision: str | None = 'c311eb3745d9'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('request_key', sa.String(length=100), nullable=True))
        batch_op.create_index('ix_campaigns_request_key', ['created_by', 'request_key'], unique=True)

    with op.batch_alter_table('notice_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recipients', sa.Integer(), server_default='0', nullable=False))
    op.execute("UPDATE notice_versions SET recipients = (SELECT count(*) FROM outgoing_messages "
               "WHERE outgoing_messages.kind = 'notice_change' AND outgoing_messages.ref = notice_versions.version)")


def downgrade() -> None:
    with op.batch_alter_table('notice_versions', schema=None) as batch_op:
        batch_op.drop_column('recipients')

    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_index('ix_campaigns_request_key')
        batch_op.drop_column('request_key')
