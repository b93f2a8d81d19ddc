"""The engine's pool and the unit of work's autocommit read (a real database: SQLite, and PostgreSQL when
configured)."""

from __future__ import annotations

from typing import Any, cast

import psycopg
from servicekit.db import UnitOfWork
from servicekit.outbox import OutboxWriter
from servicekit.testing import POSTGRES, eventually
from sqlalchemy import text
from sqlalchemy.orm import Session

from .conftest import Db

# In a transaction, the second statement starts after the transaction did; on its own, they start together.
ON_ITS_OWN = text("SELECT transaction_timestamp() = statement_timestamp()")


def unit(db: Db) -> UnitOfWork[Session]:
    return UnitOfWork(db.sessions, lambda session: session, OutboxWriter(cast(Any, None), "uk"))


def outside_a_transaction(db: Db, uow: UnitOfWork[Session]) -> bool:
    """PostgreSQL: whether a second statement runs in a transaction of its own. SQLite's driver begins no
    transaction for a read, and its isolation must be left as it is: whether it was changed."""
    connection = uow.session.connection()
    if db.dialect == "postgresql":
        connection.execute(text("SELECT pg_sleep(0.01)"))
        return bool(connection.execute(ON_ITS_OWN).scalar())
    return connection.connection.dbapi_connection.isolation_level != ""  # type: ignore[union-attr]


def test_an_autocommit_read_runs_each_statement_outside_a_transaction_on_postgresql(db: Db) -> None:
    with unit(db) as uow:
        uow.autocommit()
        assert outside_a_transaction(db, uow) is (db.dialect == "postgresql")
    with unit(db) as uow:  # the pooled connection is back in transactions
        assert outside_a_transaction(db, uow) is False


def connection_id(db: Db) -> object:
    """Which connection a checkout gets: PostgreSQL's server process, SQLite's driver connection."""
    with db.engine.connect() as connection:
        if db.dialect == "postgresql":
            return connection.execute(text("SELECT pg_backend_pid()")).scalar()
        return id(connection.connection.dbapi_connection)


def test_a_live_pooled_connection_is_kept_and_one_the_server_ended_is_replaced_at_checkout(db: Db) -> None:
    """No ping per checkout. A live connection is handed out again as it is (nothing to read on its socket);
    one whose session the PostgreSQL server ended (a restart, a failover, an idle timeout) is found closed
    when it is taken from the pool, and another is used: the caller sees nothing."""
    first = connection_id(db)
    assert connection_id(db) == first  # LIFO pool: the same connection, not discarded
    if db.dialect != "postgresql":
        return  # SQLite is embedded: no server can end its connections
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        eventually(lambda: not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s",
                                             (first,)).fetchone(), what="the session ended")
    assert connection_id(db) != first
