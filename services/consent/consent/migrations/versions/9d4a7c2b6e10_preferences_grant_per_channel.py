"""preferences: grant time and notice seq per marketing channel

Revision ID: 9d4a7c2b6e10
Revises: 5b0c8e1f2a47
Create Date: 2026-12-01 19:40:00.000000

Consent is specific to a channel (e-mail, telephone) and to third-party sharing: one marker for the row let
a fresh grant of one channel renew the others after a purpose change or a suppression. Each channel's
time and seq start as the row's single ones (what the row said of every channel until now).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '9d4a7c2b6e10'
down_revision: str | None = '5b0c8e1f2a47'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNELS = ('email', 'telephone', 'third_party')


def upgrade() -> None:
    with op.batch_alter_table('preferences', schema=None) as batch_op:
        for channel in CHANNELS:
            batch_op.add_column(sa.Column(f'{channel}_granted_at', sa.DateTime(timezone=True), nullable=True))
            batch_op.add_column(sa.Column(f'{channel}_basis_seq', sa.Integer(), nullable=False,
                                          server_default='0'))
    op.execute('UPDATE preferences SET ' + ', '.join(
        f'{c}_granted_at = marketing_granted_at, {c}_basis_seq = basis_seq' for c in CHANNELS))
    with op.batch_alter_table('preferences', schema=None) as batch_op:
        batch_op.drop_column('basis_seq')
        batch_op.drop_column('marketing_granted_at')


def downgrade() -> None:
    with op.batch_alter_table('preferences', schema=None) as batch_op:
        batch_op.add_column(sa.Column('marketing_granted_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('basis_seq', sa.Integer(), nullable=False, server_default='0'))
    # The single marker is the latest grant of any channel, as the old code kept it.
    for c in CHANNELS:
        op.execute(f'UPDATE preferences SET marketing_granted_at = {c}_granted_at WHERE {c}_granted_at IS NOT NULL '
                   f'AND (marketing_granted_at IS NULL OR {c}_granted_at > marketing_granted_at)')
        op.execute(f'UPDATE preferences SET basis_seq = {c}_basis_seq WHERE {c}_basis_seq > basis_seq')
    with op.batch_alter_table('preferences', schema=None) as batch_op:
        for channel in reversed(CHANNELS):
            batch_op.drop_column(f'{channel}_basis_seq')
            batch_op.drop_column(f'{channel}_granted_at')
