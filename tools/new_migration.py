"""Autogenerate an Alembic revision for one service: `python tools/new_migration.py SERVICE "message"`.

Compares the service's models with a scratch SQLite database migrated to head.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path

from alembic import command
from servicekit.migrations import alembic_config


def main() -> None:
    service, message = sys.argv[1], sys.argv[2]
    package = importlib.import_module(service)
    migrations_dir = Path(package.__file__ or "").parent / "migrations"
    with tempfile.TemporaryDirectory() as tmp:
        config = alembic_config(migrations_dir, f"sqlite:///{tmp}/scratch.db")
        command.upgrade(config, "head")
        command.revision(config, message=message, autogenerate=True)


if __name__ == "__main__":
    main()
