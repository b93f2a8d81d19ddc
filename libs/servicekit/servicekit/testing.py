"""Helpers for a service's own tests: a real, migrated database behind a unit of work."""

from __future__ import annotations

from collections.abc import Callable
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


def person(subject_id: str, role: str = "customer", region: str = "uk") -> Principal:
    return Principal("person", subject_id, role, region, "session-" + subject_id[:8])
