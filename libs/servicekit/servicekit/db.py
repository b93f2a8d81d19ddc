"""SQLAlchemy 2 engine, sessions and the unit of work (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

import select
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from .errors import Collision
from .outbox import OutboxWriter


def new_id() -> str:
    """Opaque, unguessable id (no sequence that leaks counts)."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # LIFO: a run of short units of work (one piece of an export after another) takes the connection
        # just returned, so one connection's page cache serves it instead of every pooled connection's
        # cache filling with the same table (measured: +11.5 MiB over five connections, +2 MiB over one).
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, pool_use_lifo=True,
                               hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets replicas read while one writes; secure_delete overwrites
            # freed pages so erased rows do not linger in the file.
            cur.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL syncs at checkpoints, not at every commit: a power cut can lose
            # the last transactions but never corrupts the file (SQLite is the single-machine default).
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # hide_parameters: a statement's values (names, addresses) stay out of its errors, and so out of logs.
    engine = create_engine(url, pool_size=10, max_overflow=10, pool_use_lifo=True, hide_parameters=True)
    event.listen(engine, "checkout", _refuse_closed_by_server)
    return engine


def _refuse_closed_by_server(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection the server has closed (a restart, a failover, an idle timeout) is replaced at
    checkout, as `pool_pre_ping` would, but without its round trip on every unit of work: a PostgreSQL
    server that ends a session says so and closes the socket, so an idle connection's socket with anything
    to read is a dead one. (A connection lost silently fails its first statement instead, which a ping
    would not have prevented either: it would wait for the same TCP timeout.) SQLAlchemy discards a
    connection this refuses and checks out another."""
    if dbapi_conn.closed or _readable(dbapi_conn.fileno()):
        raise DisconnectionError("the server closed this pooled connection")


def _readable(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


R = TypeVar("R")


class UnitOfWork(Generic[R]):
    """One transaction: rolls back unless `commit()` is called.

    `repo` is the service's repository (its models.py) bound to the session;
    `events` writes outbox rows into the same transaction.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        repo_factory: Callable[[Session], R],
        outbox: OutboxWriter,
    ) -> None:
        self._session_factory = session_factory
        self._repo_factory = repo_factory
        self._outbox = outbox
        self.committed = False

    def __enter__(self) -> UnitOfWork[R]:
        self.session = self._session_factory()
        self.repo = self._repo_factory(self.session)
        self.events = self._outbox.bind(self.session)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # close() rolls back an uncommitted transaction and detaches the objects
        # without expiring them, so results stay readable after the block.
        self.session.close()

    def autocommit(self) -> None:
        """Run this unit of work's statements each on its own, outside a transaction: for a single read that
        needs no snapshot on a hot path. On PostgreSQL that spares the BEGIN and ROLLBACK, two of the three
        round trips a one-statement read costs. Call it first, before any statement; the connection goes
        back to the pool with its usual isolation. Such a unit of work must not write.

        SQLite's driver begins no transaction for a read anyway, and switching its isolation there and back
        costs more than it saves (measured: 0.98 → 1.05 ms a sign-in's read), so there it changes nothing."""
        if self.session.get_bind().dialect.name != "sqlite":
            self.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})

    def commit(self) -> None:
        """Commit; a unique-key race surfaces as errors.Collision, which the rules may handle."""
        try:
            self.session.commit()
        except IntegrityError as exc:
            raise Collision() from exc
        self.committed = True
        self._outbox.notify()

    def commit_unless_gone(self) -> bool:
        """Commit; False (nothing kept) when a row this unit of work changed was deleted meanwhile, as an
        erasure may do to a row a background worker was updating: then there is nothing left to update."""
        try:
            self.commit()
        except StaleDataError:
            self.session.rollback()
            return False
        return True


class UnitOfWorkFactory(Generic[R]):
    """Makes a fresh UnitOfWork per use; passed into the service's rules."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        repo_factory: Callable[[Session], R],
        outbox: OutboxWriter,
    ) -> None:
        self.session_factory = session_factory
        self.repo_factory = repo_factory
        self.outbox = outbox

    def __call__(self) -> UnitOfWork[R]:
        return UnitOfWork(self.session_factory, self.repo_factory, self.outbox)

    @property
    def concurrent_writers(self) -> bool:
        """Whether transactions that write different rows go side by side (PostgreSQL's row locks), rather than
        one at a time for the whole database (SQLite): may a transaction stay open while the rules wait?"""
        return bool(self.session_factory.kw["bind"].dialect.name != "sqlite")

    @contextmanager
    def pinned(self) -> Iterator[UnitOfWorkFactory[R]]:
        """Units of work that all use one connection, held for the block (each still its own
        transaction): for a long run of short reads by one thread, such as an export's pieces, so that
        one connection's page cache serves them instead of each pooled connection caching the same
        table (memory that grew with the export)."""
        engine = self.session_factory.kw["bind"]
        with engine.connect() as connection:
            yield UnitOfWorkFactory(sessionmaker(bind=connection, expire_on_commit=False), self.repo_factory,
                                    self.outbox)
