"""governance tables and legal holds

Revision ID: 849e4334d3ab
Revises: 55b5914525ce
Create Date: 2026-11-25 17:25:33.969001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from servicekit import governance_schema


revision: str = '849e4334d3ab'
down_revision: str | None = '55b5914525ce'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The shared governance tables (audit_log and transfer_log append-only), then rights' own,
    # extended legal_holds: rights is the owner of holds (ARCHITECTURE.md).
    governance_schema.create_v1(op, holds=False)
    op.create_table('legal_holds', *governance_schema.hold_columns(),
                    sa.Column('note', sa.Text(), nullable=False),
                    sa.Column('placed_by', sa.String(length=64), nullable=False),
                    sa.Column('released_by', sa.String(length=64), nullable=False),
                    sa.PrimaryKeyConstraint('hold_id'))
    op.create_index('ix_legal_holds_target', 'legal_holds', ['target_id', 'scope'])
    with op.batch_alter_table('rights_requests', schema=None) as batch_op:
        batch_op.create_index('ix_rights_requests_completed', ['completed_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('rights_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_rights_requests_completed')
    op.drop_table('legal_holds')
    governance_schema.drop_v1(op, holds=False)
