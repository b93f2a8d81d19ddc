"""export parts in pieces: a service's answer is stored as the pieces it streamed (seq in the key)

Revision ID: c5e2a9d14f70
Revises: 9d41f6c2e8b3
Create Date: 2026-12-01 16:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c5e2a9d14f70'
down_revision: str | None = '9d41f6c2e8b3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _table(name: str, key: list[str]) -> None:
    op.create_table(name,
                    sa.Column('request_id', sa.String(length=32), nullable=False),
                    sa.Column('service', sa.String(length=20), nullable=False),
                    *([sa.Column('seq', sa.Integer(), nullable=False)] if 'seq' in key else []),
                    sa.Column('export', sa.LargeBinary(), nullable=False),
                    sa.Column('declarations', sa.LargeBinary(), nullable=False),
                    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint(*key))


def _swap(key: list[str], seq: str) -> None:
    # A new table, the rows copied, then renamed: the same on SQLite and PostgreSQL (the key changes).
    _table('export_parts_new', key)
    columns = 'request_id, service, export, declarations, created_at'
    op.execute(f"INSERT INTO export_parts_new ({columns}{', seq' if 'seq' in key else ''}) "
               f"SELECT {columns}{seq} FROM export_parts")
    op.drop_index('ix_export_parts_created', table_name='export_parts')
    op.drop_table('export_parts')
    op.rename_table('export_parts_new', 'export_parts')
    if op.get_bind().dialect.name == 'postgresql':  # the key keeps its usual name, for the next swap
        op.execute('ALTER TABLE export_parts RENAME CONSTRAINT export_parts_new_pkey TO export_parts_pkey')
    op.create_index('ix_export_parts_created', 'export_parts', ['created_at', 'request_id', 'service'])


def upgrade() -> None:
    # Parts stored whole so far become piece 0 of their service's answer (downloads keep working).
    _swap(['request_id', 'service', 'seq'], ', 0')


def downgrade() -> None:
    # Only answers stored in one piece can go back; the others' downloads are lost (never half kept).
    op.execute("DELETE FROM export_parts WHERE EXISTS (SELECT 1 FROM export_parts AS p WHERE p.seq > 0 "
               "AND p.request_id = export_parts.request_id AND p.service = export_parts.service)")
    _swap(['request_id', 'service'], '')
