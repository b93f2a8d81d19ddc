"""Fixtures for analytics' unit tests: the real schema in a SQLite file per test, a settable clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from analytics.__main__ import MIGRATIONS
from analytics.models import FeatureUsageDaily, Outbox, Repository
from analytics.service import AnalyticsService
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


@pytest.fixture
def uow(tmp_path: Path) -> Iterator[UnitOfWorkFactory[Repository]]:
    url = f"sqlite:///{tmp_path}/analytics.db"
    upgrade(MIGRATIONS, url)
    engine = make_engine(url)
    sessions: sessionmaker[Session] = sessionmaker(engine, expire_on_commit=False)
    yield UnitOfWorkFactory(sessions, Repository, OutboxWriter(Outbox, REGION))
    engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2025, 3, 10, 12, 0, tzinfo=UTC))


@pytest.fixture
def service(uow: UnitOfWorkFactory[Repository], clock: Clock) -> AnalyticsService:
    return AnalyticsService(uow, REGION, min_group_size=10, clock=clock)


@pytest.fixture
def person() -> Callable[..., Principal]:
    def make(role: str = "analyst", region: str = REGION) -> Principal:
        return Principal("person", new_id(), role, region, new_id())

    return make


@pytest.fixture
def daily(uow: UnitOfWorkFactory[Repository]) -> Callable[..., None]:
    """Store one rolled-up cell: `daily(date(2025, 3, 3), users=12, active=40)`."""
    def store(day: date, users: int, active: int, feature: str = "tickets.open", region: str = REGION) -> None:
        with uow() as u:
            u.repo.add(FeatureUsageDaily(day=day, feature=feature, region=region, users=users, active_users=active))
            u.commit()

    return store
