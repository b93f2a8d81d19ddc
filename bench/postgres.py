"""A private PostgreSQL server for a benchmark run, started as .ci/run starts CI's.

Uses `KASEUM_BENCH_POSTGRES` (an admin URL, e.g. postgresql://postgres@127.0.0.1:5432/postgres) when
set; otherwise initdb + pg_ctl from the machine's PostgreSQL into a temporary folder on a free port,
as the `postgres` user when run as root (initdb refuses root), stopped and removed afterwards.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator

from tools.stack import free_port


class NoPostgres(RuntimeError):
    """No PostgreSQL server binaries on this machine and no KASEUM_BENCH_POSTGRES."""


def _bin() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise NoPostgres("PostgreSQL is not installed (apt-get install postgresql) and KASEUM_BENCH_POSTGRES is unset")
    return os.path.dirname(found[-1])


@contextlib.contextmanager
def server(durable: bool = False) -> Iterator[str]:
    """An admin URL of a PostgreSQL server for the length of the block. Unless `durable`, commits skip the
    disk (fsync off: bulk loads); `durable` keeps production's setting, a commit waits for its WAL flush."""
    given = os.environ.get("KASEUM_BENCH_POSTGRES", "")
    if given:
        yield given
        return
    pg = _bin()
    root = tempfile.mkdtemp(prefix="kaseum-bench-pg-")
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(root, "postgres")
    port = free_port()
    data = os.path.join(root, "data")
    subprocess.run([*as_postgres, f"{pg}/initdb", "-A", "trust", "-U", "postgres", "-D", data],
                   check=True, capture_output=True)
    subprocess.run([*as_postgres, f"{pg}/pg_ctl", "-D", data, "-l", os.path.join(root, "log"), "-w", "-o",
                    f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c shared_buffers=256MB"
                    + ("" if durable else " -c fsync=off"),
                    "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_postgres, f"{pg}/pg_ctl", "-D", data, "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def database(admin_url: str, prefix: str) -> Iterator[str]:
    """A fresh database on the server, dropped afterwards."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
