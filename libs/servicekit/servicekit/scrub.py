"""After an erasure, leave no copy of the deleted rows in the database's files (R-ERASE-*).

Deleting a row is not enough for "erasure is physical": SQLite keeps old page images in its
write-ahead log until a checkpoint (its `secure_delete` pragma, set on every connection, zeroes
freed space in the database file itself), and PostgreSQL keeps dead tuples in the table's pages
until VACUUM. `Scrubber.request()` is cheap and called when an Erase commits; `run_once()`, on a
background schedule (runtime.every), does the file-level work at most once per interval however
many erasures came in, so 200 erasures cost a handful of checkpoints, not 200. A service adds its
own file-level work with `also` (tickets: merging its full-text index, whose old segments keep a
deleted document's terms): it runs first, in the same round, so it too is paid once per round.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from .logs import get_logger

log = get_logger(__name__)


class Scrubber:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._due = threading.Event()
        self._first: list[Callable[[Connection], None]] = []

    def also(self, work: Callable[[Connection], None]) -> None:
        """Run `work` (on an autocommit connection) in each round, before the checkpoint or VACUUM."""
        self._first.append(work)

    def request(self) -> None:
        self._due.set()

    @property
    def due(self) -> bool:
        return self._due.is_set()

    def run_once(self) -> bool:
        """Checkpoint and truncate the WAL (SQLite) or VACUUM (PostgreSQL); True when done."""
        if not self._due.is_set():
            return False
        self._due.clear()
        try:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for work in self._first:
                    work(conn)
                if self.engine.dialect.name == "sqlite":
                    busy = conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)")).first()
                    if busy is not None and busy[0]:
                        raise RuntimeError("a reader held the write-ahead log")
                else:
                    conn.execute(text("VACUUM"))
        except Exception:
            # Tried again on the next round: the erased rows are gone from every query already.
            self._due.set()
            log.warning("scrub after erasure postponed")
            return False
        return True
