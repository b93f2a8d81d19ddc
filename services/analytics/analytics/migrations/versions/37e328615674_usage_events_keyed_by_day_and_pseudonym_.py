"""usage events keyed by day and pseudonym, stored pseudonyms as 64-bit integers, released cells, noisy answers

Revision ID: 37e328615674
Revises: aeaf1df81094
Create Date: 2026-11-25 17:55:30.328818
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '37e328615674'
down_revision: str | None = 'aeaf1df81094'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000


def _stored(pseudonym_hex: str) -> int:
    # As analytics.service.stored_pseudonym (a migration does not import the code it migrates).
    return int(pseudonym_hex[:16], 16) - (1 << 63)


def _retire(table: str) -> str:
    """Rename a table out of the way, with its primary key's name on PostgreSQL (names are global)."""
    old = f"{table}_old"
    op.rename_table(table, old)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT {table}_pkey TO {old}_pkey")
    return old


def _copy(source: str, target: sa.Table, columns: list[str]) -> None:
    """Copy rows in batches (memory stays flat), the pseudonym column converted."""
    bind = op.get_bind()
    # Typed columns, so a day comes back as a date on SQLite too; the old pseudonym is text.
    old = sa.table(source, *[sa.column(c, sa.String() if c == 'pseudonym' else target.c[c].type) for c in columns])
    result = bind.execute(sa.select(*[old.c[c] for c in columns]).execution_options(yield_per=BATCH))
    for rows in result.partitions():
        values = [dict(zip(columns, row, strict=True)) for row in rows]
        for v in values:
            v['pseudonym'] = _stored(v['pseudonym'])
        bind.execute(target.insert(), values)


def upgrade() -> None:
    # Events and excluded pseudonyms move to tables keyed (and, on SQLite, stored) by day and
    # pseudonym, the pseudonym as its first 64 bits; un-rolled events are carried over.
    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.drop_index('ix_usage_events_day_pseudonym')
    old_events = _retire('usage_events')
    old_excluded = _retire('excluded_pseudonyms')
    events = op.create_table('usage_events',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('pseudonym', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('region', sa.String(length=8), nullable=False),
    sa.Column('feature', sa.String(length=100), nullable=False),
    sa.Column('product', sa.String(length=40), nullable=False),
    sa.Column('size_band', sa.String(length=10), nullable=False),
    sa.PrimaryKeyConstraint('day', 'pseudonym', 'id'),
    sqlite_with_rowid=False
    )
    excluded = op.create_table('excluded_pseudonyms',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('pseudonym', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint('day', 'pseudonym')
    )
    assert events is not None and excluded is not None
    _copy(old_events, events, ['day', 'pseudonym', 'id', 'region', 'feature', 'product', 'size_band'])
    _copy(old_excluded, excluded, ['day', 'pseudonym'])
    op.drop_table(old_events)
    op.drop_table(old_excluded)

    op.create_table('usage_released',
    sa.Column('feature', sa.String(length=100), nullable=False),
    sa.Column('region', sa.String(length=8), nullable=False),
    sa.Column('dimension', sa.String(length=20), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('value', sa.String(length=40), nullable=False),
    sa.Column('users', sa.Integer(), nullable=False),
    sa.Column('active', sa.Integer(), nullable=False),
    sa.Column('suppressed', sa.Boolean(), nullable=False),
    sa.Column('min_group_size', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('feature', 'region', 'dimension', 'day', 'value'),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('usage_released', schema=None) as batch_op:
        batch_op.create_index('ix_usage_released_day', ['day'], unique=False)
    # Days already rolled up are released by the service's roll-up job (release_stale_days).

    op.create_table('noisy_answers',
    sa.Column('analyst', sa.String(length=64), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('query', sa.String(length=64), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('analyst', 'request_id')
    )
    with op.batch_alter_table('noisy_answers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_noisy_answers_created'), ['created'], unique=False)


def downgrade() -> None:
    # A stored pseudonym cannot be turned back into its hex text: un-rolled events are dropped
    # (the day's counts can only be lower, never higher).
    with op.batch_alter_table('noisy_answers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_noisy_answers_created'))
    op.drop_table('noisy_answers')
    with op.batch_alter_table('usage_released', schema=None) as batch_op:
        batch_op.drop_index('ix_usage_released_day')
    op.drop_table('usage_released')
    op.drop_table('excluded_pseudonyms')
    op.drop_table('usage_events')
    op.create_table('usage_events',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('region', sa.String(length=8), nullable=False),
    sa.Column('feature', sa.String(length=100), nullable=False),
    sa.Column('pseudonym', sa.String(length=128), nullable=False),
    sa.Column('product', sa.String(length=40), nullable=False, server_default=''),
    sa.Column('size_band', sa.String(length=10), nullable=False, server_default=''),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('usage_events', schema=None) as batch_op:
        batch_op.create_index('ix_usage_events_day_pseudonym', ['day', 'pseudonym'], unique=False)
    op.create_table('excluded_pseudonyms',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('pseudonym', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('day', 'pseudonym')
    )
