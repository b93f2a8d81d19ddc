"""A real, migrated identity database behind the rules, per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from google.protobuf.message import Message
from identity.__main__ import MIGRATIONS
from identity.models import Outbox, Repository
from identity.passwords import Passwords
from identity.service import IdentityService, SignUp
from identity.tokens import TokenSigner, generate_private_pem
from kaseum.events.v1 import envelope_pb2, identity_events_pb2
from servicekit.caller import TokenVerifier
from servicekit.testing import BACKENDS, fresh_database, migrated_uow
from sqlalchemy import select


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLite always; PostgreSQL too when KASEUM_TEST_POSTGRES names a server (as .ci/run does)."""
    with fresh_database(request.param, tmp_path, "identity") as url:
        yield url


@pytest.fixture
def service(database_url: str) -> Iterator[IdentityService]:
    uow = migrated_uow(MIGRATIONS, database_url, Outbox, Repository)
    signer = TokenSigner(generate_private_pem(), 600)
    verifier = TokenVerifier(signer.jwks, b"s" * 40)
    # Cheap hashing parameters keep the unit tests fast; production uses OWASP's.
    yield IdentityService(uow, Passwords(1024, 1, 1), signer, verifier, "uk", "2024-01", throttle_key=b"k" * 32)
    uow.session_factory.kw["bind"].dispose()


def signup(**overrides: str) -> SignUp:
    values = dict(username="ada", email="ada@example.com", password="correct horse battery", first_name="Ada",
                  last_name="Lovelace", company="Engines", job_title="Analyst", phone="", country="GB")
    values.update(overrides)
    return SignUp(**values)  # type: ignore[arg-type]


M = TypeVar("M", bound=Message)


def outbox_events(service: IdentityService, event_type: str, message: type[M]) -> list[M]:
    """The events of `event_type` identity wrote to its outbox, oldest first."""
    found = []
    with service.uow() as uow:
        for row in uow.session.scalars(select(Outbox).order_by(Outbox.created_at)):
            env = envelope_pb2.Envelope.FromString(row.data)
            if env.type == event_type:
                event = message()
                env.payload.Unpack(event)
                found.append(event)
    return found


def requested(service: IdentityService, kind: str = "") -> list[identity_events_pb2.MessageRequested]:
    """The message requests identity wrote to its outbox (what consent will send), oldest first."""
    return [e for e in outbox_events(service, "identity.message.requested", identity_events_pb2.MessageRequested)
            if e.kind == kind or not kind]


def rectified(service: IdentityService) -> list[identity_events_pb2.AccountRectified]:
    """The identity.account.rectified events in identity's outbox, oldest first."""
    return outbox_events(service, "identity.account.rectified", identity_events_pb2.AccountRectified)
