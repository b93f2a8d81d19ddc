"""A real, migrated tickets database behind the rules, per test; principals as tokens carry them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from servicekit.caller import Principal
from servicekit.testing import BACKENDS, fresh_database, migrated_uow
from tickets.__main__ import MIGRATIONS
from tickets.models import Outbox, Repository
from tickets.scopes import ResellerScopes
from tickets.service import TicketsService
from tickets.visibility import Scope

ALICE, BOB, CAROL, AGENT, RESELLER = "a" * 32, "b" * 32, "e" * 32, "c" * 32, "d" * 32
ACME, GLOBEX = "o" * 32, "g" * 32


def who(subject_id: str, role: str = "customer", organisation: str = "", country: str = "GB",
        region: str = "uk") -> Principal:
    return Principal("person", subject_id, role, region, "session-" + subject_id[:8], organisation, country)


class FakeIdentity:
    """Stands in for identity's ResellerScope in these unit tests (the system tests use identity)."""

    def __init__(self) -> None:
        self.scopes: dict[str, Scope] = {}
        self.asked = 0

    def __call__(self, account_id: str) -> Scope:
        self.asked += 1
        return self.scopes.get(account_id, Scope())


@pytest.fixture
def identity() -> FakeIdentity:
    return FakeIdentity()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLite always; PostgreSQL too when KASEUM_TEST_POSTGRES names a server (as .ci/run does)."""
    with fresh_database(request.param, tmp_path, "tickets") as url:
        yield url


@pytest.fixture
def service(database_url: str, identity: FakeIdentity) -> Iterator[TicketsService]:
    uow = migrated_uow(MIGRATIONS, database_url, Outbox, Repository)
    yield TicketsService(uow, "uk", ResellerScopes(identity, ttl=0))
    uow.session_factory.kw["bind"].dispose()
