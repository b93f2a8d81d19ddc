"""The purge runner: short batches that shrink when slow, a pause that yields to requests, counts recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from servicekit.db import new_id
from servicekit.holds import not_held, placed
from servicekit.retention import Batch, Key, Purger, RetentionRule
from servicekit.testing import Clock
from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session

from .conftest import Db, LegalHold, PurgeRun, Record

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def purge_records(session: Session, cutoff: datetime, limit: int, after: Key | None) -> Batch:
    query = select(Record.id, Record.closed_at).where(Record.closed_at < cutoff,
                                                      not_held(LegalHold, "subject", Record.subject_id))
    if after is not None:
        query = query.where(tuple_(Record.closed_at, Record.id) > tuple_(*after))
    rows = list(session.execute(query.order_by(Record.closed_at, Record.id).limit(limit)))
    if not rows:
        return Batch(0, 0, after)
    session.execute(delete(Record).where(Record.id.in_([r.id for r in rows])))
    return Batch(len(rows), len(rows), (rows[-1].closed_at, rows[-1].id))


RULE = RetentionRule("records", "3.2.1", "records", "closure", "test", days=90, purge=purge_records)


class Timer:
    """A batch "takes" whatever the test says; the pauses asked for are recorded, not slept."""

    def __init__(self, durations: list[float]) -> None:
        self.durations, self.now, self.calls, self.pauses = durations, 0.0, 0, []

    def __call__(self) -> float:
        if self.calls % 2 == 1:  # the end of a batch
            self.now += self.durations[min(self.calls // 2, len(self.durations) - 1)]
        self.calls += 1
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)


def seed(db: Db, count: int, closed: datetime, subject: str = "s" * 32) -> None:
    with db.sessions() as session:
        session.add_all([Record(id=new_id(), subject_id=subject, closed_at=closed) for _ in range(count)])
        session.commit()


@pytest.mark.notice("12.1")
@pytest.mark.notice("12.2")
@pytest.mark.rule("R-RET-1")
def test_slow_batches_shrink_and_the_purge_yields_twice_as_long_as_it_worked(db: Db) -> None:
    seed(db, 100, NOW - timedelta(days=91))
    timer = Timer([0.2, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01])
    purger = Purger([RULE], db.sessions, PurgeRun, Clock(NOW), batch_size=40, max_batch_seconds=0.05,
                    yield_factor=2.0, sleep=timer.sleep, timer=timer)
    result = purger.run_once()[0]
    assert result.purged == 100
    # 40 took 0.2 s: shrink to 10; quick ones double back up to the cap: batches of 40, 10, 20, then 40
    # of which only 30 were left (fewer than asked: done).
    assert result.batches == 4
    assert timer.pauses[0] == pytest.approx(0.4)  # yield_factor 2 × 0.2 s


@pytest.mark.notice("12.1")
@pytest.mark.rule("R-RET-2")
def test_held_records_are_skipped_and_only_non_empty_runs_are_recorded(db: Db) -> None:
    seed(db, 3, NOW - timedelta(days=100), subject="h" * 32)
    seed(db, 4, NOW - timedelta(days=100))
    seed(db, 2, NOW - timedelta(days=10))
    with db.sessions() as session:
        placed(session, LegalHold, "hold", "subject", "h" * 32, "litigation", NOW + timedelta(days=30))
        session.commit()
    clock = Clock(NOW)
    purger = Purger([RULE], db.sessions, PurgeRun, clock, batch_size=2, sleep=lambda _s: None)
    assert purger.run_once()[0].purged == 4
    assert purger.run_once()[0].purged == 0
    with db.sessions() as session:
        assert session.scalar(select(Record.id).where(Record.subject_id == "s" * 32,
                                                      Record.closed_at < NOW - timedelta(days=90))) is None
        runs = list(session.scalars(select(PurgeRun)))
        assert [(r.rule, r.purged) for r in runs] == [("records", 4)]
        assert len(list(session.scalars(select(Record)))) == 5
