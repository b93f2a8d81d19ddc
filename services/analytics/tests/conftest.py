"""Fixtures for analytics' tests: the real schema in a SQLite file per test, a real NATS server
with JetStream for the key and exclusion buckets, a settable clock."""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from analytics.__main__ import MIGRATIONS
from analytics.models import Outbox, Repository, UsageDaily
from analytics.queries import AnalyticsQueries
from analytics.service import AnalyticsService, release_day
from servicekit.bus import Bus
from servicekit.caller import Principal
from servicekit.db import UnitOfWorkFactory, new_id
from servicekit.pseudonyms import Exclusions, PseudonymKeys
from servicekit.testing import BACKENDS, Clock, fresh_database, migrated_uow

from tools.stack import free_port, nats_server_binary

REGION = "uk"


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    store = tmp_path_factory.mktemp("nats")
    proc = subprocess.Popen([nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    yield f"nats://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


def started_bus(url: str, region: str) -> Bus:
    bus = Bus(url, region, "analytics-test")
    bus.start()
    deadline = time.monotonic() + 10
    while bus.js is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return bus


@pytest.fixture
def region() -> str:
    # A fresh region per test: its own stream and buckets, so tests never share keys.
    return "t" + uuid.uuid4().hex[:7]


@pytest.fixture
def bus(nats_url: str, region: str) -> Iterator[Bus]:
    bus = started_bus(nats_url, region)
    yield bus
    bus.stop()


@pytest.fixture
def keys(bus: Bus, region: str) -> PseudonymKeys:
    return PseudonymKeys(bus, region)


@pytest.fixture
def exclusions(bus: Bus, region: str) -> Exclusions:
    return Exclusions(bus, region)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLite always; PostgreSQL too when KASEUM_TEST_POSTGRES names a server (as .ci/run does)."""
    with fresh_database(request.param, tmp_path, "analytics") as url:
        yield url


@pytest.fixture
def uow(database_url: str) -> Iterator[UnitOfWorkFactory[Repository]]:
    factory = migrated_uow(MIGRATIONS, database_url, Outbox, Repository, REGION)
    yield factory
    factory.session_factory.kw["bind"].dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2025, 3, 10, 12, 0, tzinfo=UTC))


@pytest.fixture
def service(uow: UnitOfWorkFactory[Repository], region: str, keys: PseudonymKeys, exclusions: Exclusions,
            clock: Clock) -> AnalyticsService:
    return AnalyticsService(uow, region, keys, exclusions, clock=clock)


@pytest.fixture
def queries(uow: UnitOfWorkFactory[Repository], clock: Clock) -> AnalyticsQueries:
    return AnalyticsQueries(uow, REGION, min_group_size=10, budget_epsilon=3.0, max_epsilon=1.0,
                            ledger_key=b"k" * 32, clock=clock)


@pytest.fixture
def person() -> Callable[..., Principal]:
    def make(role: str = "analyst", region: str = REGION, subject_id: str = "") -> Principal:
        return Principal("person", subject_id or new_id(), role, region, new_id())

    return make


@pytest.fixture
def daily(uow: UnitOfWorkFactory[Repository]) -> Callable[..., None]:
    """Store one rolled-up cell: `daily(date(2025, 3, 3), users=12, feature="tickets.open")`;
    dimension "all" by default, feature "*" for active users. The day is released again, as the
    roll-up does (threshold 10, as the `queries` fixture)."""
    def store(day: date, users: int, feature: str = "tickets.open", region: str = REGION,
              dimension: str = "all", value: str = "") -> None:
        with uow() as u:
            u.repo.add(UsageDaily(day=day, region=region, feature=feature, dimension=dimension, value=value,
                                  users=users))
            u.session.flush()
            release_day(u.repo, day, 10)
            u.commit()

    return store
