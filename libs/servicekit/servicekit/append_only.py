"""Append-only tables, enforced by the database: triggers refuse UPDATE and DELETE (and TRUNCATE).

Called from a service's Alembic migration (`install(op.get_bind(), "audit_log")`) and from tests
that build tables with `create_all`. The application never updates or deletes these rows; the
triggers make sure nobody else does either, short of dropping them (which the hash chain then
exposes: see chain.py). A later SQLite batch migration that rebuilds such a table must re-install.
"""

from __future__ import annotations

from sqlalchemy import Connection, text


def message(table: str) -> str:
    return f"{table} is append-only"


def install(conn: Connection, table: str, deletable_when: str = "") -> None:
    """Refuse UPDATE and DELETE on `table`. `deletable_when`, an SQL condition on OLD, lets a DELETE
    through when it holds (e.g. consent's ledger: once Erase has removed the subject's head row)."""
    if conn.dialect.name == "postgresql":
        allow = (f"IF TG_OP = 'DELETE' THEN IF ({deletable_when}) THEN RETURN OLD; END IF; END IF;"
                 if deletable_when else "")
        conn.execute(text(f"""
            CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$ BEGIN {allow} RAISE EXCEPTION '{message(table)}'; END $$
        """))
        conn.execute(text(f"""
            CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION {table}_append_only()
        """))
        conn.execute(text(f"""
            CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()
        """))
        return
    for event in ("UPDATE", "DELETE"):
        when = f"WHEN NOT ({deletable_when})" if event == "DELETE" and deletable_when else ""
        conn.execute(text(f"""
            CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} {when}
            BEGIN SELECT RAISE(ABORT, '{message(table)}'); END
        """))


def uninstall(conn: Connection, table: str) -> None:
    """For a downgrade (and for the test that proves the chain catches an edit made without them)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}"))
        conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_change ON {table}"))
        conn.execute(text(f"DROP FUNCTION IF EXISTS {table}_append_only()"))
        return
    conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_update"))
    conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_delete"))
