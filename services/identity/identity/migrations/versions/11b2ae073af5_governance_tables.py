"""governance tables

servicekit's governance tables: audit_log and transfer_log append-only (triggers), chain_heads,
legal_holds, purge_runs.

Revision ID: 11b2ae073af5
Revises: a188935d2d77
Create Date: 2026-11-25 18:33:42.082237
"""

from collections.abc import Sequence

from alembic import op
from servicekit import governance_schema


revision: str = '11b2ae073af5'
down_revision: str | None = 'a188935d2d77'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    governance_schema.create_v1(op)


def downgrade() -> None:
    governance_schema.drop_v1(op)
