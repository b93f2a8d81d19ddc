"""organisation size band

Revision ID: d5a1c3e9b7f2
Revises: 78b398dd1834
Create Date: 2026-12-01 14:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'd5a1c3e9b7f2'
down_revision: str | None = '78b398dd1834'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('size_band', sa.String(length=8), server_default='', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.drop_column('size_band')
