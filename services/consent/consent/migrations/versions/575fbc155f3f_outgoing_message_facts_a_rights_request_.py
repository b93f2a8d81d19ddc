"""outgoing message facts (a rights request's kind and due date)

Revision ID: 575fbc155f3f
Revises: e3c977e1cd03
Create Date: 2026-12-01 13:41:37.311955

Messages about a rights request state its kind and, for an extension, the new due date: kinds
and dates only, as JSON. Existing rows get "" (nothing more to state).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '575fbc155f3f'
down_revision: str | None = 'e3c977e1cd03'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outgoing_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('facts', sa.String(length=200), server_default='', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('outgoing_messages', schema=None) as batch_op:
        batch_op.drop_column('facts')
