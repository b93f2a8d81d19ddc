"""Retention schedules and the purge job (notice section 12; R-RET-1, R-RET-2).

A service declares its schedule in one place (its `governance.py`): one `RetentionRule` per
category and trigger, each with a purge function from its models.py that deletes at most `limit`
due records (those whose trigger fell before the cut-off, and no active legal hold covers) and
returns (records found due, rows deleted). The `Purger` applies every rule in batches, each
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

from dateutil.relativedelta import relativedelta
from sqlalchemy import BigInteger, DateTime, String
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from .db import new_id, utcnow
from .logs import get_logger

log = get_logger(__name__)
NONE = {"category": "none"}

# (session, cut-off, limit) -> (records found due in this batch, rows deleted)
PurgeBatch = Callable[[Session, datetime, int], tuple[int, int]]


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
    """Applies a schedule in batches of `batch_size`, `pause` seconds apart (yielding to requests)."""

    def __init__(self, rules: Sequence[RetentionRule], session_factory: sessionmaker[Session],
                 run_model: type[PurgeRunMixin], clock: Callable[[], datetime] = utcnow,
                 batch_size: int = 1000, pause: float = 0.0) -> None:
        self.rules = [r for r in rules if r.purge is not None]
        self.session_factory = session_factory
        self.run_model = run_model
        self.clock = clock
        self.batch_size = batch_size
        self.pause = pause

    def run_rule(self, rule: RetentionRule) -> RunResult:
        assert rule.purge is not None
        started = self.clock()
        cutoff = rule.cutoff(started)
        purged = batches = 0
        while True:
            with self.session_factory() as session:
                found, deleted = rule.purge(session, cutoff, self.batch_size)
                session.commit()
            batches += 1
            purged += deleted
            if found < self.batch_size:
                break
            if self.pause:
                time.sleep(self.pause)  # let request transactions take the write lock between batches
        if purged:
            with self.session_factory() as session:
                run = self.run_model()
                run.id, run.rule, run.started_at, run.finished_at = new_id(), rule.name, started, self.clock()
                run.cutoff, run.purged, run.batches = cutoff, purged, batches
                session.add(run)
                session.commit()
            log.info("purged", rule=rule.name, rows=purged, batches=batches)
        return RunResult(rule.name, purged, batches, cutoff)

    def run_once(self) -> list[RunResult]:
        return [self.run_rule(rule) for rule in self.rules]
