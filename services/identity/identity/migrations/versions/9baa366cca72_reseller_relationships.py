"""reseller relationships, and their append-only audit trail

Revision ID: 9baa366cca72
Revises: c960e2222c20
Create Date: 2026-11-25 15:33:14.250490

Creates organisation_countries, reseller_customers and organisation_audit, and the triggers
that refuse UPDATE, DELETE (and, on PostgreSQL, TRUNCATE) of organisation_audit (R-SEC-1).
A later SQLite batch migration that rebuilds organisation_audit must re-create them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '9baa366cca72'
down_revision: str | None = 'c960e2222c20'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGE = "organisation_audit is append-only"


def _create_tables() -> None:
    op.create_table('organisation_audit',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_kind', sa.String(length=10), nullable=False),
    sa.Column('actor_id', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('organisation_id', sa.String(length=32), nullable=False),
    sa.Column('customer_organisation_id', sa.String(length=32), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_organisation_audit_at', 'organisation_audit', ['at'], unique=False)
    op.create_index('ix_organisation_audit_organisation_id', 'organisation_audit', ['organisation_id'],
                    unique=False)
    op.create_table('organisation_countries',
    sa.Column('reseller_id', sa.String(length=32), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.ForeignKeyConstraint(['reseller_id'], ['organisations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('reseller_id', 'country')
    )
    op.create_table('reseller_customers',
    sa.Column('reseller_id', sa.String(length=32), nullable=False),
    sa.Column('customer_organisation_id', sa.String(length=32), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_organisation_id'], ['organisations.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reseller_id'], ['organisations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('reseller_id', 'customer_organisation_id')
    )
    op.create_index('ix_reseller_customers_customer_organisation_id', 'reseller_customers',
                    ['customer_organisation_id'], unique=False)


def upgrade() -> None:
    _create_tables()
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"""
            CREATE OR REPLACE FUNCTION organisation_audit_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{MESSAGE}'; END $$
        """)
        op.execute("""
            CREATE TRIGGER organisation_audit_no_change BEFORE UPDATE OR DELETE ON organisation_audit
            FOR EACH ROW EXECUTE FUNCTION organisation_audit_append_only()
        """)
        op.execute("""
            CREATE TRIGGER organisation_audit_no_truncate BEFORE TRUNCATE ON organisation_audit
            FOR EACH STATEMENT EXECUTE FUNCTION organisation_audit_append_only()
        """)
    else:
        for event in ('UPDATE', 'DELETE'):
            op.execute(f"""
                CREATE TRIGGER organisation_audit_no_{event.lower()} BEFORE {event} ON organisation_audit
                BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END
            """)


def downgrade() -> None:
    # The tables go with c960e2222c20's downgrade (or stay, if this revision made them).
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS organisation_audit_no_truncate ON organisation_audit")
        op.execute("DROP TRIGGER IF EXISTS organisation_audit_no_change ON organisation_audit")
        op.execute("DROP FUNCTION IF EXISTS organisation_audit_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS organisation_audit_no_update")
        op.execute("DROP TRIGGER IF EXISTS organisation_audit_no_delete")
