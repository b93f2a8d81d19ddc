"""Fixtures for rights' unit tests: the real schema in a SQLite file per test, a settable clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rights.__main__ import MIGRATIONS
from rights.models import Outbox, Repository
from rights.service import RightsService
from servicekit.caller import Principal
from servicekit.db import UnitOfWorkFactory, make_engine, new_id
from servicekit.migrations import upgrade
from servicekit.outbox import OutboxWriter
from sqlalchemy.orm import Session, sessionmaker

REGION = "uk"


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def uow(tmp_path: Path) -> Iterator[UnitOfWorkFactory[Repository]]:
    url = f"sqlite:///{tmp_path}/rights.db"
    upgrade(MIGRATIONS, url)
    engine = make_engine(url)
    sessions: sessionmaker[Session] = sessionmaker(engine, expire_on_commit=False)
    yield UnitOfWorkFactory(sessions, Repository, OutboxWriter(Outbox, REGION))
    engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2025, 1, 31, 9, 30, tzinfo=UTC))


@pytest.fixture
def service(uow: UnitOfWorkFactory[Repository], clock: Clock) -> RightsService:
    return RightsService(uow, REGION, page_size_default=20, clock=clock)


@pytest.fixture
def person() -> Callable[..., Principal]:
    """A signed-in person with a fresh id: `person()`, `person("dpo")`, `person(region="eu")`."""
    def make(role: str = "customer", region: str = REGION) -> Principal:
        return Principal("person", new_id(), role, region, new_id())

    return make
