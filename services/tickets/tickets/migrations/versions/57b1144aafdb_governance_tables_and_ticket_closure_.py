"""governance tables and the retention index on closure time

Revision ID: 57b1144aafdb
Revises: 7a01dcaa6f7b
Create Date: 2026-11-25 17:24:15.929983

The governance tables of servicekit (audit_log and transfer_log append-only, with triggers;
chain_heads, legal_holds, purge_runs) and an index on (closed_at, id) for the retention purge.
"""

from collections.abc import Sequence

from alembic import op
from servicekit import governance_schema


revision: str = '57b1144aafdb'
down_revision: str | None = '7a01dcaa6f7b'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    governance_schema.create_v1(op)
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index('ix_tickets_closed_at', ['closed_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_closed_at')
    governance_schema.drop_v1(op)
