"""Alembic environment for tickets (run by `python -m tickets migrate`)."""

from servicekit.migrations import run_env
from tickets.models import Base

run_env(Base.metadata)
