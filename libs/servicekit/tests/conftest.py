"""Servicekit's own tests: a real database (SQLite, and PostgreSQL when KASEUM_TEST_POSTGRES is set)
with the governance tables of a minimal service."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from servicekit import rotation
from servicekit.audit import AuditLogMixin
from servicekit.chain import ChainHeadMixin
from servicekit.db import make_engine
from servicekit.governance_models import GovernanceModels
from servicekit.holds import LegalHoldMixin
from servicekit.retention import PurgeRunMixin
from servicekit.transfers import TransferLogMixin
from sqlalchemy import DateTime, Engine, String
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker


class Base(DeclarativeBase):
    pass


class ChainHead(ChainHeadMixin, Base):
    pass


class AuditLog(AuditLogMixin, Base):
    pass


class TransferLog(TransferLogMixin, Base):
    pass


class LegalHold(LegalHoldMixin, Base):
    pass


class PurgeRun(PurgeRunMixin, Base):
    pass


class Record(Base):
    """A service's personal data with a retention trigger (`closed_at`)."""

    __tablename__ = "records"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, info={"category": "none"})
    subject_id: Mapped[str] = mapped_column(String(32), index=True, info={"category": "3.2.1"})
    closed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True, info={"category": "none"})


MODELS = GovernanceModels(ChainHead, AuditLog, TransferLog, LegalHold, PurgeRun)


@dataclass
class Db:
    url: str
    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name



def _postgres_url() -> str:
    admin = os.environ.get("KASEUM_TEST_POSTGRES", "")
    if not admin:
        return ""
    import psycopg

    name = f"kit_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin.rsplit("/", 1)[0] + "/" + name


BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("KASEUM_TEST_POSTGRES") else [])


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    url = f"sqlite:///{tmp_path}/kit.db" if request.param == "sqlite" else _postgres_url()
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        rotation.install(conn)  # the append-only triggers as the services' migrations install them
    yield Db(url, engine, sessionmaker(engine, expire_on_commit=False))
    engine.dispose()
