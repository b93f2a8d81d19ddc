"""Each service's access and transfer records (audit trail, transfer log) are purged after 6 years by the rule
its governance.py declares, through the triggers its migrations install: the chain still checks out, and the
database still refuses to delete a recent row (SQLite, and PostgreSQL when KASEUM_TEST_POSTGRES is set)."""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from servicekit import audit, chain, rotation
from servicekit.db import make_engine
from servicekit.governance_models import GovernanceModels
from servicekit.migrations import upgrade
from servicekit.retention import Purger
from servicekit.testing import person
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker

# Wired so far; consent and rights join when their migrations install rotation's triggers.
WIRED = ("identity", "tickets", "consent", "rights", "analytics")
BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("KASEUM_TEST_POSTGRES") else [])
# The triggers read the database's clock, so the injected one starts today.
NOW = datetime.now(UTC).replace(microsecond=0)
SIX_YEARS_AGO = NOW.replace(year=NOW.year - 6)


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/service.db"
        return
    import psycopg

    admin, name = os.environ["KASEUM_TEST_POSTGRES"], f"ret_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield admin.rsplit("/", 1)[0] + "/" + name


@pytest.mark.notice("11")
@pytest.mark.notice("12.1", "12.2")
@pytest.mark.rule("R-RET-1")
@pytest.mark.rule("R-SEC-1")
@pytest.mark.parametrize("service", WIRED)
def test_each_service_purges_its_access_records_after_six_years_and_refuses_other_deletes(
        service: str, database: str) -> None:
    package = importlib.import_module(service)
    upgrade(Path(package.__file__ or "").parent / "migrations", database)
    models: GovernanceModels = importlib.import_module(f"{service}.models").GOVERNANCE
    [rule] = [r for r in importlib.import_module(f"{service}.governance").DECLARATION.retention
              if r.purge is not None and "transfer_records" in r.covers and r.category == "access_records"]
    engine = make_engine(database)
    sessions = sessionmaker(engine, expire_on_commit=False)
    ages = [timedelta(days=-30), timedelta(days=-2), timedelta(days=2), timedelta(days=400)]
    for age in ages:
        with sessions() as session:
            audit.record(session, models.audit, models.heads, person("a" * 32, "agent"),
                         [audit.Access("1" * 32, "account.read")], at=SIX_YEARS_AGO + age)
            session.commit()
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 1"))  # old, but not through the purge
    [run] = Purger([rule], sessions, models.purge_runs, lambda: NOW, sleep=lambda _: None).run_once()
    assert run.purged == 2 and rule.months == rotation.MONTHS
    with sessions() as session:
        assert list(session.scalars(select(models.audit.seq).order_by(models.audit.seq))) == [3, 4]
        assert chain.verify(session, models.audit, models.heads) == chain.ChainCheck("audit", True, 2, anchor_seq=2)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 4"))
    engine.dispose()


@pytest.mark.notice("12.1", "12.2")
@pytest.mark.rule("R-RET-1")
def test_identitys_trail_of_organisation_changes_is_purged_after_six_years_and_only_then(database: str) -> None:
    import identity
    from identity import governance, models

    upgrade(Path(identity.__file__ or "").parent / "migrations", database)
    [rule] = [r for r in governance.DECLARATION.retention if r.name == "organisation_changes"]
    engine = make_engine(database)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session:
        for key, age in (("old", timedelta(days=-3)), ("new", timedelta(days=3))):
            session.add(models.OrganisationAudit(id=key * 8, at=SIX_YEARS_AGO + age, actor_kind="person",
                                                 actor_id="a" * 32, action="organisation.created",
                                                 organisation_id="o" * 32))
        session.commit()
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("DELETE FROM organisation_audit WHERE id = :id"), {"id": "new" * 8})
    [run] = Purger([rule], sessions, models.GOVERNANCE.purge_runs, lambda: NOW, sleep=lambda _: None).run_once()
    with sessions() as session:
        assert run.purged == 1
        assert list(session.scalars(select(models.OrganisationAudit.id))) == ["new" * 8]
    engine.dispose()
