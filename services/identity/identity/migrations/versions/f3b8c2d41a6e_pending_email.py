"""pending e-mail address

Revision ID: f3b8c2d41a6e
Revises: d5a1c3e9b7f2
Create Date: 2026-12-01 16:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'f3b8c2d41a6e'
down_revision: str | None = 'd5a1c3e9b7f2'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pending_email', sa.String(length=320), server_default='', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('pending_email')
