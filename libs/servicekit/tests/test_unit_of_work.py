"""The unit of work's autocommit read (a real database: SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

from typing import Any, cast

from servicekit.db import UnitOfWork
from servicekit.outbox import OutboxWriter
from sqlalchemy import text
from sqlalchemy.orm import Session

from .conftest import Db

# In a transaction, the second statement starts after the transaction did; on its own, they start together.
ON_ITS_OWN = text("SELECT transaction_timestamp() = statement_timestamp()")


def unit(db: Db) -> UnitOfWork[Session]:
    return UnitOfWork(db.sessions, lambda session: session, OutboxWriter(cast(Any, None), "uk"))


def test_an_autocommit_read_runs_each_statement_outside_a_transaction_on_postgresql(db: Db) -> None:
    with unit(db) as uow:
        uow.autocommit()
        connection = uow.session.connection()
        if db.dialect == "postgresql":
            connection.execute(text("SELECT pg_sleep(0.01)"))
            assert connection.execute(ON_ITS_OWN).scalar() is True
        else:
            # SQLite's driver begins no transaction for a read: its isolation is left as it is.
            assert connection.connection.dbapi_connection.isolation_level == ""  # type: ignore[union-attr]
    with unit(db) as uow:  # the pooled connection is back in transactions
        connection = uow.session.connection()
        if db.dialect == "postgresql":
            connection.execute(text("SELECT pg_sleep(0.01)"))
            assert connection.execute(ON_ITS_OWN).scalar() is False
        else:
            assert connection.connection.dbapi_connection.isolation_level == ""  # type: ignore[union-attr]
