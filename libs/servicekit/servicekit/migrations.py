"""Alembic per service: each service keeps its own history in `<service>/migrations`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData

from .db import make_engine


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(migrations_dir: Path, database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(migrations_dir, database_url), revision)


def managed(metadata: MetaData) -> Callable[[str | None, Any, Any], bool]:
    """Autogenerate's `include_name`: skips the tables a service makes by hand in its migrations
    (`MetaData(info={"unmanaged_tables": (...)})`, e.g. a full-text index) and their shadow tables."""
    prefixes = tuple(metadata.info.get("unmanaged_tables", ()))

    def include(name: str | None, kind: Any, parent: Any) -> bool:
        return not (kind == "table" and prefixes and name is not None and name.startswith(prefixes))

    return include


def run_env(target_metadata: MetaData) -> None:
    """Body of every service's migrations/env.py (online mode only)."""
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("sqlalchemy.url is not set")
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_name=managed(target_metadata),
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
