"""The engine's pool and the unit of work's autocommit read (a real database: SQLite, and PostgreSQL when
configured)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import psycopg
import pytest
from servicekit.db import UnitOfWork, make_engine
from servicekit.outbox import OutboxWriter
from servicekit.testing import POSTGRES, eventually, fresh_database
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


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    """A fresh PostgreSQL database: in CI one is always configured (fresh_database fails otherwise)."""
    if not POSTGRES and os.environ.get("CI") != "true":
        pytest.skip("needs a PostgreSQL server: set KASEUM_TEST_POSTGRES")
    with fresh_database("postgresql", tmp_path, "kit") as url:
        yield url


def test_a_pooled_connection_the_server_ended_is_replaced_at_checkout(postgres_url: str) -> None:
    """No ping per checkout: a connection whose session the server ended (a restart, a failover, an idle
    timeout) is found closed when it is taken from the pool, and another is used; the caller sees nothing."""
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as connection:
            ended = connection.execute(text("SELECT pg_backend_pid()")).scalar()
        with psycopg.connect(POSTGRES, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (ended,))
            eventually(lambda: not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s",
                                                 (ended,)).fetchone(), what="the session ended")
        with engine.connect() as connection:  # the pool's only connection was the ended one
            assert connection.execute(text("SELECT pg_backend_pid()")).scalar() != ended
    finally:
        engine.dispose()
