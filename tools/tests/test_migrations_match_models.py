"""Every service's Alembic history builds exactly the tables its models declare."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from servicekit.db import make_engine
from servicekit.migrations import managed, upgrade

SERVICES = ("identity", "tickets", "consent", "rights", "analytics")


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_match_models(service: str, tmp_path: Path) -> None:
    package = importlib.import_module(service)
    models = importlib.import_module(f"{service}.models")
    url = f"sqlite:///{tmp_path}/{service}.db"
    upgrade(Path(package.__file__ or "").parent / "migrations", url)
    engine = make_engine(url)
    with engine.connect() as conn:
        metadata = models.Base.metadata
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": managed(metadata)})
        diff = compare_metadata(context, metadata)
    engine.dispose()
    assert diff == [], f"{service}: models and migrations differ; run tools/new_migration.py: {diff}"
