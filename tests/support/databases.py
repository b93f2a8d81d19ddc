"""Fresh databases for a test: one PostgreSQL database per service when KASEUM_TEST_POSTGRES is set
(as .ci/run sets it), else SQLite files in the test's own folder."""

from __future__ import annotations

import os
import uuid
from typing import Any

SERVICES = ("identity", "tickets", "consent", "rights", "analytics")


def postgres_admin_url() -> str:
    return os.environ.get("KASEUM_TEST_POSTGRES", "")


def backend() -> str:
    return "postgresql" if postgres_admin_url() else "sqlite"


def fresh_database_urls() -> dict[str, str]:
    """Environment entries DATABASE_URL_<SERVICE> (empty for SQLite: the stack's default)."""
    admin = postgres_admin_url()
    if not admin:
        return {}
    import psycopg

    urls: dict[str, str] = {}
    base = admin.rsplit("/", 1)[0]
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in SERVICES:
            db = f"k_{name}_{uuid.uuid4().hex[:10]}"
            conn.execute(f'CREATE DATABASE "{db}"')
            urls[f"DATABASE_URL_{name.upper()}"] = f"{base}/{db}"
    return urls


def count_rows(system: Any, service: str, sql: str, **params: str) -> int:
    """A `SELECT count(*) …` on one service's database of a running system, as an operator would check."""
    from servicekit.db import make_engine
    from sqlalchemy import text

    engine = make_engine(system.database_url(service))
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql), params).scalar_one())
    finally:
        engine.dispose()
