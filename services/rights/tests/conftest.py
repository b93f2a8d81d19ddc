"""Fixtures for rights' unit tests: the real schema in a SQLite file per test, a settable clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rights.__main__ import MIGRATIONS
from rights.models import Outbox, Repository
from rights.service import RightsService
from servicekit.caller import Principal
from servicekit.db import UnitOfWorkFactory, new_id
from servicekit.testing import Clock, migrated_uow

REGION = "uk"




@pytest.fixture
def uow(tmp_path: Path) -> UnitOfWorkFactory[Repository]:
    return migrated_uow(MIGRATIONS, f"sqlite:///{tmp_path}/rights.db", Outbox, Repository, REGION)


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
