"""Alembic environment for consent (run by `python -m consent migrate`)."""

from consent.models import Base
from servicekit.migrations import run_env

run_env(Base.metadata)
