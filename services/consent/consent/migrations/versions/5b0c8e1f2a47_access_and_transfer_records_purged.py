"""access and transfer records purged after 6 years

The append-only triggers of audit_log and transfer_log now let the retention purge remove a chain's
oldest rows: a DELETE passes only for a row at or below the chain's anchor (written by the purge)
and older than 6 years by the database's clock (servicekit/rotation.py).
Revision ID: 5b0c8e1f2a47
Revises: 81580da68943
Create Date: 2026-12-01 14:10:00.000000
"""

from collections.abc import Sequence

from alembic import op
from servicekit import rotation


revision: str = '5b0c8e1f2a47'
down_revision: str | None = '81580da68943'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    rotation.upgrade(op)


def downgrade() -> None:
    rotation.downgrade(op)
