"""Retention schedules and the purge job (notice section 12; R-RET-1, R-RET-2).

A service declares its schedule in one place (its `governance.py`): one `RetentionRule` per
category and trigger, each with a purge function from its models.py that deletes at most `limit`
due records (those whose trigger fell before the cut-off, and no active legal hold covers), in
key order after the previous batch's last key, and returns a `Batch`. The `Purger` applies every rule in batches, each
batch its own short transaction, so request traffic interleaves; it runs off the hot path
(`runtime.every`) and records what it purged — counts, never contents — in `purge_runs`
(only runs that removed something, so an idle job does not fill the table).
Time comes from an injected clock, so tests move it instead of sleeping.

To adopt in a service: 1. `class PurgeRun(PurgeRunMixin, Base)`; 2. a `RetentionRule` per
category with its purge function; 3. pass the rules to `runtime.governance(...)`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import BigInteger, DateTime, String, text
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from .db import new_id, utcnow
from .logs import get_logger

log = get_logger(__name__)
NONE = {"category": "none"}

Key = tuple[Any, ...]


@dataclass(frozen=True)
class Batch:
    """What one purge batch did: records found due, rows deleted, and where the next batch starts."""

    found: int
    deleted: int
    # The last key visited (e.g. (closed_at, id)): the next batch continues after it, so a batch never
    # walks past rows earlier batches deleted (PostgreSQL keeps them in indexes until vacuum) or kept.
    last: Key | None = None


# (session, cut-off, limit, continue after this key or None) -> Batch
PurgeBatch = Callable[[Session, datetime, int, Key | None], Batch]


@dataclass(frozen=True)
class RetentionRule:
    name: str
    category: str
    what: str
    trigger: str
    reason: str
    days: int = 0
    months: int = 0
    purge: PurgeBatch | None = None  # None: kept as declared, removed by another path (said in `reason`)
    covers: tuple[str, ...] = ()  # further categories the same records hold (e.g. ids, 3.2.1)
    # Run after `purge` when it removed something: derived data to clear (e.g. a search index).
    then: PurgeBatch | None = None

    @property
    def period(self) -> str:
        if self.months and self.months % 12 == 0:
            years = self.months // 12
            return f"{years} year{'s' if years != 1 else ''}" + (f" and {self.days} days" if self.days else "")
        if self.months:
            return f"{self.months} months" + (f" and {self.days} days" if self.days else "")
        return f"{self.days} days" if self.days else "while the trigger lasts"

    def cutoff(self, now: datetime) -> datetime:
        return now - relativedelta(months=self.months, days=self.days)


class PurgeRunMixin:
    __tablename__ = "purge_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, info=NONE)
    rule: Mapped[str] = mapped_column(String(60), info=NONE)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True, info=NONE)
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=NONE)
    cutoff: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=NONE)
    purged: Mapped[int] = mapped_column(BigInteger, info=NONE)
    batches: Mapped[int] = mapped_column(BigInteger, info=NONE)


@dataclass(frozen=True)
class RunResult:
    rule: str
    purged: int
    batches: int
    cutoff: datetime


class Purger:
    """Applies a schedule in batches, each its own transaction, yielding to requests between them.

    Batches start at `batch_size` rows and shrink while one takes longer than `max_batch_seconds`
    (growing back when quick), so no purge transaction holds locks long (on SQLite the database's
    single write lock); after each batch the purge waits `yield_factor` times as long as the batch
    took (and at least `pause`), so it takes at most 1/(1+yield_factor) of the database's time.
    """

    def __init__(self, rules: Sequence[RetentionRule], session_factory: sessionmaker[Session],
                 run_model: type[PurgeRunMixin], clock: Callable[[], datetime] = utcnow,
                 batch_size: int = 1000, pause: float = 0.0, max_batch_seconds: float = 0.010,
                 yield_factor: float = 3.0, sleep: Callable[[float], None] = time.sleep,
                 timer: Callable[[], float] = time.monotonic) -> None:
        self.rules = [r for r in rules if r.purge is not None]
        self.session_factory = session_factory
        self.run_model = run_model
        self.clock = clock
        self.batch_size = batch_size
        self.pause = pause
        self.max_batch_seconds = max_batch_seconds
        self.yield_factor = yield_factor
        self.sleep = sleep
        self.timer = timer

    def run_rule(self, rule: RetentionRule) -> RunResult:
        assert rule.purge is not None
        started = self.clock()
        cutoff = rule.cutoff(started)
        purged, batches = self._batches(rule.purge, cutoff)
        if purged and rule.then is not None:
            more, extra = self._batches(rule.then, cutoff)
            purged, batches = purged + more, batches + extra
        if purged:
            with self.session_factory() as session:
                run = self.run_model()
                run.id, run.rule, run.started_at, run.finished_at = new_id(), rule.name, started, self.clock()
                run.cutoff, run.purged, run.batches = cutoff, purged, batches
                session.add(run)
                session.commit()
            log.info("purged", rule=rule.name, rows=purged, batches=batches)
        return RunResult(rule.name, purged, batches, cutoff)

    def _batches(self, purge: PurgeBatch, cutoff: datetime) -> tuple[int, int]:
        """Run `purge` batch after batch until one finds fewer than it asked for: (rows deleted, batches)."""
        purged = batches = 0
        size = self.batch_size
        after: Key | None = None
        while True:
            began = self.timer()
            with self.session_factory() as session:
                batch = purge(session, cutoff, size, after)
                session.commit()
                if session.get_bind().dialect.name == "sqlite":
                    # Copy the batch's pages from the WAL into the database now, on the purge's time:
                    # otherwise the next request to commit runs that checkpoint and waits for it.
                    session.execute(text("PRAGMA wal_checkpoint(PASSIVE)"))
            took = self.timer() - began
            batches += 1
            purged += batch.deleted
            after = batch.last
            if batch.found < size:
                return purged, batches
            if took > self.max_batch_seconds:
                size = max(min(10, self.batch_size), int(size * self.max_batch_seconds / took))
            elif took < self.max_batch_seconds / 2:
                size = min(self.batch_size, size * 2)
            # Yield to requests: the purge is background work and must stay off the hot path.
            self.sleep(max(self.pause, took * self.yield_factor))

    def run_once(self) -> list[RunResult]:
        return [self.run_rule(rule) for rule in self.rules]
