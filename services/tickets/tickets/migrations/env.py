"""Alembic environment for tickets (run by `python -m tickets migrate`)."""

from tickets.models import Base
from servicekit.migrations import run_env

run_env(Base.metadata)
