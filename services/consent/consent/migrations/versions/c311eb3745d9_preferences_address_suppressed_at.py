"""preferences address_suppressed_at

Revision ID: c311eb3745d9
Revises: 575fbc155f3f
Create Date: 2026-12-01 13:49:00.247367

When one of the subject's addresses went on the suppression list, so CanContact refuses marketing
under an older consent without knowing the address. Existing rows start empty (the hashes cannot be
taken here); an objection already blocks through objected_at, and the sender checks the list at send time.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'c311eb3745d9'
down_revision: str | None = '575fbc155f3f'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('preferences', schema=None) as batch_op:
        batch_op.add_column(sa.Column('address_suppressed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('preferences', schema=None) as batch_op:
        batch_op.drop_column('address_suppressed_at')
