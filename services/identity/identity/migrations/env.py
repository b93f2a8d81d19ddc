"""Alembic environment for identity (run by `python -m identity migrate`)."""

from identity.models import Base
from servicekit.migrations import run_env

run_env(Base.metadata)
