"""Consent's test fixtures: a real migrated database, a real SMTP server in-process writing .eml files."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from consent.__main__ import MIGRATIONS
from consent.campaigns import Campaigns
from consent.codes import ClaimedCode, CodeGone, CodesUnavailable
from consent.directory import ClaimedToken, Contact, DirectoryUnavailable, TokenGone
from consent.keys import Keys
from consent.mail_sink import start
from consent.mailer import SmtpMailer
from consent.models import Outbox, Repository
from consent.sending import Sender, SenderConfig
from consent.service import ConsentService
from servicekit.db import UnitOfWorkFactory
from servicekit.testing import BACKENDS, Clock, fresh_database, migrated_uow

BASE = "https://portal.example"


@dataclass
class FakeDirectory:
    """Identity's answers (a fake is fine in a unit test of the sender's rules): claims work once."""

    people: dict[str, Contact] = field(default_factory=dict)  # identity's accounts' addresses
    tokens: dict[str, ClaimedToken] = field(default_factory=dict)
    claimed: list[str] = field(default_factory=list)
    down: bool = False
    elsewhere: set[str] = field(default_factory=set)  # subjects homed in another region: refused
    calls: list[str] = field(default_factory=list)  # the calls made, by name

    def contact(self, subject_id: str) -> Contact | None:
        self.calls.append("contact")
        if self.down or subject_id in self.elsewhere:
            raise DirectoryUnavailable("down" if self.down else "FAILED_PRECONDITION")
        return self.people.get(subject_id)

    def contacts(self, subject_ids: Sequence[str]) -> list[Contact | DirectoryUnavailable | None]:
        self.calls.append("contacts")
        if self.down:
            raise DirectoryUnavailable("down")
        return [DirectoryUnavailable("FAILED_PRECONDITION") if s in self.elsewhere else self.people.get(s)
                for s in subject_ids]

    def claim_token(self, token_id: str) -> ClaimedToken:
        if self.down:
            raise DirectoryUnavailable("down")
        if token_id not in self.tokens or token_id in self.claimed:
            raise TokenGone("gone")
        self.claimed.append(token_id)
        return self.tokens[token_id]


@dataclass
class FakeCodes:
    """Rights' ClaimVerificationCode (a fake is fine in a unit test of the sender's rules): a code is given once."""

    codes: dict[str, ClaimedCode] = field(default_factory=dict)
    claimed: list[str] = field(default_factory=list)
    down: bool = False

    def claim_code(self, request_id: str) -> ClaimedCode:
        if self.down:
            raise CodesUnavailable("down")
        if request_id not in self.codes or request_id in self.claimed:
            raise CodeGone("gone")
        self.claimed.append(request_id)
        return self.codes[request_id]


@dataclass
class Mailbox:
    folder: Path
    port: int

    def messages(self) -> list[EmailMessage]:
        return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
                for p in sorted(self.folder.glob("*.eml"))]

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages() if m["To"] == address]


@dataclass
class World:
    uow: UnitOfWorkFactory[Repository]
    consent: ConsentService
    campaigns: Campaigns
    sender: Sender
    directory: FakeDirectory
    codes: FakeCodes
    mailbox: Mailbox
    clock: Clock


@pytest.fixture
def mailbox(tmp_path: Path) -> Iterator[Mailbox]:
    controller = start(tmp_path / "mail")
    try:
        yield Mailbox(tmp_path / "mail", controller.port)
    finally:
        controller.stop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """SQLite always; PostgreSQL too when KASEUM_TEST_POSTGRES names a server (as .ci/run does)."""
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    with fresh_database(backend, tmp_path, "consent") as url:
        yield url


@pytest.fixture
def world(database_url: str, mailbox: Mailbox) -> Iterator[World]:
    yield from make_world(database_url, mailbox)


@pytest.fixture
def twin(backend: str, tmp_path: Path, mailbox: Mailbox) -> Iterator[World]:
    """A second world on its own database (same backend, clock and keys as `world`), to compare two ways of
    doing the same thing."""
    (tmp_path / "twin").mkdir()
    with fresh_database(backend, tmp_path / "twin", "consent") as url:
        yield from make_world(url, mailbox)


def make_world(database_url: str, mailbox: Mailbox) -> Iterator[World]:
    uow = migrated_uow(MIGRATIONS, database_url, Outbox, Repository)
    clock = Clock(datetime(2025, 3, 1, 12, 0, tzinfo=UTC))
    directory = FakeDirectory()
    consent = ConsentService(uow, "uk", "2024-01", Keys.from_secret(b"k" * 32), directory, clock=clock)
    codes = FakeCodes()
    sender = Sender(uow, consent, directory, codes, SmtpMailer("127.0.0.1", mailbox.port, timeout=5),
                    SenderConfig(base_url=BASE, sender="Kaseum <portal@kaseum.com>"), clock=clock)
    yield World(uow, consent, Campaigns(uow, clock=clock), sender, directory, codes, mailbox, clock)
    uow.session_factory.kw["bind"].dispose()
