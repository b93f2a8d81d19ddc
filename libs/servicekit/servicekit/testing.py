"""Helpers for a service's own tests: a real, migrated database behind a unit of work."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from . import migrations
from .caller import Principal
from .db import UnitOfWorkFactory, make_engine
from .outbox import OutboxMixin, OutboxWriter

R = TypeVar("R")
T = TypeVar("T")

# A service's tests run on SQLite always and on PostgreSQL too when KASEUM_TEST_POSTGRES names a
# server (as .ci/run does): parametrise the database fixture with BACKENDS.
POSTGRES = os.environ.get("KASEUM_TEST_POSTGRES", "")
BACKENDS = ["sqlite", "postgresql"] if POSTGRES else ["sqlite"]


@contextmanager
def fresh_database(backend: str, folder: Path, service: str) -> Iterator[str]:
    """A new, empty database's URL for one test, dropped afterwards. In CI (CI=true) PostgreSQL must be
    configured: the upserts, row locks and triggers differ between the two, so it never silently skips."""
    if os.environ.get("CI") == "true" and not POSTGRES:
        raise RuntimeError("CI=true but KASEUM_TEST_POSTGRES is not set: tests must also run on PostgreSQL")
    if backend == "sqlite":
        yield f"sqlite:///{folder}/{service}.db"
        return
    import psycopg

    name = f"k_{service}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrated_uow(migrations_dir: Path, url: str, outbox_model: type[OutboxMixin],
                 repo_factory: Callable[[Session], R], region: str = "uk") -> UnitOfWorkFactory[R]:
    """Run the service's Alembic migrations on `url` and return a unit-of-work factory over it."""
    migrations.upgrade(migrations_dir, url)
    engine = make_engine(url)
    return UnitOfWorkFactory(sessionmaker(engine, expire_on_commit=False), repo_factory,
                             OutboxWriter(outbox_model, region))


@dataclass
class Clock:
    """A settable clock for rules that take `clock=` (time is injected, never slept)."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def eventually(probe: Callable[[], T], timeout: float = 20.0, interval: float = 0.05,
               what: str = "condition") -> T:
    """Call `probe` until it returns a truthy value (returned) or raises no AssertionError: for work another
    thread, process or consumer finishes after the call under test returns. Retries instead of sleeping a
    fixed time."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except AssertionError as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}" + (f": {last}" if last else ""))


def person(subject_id: str, role: str = "customer", region: str = "uk") -> Principal:
    return Principal("person", subject_id, role, region, "session-" + subject_id[:8])


Cell = TypeVar("Cell")


def solve_by_differences(known: dict[Cell, int], relations: list[tuple[Cell, list[Cell]]]) -> dict[Cell, int]:
    """The differencing attacker of suppression tests: solve any relation total = sum(parts) with one unknown
    cell from the cells published, until nothing changes; what it returns is what the answers give away."""
    known = dict(known)
    grew = True
    while grew:
        grew = False
        for total, parts in relations:
            unknown = [c for c in [total, *parts] if c not in known]
            if len(unknown) == 1:
                u = unknown[0]
                rest = sum(known[p] for p in parts if p != u)
                known[u] = known[total] - rest if u != total else rest
                grew = True
    return known
