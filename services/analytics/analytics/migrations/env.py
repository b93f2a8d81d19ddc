"""Alembic environment for analytics (run by `python -m analytics migrate`)."""

from analytics.models import Base
from servicekit.migrations import run_env

run_env(Base.metadata)
