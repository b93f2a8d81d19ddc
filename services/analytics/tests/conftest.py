"""Fixtures for analytics' unit tests: the real schema in a SQLite file per test, a settable clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from analytics.__main__ import MIGRATIONS
from analytics.models import FeatureUsageDaily, Outbox, Repository
from analytics.service import AnalyticsService
from servicekit.caller import Principal
from servicekit.db import UnitOfWorkFactory, new_id
from servicekit.testing import Clock, migrated_uow

REGION = "uk"




@pytest.fixture
def uow(tmp_path: Path) -> UnitOfWorkFactory[Repository]:
    return migrated_uow(MIGRATIONS, f"sqlite:///{tmp_path}/analytics.db", Outbox, Repository, REGION)


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
