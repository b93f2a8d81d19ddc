"""request orchestration: steps, export parts, the erasure ledger, DPO decisions on requests

Revision ID: a7c31e90d2b4
Revises: 849e4334d3ab
Create Date: 2026-12-01 14:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'a7c31e90d2b4'
down_revision: str | None = '849e4334d3ab'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing rows get empty values; new rows are written with all of them.
    with op.batch_alter_table('rights_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purpose', sa.String(length=20), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('corrections', sa.Text(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('extension_reason', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('refusal_reason', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('export_expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('channel', sa.String(length=10), nullable=False, server_default='portal'))
        batch_op.add_column(sa.Column('code_hash', sa.String(length=64), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('code_claimed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('code_expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('code_failures', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('clock_stopped_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('lift_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('warned_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('destination_url', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('destination_country', sa.String(length=2), nullable=False,
                                      server_default=''))
    op.create_table('request_steps',
                    sa.Column('request_id', sa.String(length=32), nullable=False),
                    sa.Column('service', sa.String(length=20), nullable=False),
                    sa.Column('operation', sa.String(length=20), nullable=False),
                    sa.Column('phase', sa.Integer(), nullable=False),
                    sa.Column('status', sa.String(length=10), nullable=False),
                    sa.Column('attempts', sa.Integer(), nullable=False),
                    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
                    sa.Column('last_error', sa.String(length=40), nullable=False),
                    sa.Column('outcome', sa.String(length=200), nullable=False),
                    sa.Column('kept', sa.Text(), nullable=False),
                    sa.Column('lease_id', sa.String(length=32), nullable=False),
                    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
                    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('request_id', 'service', 'operation'))
    op.create_index('ix_request_steps_due', 'request_steps', ['status', 'next_attempt_at'])
    op.create_table('export_parts',
                    sa.Column('request_id', sa.String(length=32), nullable=False),
                    sa.Column('service', sa.String(length=20), nullable=False),
                    sa.Column('export', sa.LargeBinary(), nullable=False),
                    sa.Column('declarations', sa.LargeBinary(), nullable=False),
                    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('request_id', 'service'))
    op.create_index('ix_export_parts_created', 'export_parts', ['created_at', 'request_id', 'service'])
    op.create_table('erasure_ledger',
                    sa.Column('subject_id', sa.String(length=32), nullable=False),
                    sa.Column('request_id', sa.String(length=32), nullable=False),
                    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('subject_id'))


def downgrade() -> None:
    op.drop_table('erasure_ledger')
    op.drop_index('ix_export_parts_created', table_name='export_parts')
    op.drop_table('export_parts')
    op.drop_index('ix_request_steps_due', table_name='request_steps')
    op.drop_table('request_steps')
    with op.batch_alter_table('rights_requests', schema=None) as batch_op:
        for column in ('destination_country', 'destination_url', 'warned_at', 'lift_at', 'clock_stopped_at', 'code_failures', 'code_expires_at',
                       'code_claimed_at', 'code_hash', 'channel', 'export_expires_at', 'refusal_reason',
                       'extension_reason', 'corrections', 'purpose'):
            batch_op.drop_column(column)
