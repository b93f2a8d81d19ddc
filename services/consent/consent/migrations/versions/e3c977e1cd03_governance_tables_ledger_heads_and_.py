"""governance tables, ledger heads and append-only ledger, retention indexes

Revision ID: e3c977e1cd03
Revises: 74951fef1d04
Create Date: 2026-12-01 13:21:39.138855

The governance tables of servicekit (audit_log and transfer_log append-only; chain_heads,
legal_holds, purge_runs); a head row per subject's consent ledger (seeded from the newest entry
of each existing ledger), a unique (subject_id, seq) and triggers that make the ledger append-only
(a DELETE passes only once the subject's head is gone: Erase); indexes for the retention purge.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from servicekit import append_only, governance_schema

revision: str = 'e3c977e1cd03'
down_revision: str | None = '74951fef1d04'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEDGER = "consent_ledger"
# Spelled out (not imported from models) so the revision keeps doing what it did when written.
DELETABLE_WHEN = "NOT EXISTS (SELECT 1 FROM consent_ledger_heads h WHERE h.subject_id = OLD.subject_id)"


def upgrade() -> None:
    governance_schema.create_v1(op)
    op.create_table('consent_ledger_heads',
                    sa.Column('subject_id', sa.String(length=32), nullable=False),
                    sa.Column('seq', sa.Integer(), nullable=False),
                    sa.Column('hash', sa.String(length=64), nullable=False),
                    sa.PrimaryKeyConstraint('subject_id'))
    # Each existing ledger's newest entry becomes its head.
    op.execute(f"""
        INSERT INTO consent_ledger_heads (subject_id, seq, hash)
        SELECT l.subject_id, l.seq, l.hash FROM {LEDGER} l
        WHERE l.seq = (SELECT MAX(m.seq) FROM {LEDGER} m WHERE m.subject_id = l.subject_id)
    """)
    op.drop_index('ix_consent_ledger_subject_id', table_name=LEDGER)
    op.create_index('ix_consent_ledger_subject_seq', LEDGER, ['subject_id', 'seq'], unique=True)
    append_only.install(op.get_bind(), LEDGER, deletable_when=DELETABLE_WHEN)
    op.create_index('ix_campaigns_created_at', 'campaigns', ['created_at'], unique=False)
    op.create_index('ix_outgoing_created', 'outgoing_messages', ['created_at', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_outgoing_created', table_name='outgoing_messages')
    op.drop_index('ix_campaigns_created_at', table_name='campaigns')
    append_only.uninstall(op.get_bind(), LEDGER)
    op.drop_index('ix_consent_ledger_subject_seq', table_name=LEDGER)
    op.create_index('ix_consent_ledger_subject_id', LEDGER, ['subject_id'], unique=False)
    op.drop_table('consent_ledger_heads')
    governance_schema.drop_v1(op)
