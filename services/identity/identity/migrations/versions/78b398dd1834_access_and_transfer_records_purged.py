"""access and transfer records purged after 6 years

The append-only triggers of audit_log and transfer_log now let the retention purge remove a chain's
oldest rows: a DELETE passes only for a row at or below the chain's anchor (written by the purge)
and older than 6 years by the database's clock (servicekit/rotation.py).
organisation_audit (not chained) likewise lets a DELETE through only for a row older than 6 years
by the database's clock; every other UPDATE, DELETE or TRUNCATE is still refused.

Revision ID: 78b398dd1834
Revises: 11b2ae073af5
Create Date: 2026-12-01 14:00:00.000000
"""

from collections.abc import Sequence

from alembic import op
from servicekit import append_only, rotation


revision: str = '78b398dd1834'
down_revision: str | None = '11b2ae073af5'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    rotation.upgrade(op)
    conn = op.get_bind()
    append_only.uninstall(conn, "organisation_audit")
    append_only.install(conn, "organisation_audit", rotation.older_than(conn.dialect.name))


def downgrade() -> None:
    rotation.downgrade(op)
    conn = op.get_bind()
    append_only.uninstall(conn, "organisation_audit")
    append_only.install(conn, "organisation_audit")
