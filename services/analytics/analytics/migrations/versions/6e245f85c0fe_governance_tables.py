"""governance tables

servicekit's governance tables: audit_log and transfer_log append-only (triggers), chain_heads,
legal_holds, purge_runs.

Revision ID: 6e245f85c0fe
Revises: 37e328615674
Create Date: 2026-12-01 13:21:08.681024
"""

from collections.abc import Sequence

from alembic import op
from servicekit import governance_schema


revision: str = '6e245f85c0fe'
down_revision: str | None = '37e328615674'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    governance_schema.create_v1(op)


def downgrade() -> None:
    governance_schema.drop_v1(op)
