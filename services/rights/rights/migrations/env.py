"""Alembic environment for rights (run by `python -m rights migrate`)."""

from rights.models import Base
from servicekit.migrations import run_env

run_env(Base.metadata)
