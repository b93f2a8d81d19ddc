"""search rowids on sqlite

Revision ID: f97fa65607a1
Revises: 57b1144aafdb
Create Date: 2026-11-25 18:31:00.000000

SQLite only: `ticket_search_rows` keeps each ticket's FTS5 rowid, so a ticket's search row is removed
by rowid (fast) instead of by its UNINDEXED ticket_id (a scan of the whole index) — what erasure and
the retention purge of many tickets need. PostgreSQL's ticket_search is keyed by ticket_id already.
"""

from collections.abc import Sequence

from alembic import op


revision: str = 'f97fa65607a1'
down_revision: str | None = '57b1144aafdb'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        return
    op.execute("CREATE TABLE ticket_search_rows (ticket_id VARCHAR(32) NOT NULL PRIMARY KEY, "
               "fts_rowid INTEGER NOT NULL)")
    op.execute("INSERT INTO ticket_search_rows (ticket_id, fts_rowid) SELECT ticket_id, rowid FROM ticket_search")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        return
    op.execute("DROP TABLE ticket_search_rows")
