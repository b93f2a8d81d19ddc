"""Retention purge under load (issue 4): 1,000,000 expired tickets purged in batches while tickets are created.

    .venv/bin/python bench/purge.py [--rows 1000000] [--rate 40] [--threads 4] [--window 5]
                                    [--batch 1000] [--pause 0.01] [--max-batch 0.05]
                                    [--database-url URL]

The tickets service's own code on a real database (SQLite in a temporary folder by default;
PostgreSQL with --database-url, or KASEUM_TEST_POSTGRES as CI sets it: a fresh database is made):

1. migrate the tickets schema and seed `--rows` tickets closed seven years ago (past the six-year
   retention of tickets/governance.py), spread over 10,000 requesters, each with its search-index row;
2. create tickets through TicketsService.open (the rules, the unit of work, the outbox row) from
   `--threads` threads at `--rate` per second in total, open loop (latency is measured from each
   creation's due time, so waiting behind the purge counts), all along;
3. meanwhile the servicekit Purger applies the tickets retention schedule, in alternating windows of
   `--window` seconds with it and half as long without (side by side, so a busy machine weighs on both),
   in batches of
   at most `--batch` rows, shrunk while one takes longer than `--max-batch` seconds, each followed by a
   pause at least as long as the batch (the deployment's RETENTION_BATCH_SIZE,
   RETENTION_MAX_BATCH_SECONDS and RETENTION_BATCH_PAUSE_SECONDS), as `runtime.every` runs it in the
   service process;
4. the verdicts: the purge finished (every expired ticket gone, none of the new ones touched, a purge
   run recorded with the count), and creation p99 during the purge under 2× the baseline p99.

The load runs in the purging process on purpose: in production the purge job is a thread of the service
process (runtime.every), sharing its interpreter and its database connections with the requests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RATIO_TARGET = 2.0
REQUESTERS = 10_000
SEED_CHUNK = 20_000


@dataclass(frozen=True)
class Latencies:
    samples: list[float]
    errors: int

    def pct(self, q: float) -> float:
        if not self.samples:
            return 0.0
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def p50_ms(self) -> float:
        return self.pct(0.50)

    @property
    def p99_ms(self) -> float:
        return self.pct(0.99)

    def line(self) -> str:
        mean = statistics.fmean(self.samples) * 1000 if self.samples else 0.0
        return (f"{len(self.samples)} created, {self.errors} errors, p50 {self.p50_ms:.1f} ms, "
                f"p99 {self.p99_ms:.1f} ms, mean {mean:.1f} ms, max {self.pct(1.0):.1f} ms")


@dataclass(frozen=True)
class PurgeResult:
    rows: int
    seed_s: float
    baseline: Latencies
    during: Latencies
    purge_s: float
    purged: int
    batches: int
    left_expired: int
    new_tickets_kept: bool
    run_recorded: bool
    database: str

    @property
    def ratio(self) -> float:
        return self.during.p99_ms / self.baseline.p99_ms if self.baseline.p99_ms else 0.0

    @property
    def finished(self) -> bool:
        return self.left_expired == 0 and self.purged >= self.rows and self.new_tickets_kept and self.run_recorded


def fresh_postgres(admin_url: str) -> str:
    import psycopg

    name = f"k_bench_purge_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def seed(url: str, rows: int, closed_at: datetime) -> None:
    """`rows` closed tickets, in chunks (COPY on PostgreSQL, executemany on SQLite)."""
    created = closed_at - timedelta(days=30)

    def chunk(start: int, end: int) -> list[tuple[object, ...]]:
        return [(f"{i:032x}", f"{i % REQUESTERS:032x}", "Expired ticket", "Closed long ago.", "", "closed", "uk",
                 created, created, closed_at) for i in range(start, end)]

    columns = "id, requester_id, subject, body, product, status, region, created_at, updated_at, closed_at"
    if url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(url) as conn, conn.cursor() as cur:
            for start in range(0, rows, SEED_CHUNK):
                batch = chunk(start, min(rows, start + SEED_CHUNK))
                with cur.copy(f"COPY tickets ({columns}) FROM STDIN") as copy:
                    for row in batch:
                        copy.write_row(row)
                with cur.copy("COPY ticket_search (ticket_id, content) FROM STDIN") as copy:
                    for row in batch:
                        copy.write_row((row[0], f"{row[2]}\n{row[3]}"))
            conn.commit()
            cur.execute("ANALYZE tickets")
            conn.commit()
        return
    import sqlite3

    conn = sqlite3.connect(url.split("///", 1)[1])
    try:
        for start in range(0, rows, SEED_CHUNK):
            batch = chunk(start, min(rows, start + SEED_CHUNK))
            conn.executemany("INSERT INTO ticket_search (rowid, ticket_id, content) VALUES (?, ?, ?)",
                             [(start + n + 1, r[0], f"{r[2]}\n{r[3]}") for n, r in enumerate(batch)])
            conn.executemany("INSERT INTO ticket_search_rows (ticket_id, fts_rowid) VALUES (?, ?)",
                             [(r[0], start + n + 1) for n, r in enumerate(batch)])
            conn.executemany(f"INSERT INTO tickets ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             [(*r[:7], *(d.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")  # type: ignore[attr-defined]
                               for d in r[7:])) for r in chunk(start, min(
                                 rows, start + SEED_CHUNK))])  # type: ignore[attr-defined]
            conn.commit()
        conn.execute("ANALYZE")
        conn.commit()
    finally:
        conn.close()


class Windows:
    """Alternating windows, `off` seconds without the purge then `on` seconds with it, from `start`.

    Creations due in an "on" window count as "during the purge"; those due in an "off" window (except
    just after an "on" one, while a last batch may still finish) as "without it". Measured side by side
    in one run, both see the same machine: a busy neighbour slows both, not one.
    """

    def __init__(self, off: float, on: float, grace: float = 0.5) -> None:
        self.off, self.on, self.grace = off, on, grace
        self.start = time.monotonic()

    def active(self, t: float) -> bool:
        return (t - self.start) % (self.off + self.on) >= self.off

    def label(self, t: float) -> str:
        if self.active(t):
            return "during"
        return "" if self.active(t - self.grace) else "without"

    def sleep(self, seconds: float) -> None:
        """The purger's pause: its own, then until the next "on" window."""
        time.sleep(seconds)
        while not self.active(time.monotonic()):
            time.sleep(0.01)


def create_load(service: object, rate: float, threads: int, stop: threading.Event, created: list[str],
                label: Callable[[float], str]) -> dict[str, Latencies]:
    """Open loop: creation i is due at start + i/rate; latency counts from the due time."""
    from servicekit.testing import person

    samples: dict[str, list[float]] = {"during": [], "without": [], "": []}
    errors = [0]
    lock = threading.Lock()
    start = time.monotonic()
    counter = [0]

    def worker() -> None:
        while not stop.is_set():
            with lock:
                i = counter[0]
                counter[0] += 1
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if stop.is_set():
                return
            try:
                ticket = service.open(person(f"{i % 97:032x}"), "Benchmark ticket",  # type: ignore[attr-defined]
                                      "Opened during the purge benchmark.", "")
                elapsed = time.monotonic() - due
                with lock:
                    samples[label(due)].append(elapsed)
                    created.append(ticket.id)
            except Exception:
                with lock:
                    errors[0] += 1

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    stop.wait()
    for t in pool:
        t.join(30)
    return {k: Latencies(v, errors[0] if k == "during" else 0) for k, v in samples.items()}


def run_purge_bench(rows: int, rate: float, threads: int, window_s: float, batch: int, pause: float,
                    database_url: str = "", say: object = print, max_batch: float = 0.010,
                    yield_factor: float = 3.0) -> PurgeResult:
    from servicekit import migrations
    from servicekit.db import UnitOfWorkFactory, make_engine
    from servicekit.outbox import OutboxWriter
    from servicekit.retention import Purger
    from servicekit.testing import person
    from sqlalchemy import func, select, text
    from sqlalchemy.orm import sessionmaker
    from tickets.__main__ import MIGRATIONS
    from tickets.governance import RETENTION
    from tickets.models import Outbox, PurgeRun, Repository, Ticket
    from tickets.service import TicketsService

    echo = say if callable(say) else print
    folder = Path(tempfile.mkdtemp(prefix="kaseum-bench-purge-"))
    admin = os.environ.get("KASEUM_TEST_POSTGRES", "")
    url = database_url or (fresh_postgres(admin) if admin else f"sqlite:///{folder}/tickets.db")
    database = url.split(":", 1)[0]
    try:
        migrations.upgrade(MIGRATIONS, url)
        now = datetime.now(UTC)
        t = time.monotonic()
        seed(url, rows, now - timedelta(days=7 * 365))
        seed_s = time.monotonic() - t
        echo(f"  {rows:,} expired tickets seeded in {seed_s:.1f} s ({database})")
        engine = make_engine(url)
        sessions = sessionmaker(engine, expire_on_commit=False)
        service = TicketsService(UnitOfWorkFactory(sessions, Repository, OutboxWriter(Outbox, "uk")), "uk")
        created: list[str] = []
        for _ in range(20):  # warm-up, unmeasured: connections, statement caches, the first write
            created.append(service.open(person("f" * 32), "Warm-up", "Unmeasured.", "").id)

        stop = threading.Event()
        windows = Windows(off=window_s / 2, on=window_s)
        outcome: dict[str, float] = {}

        def purge() -> None:
            purger = Purger(RETENTION, sessions, PurgeRun, batch_size=batch, pause=pause,
                            max_batch_seconds=max_batch, yield_factor=yield_factor, sleep=windows.sleep)
            windows.sleep(0)  # the first window is without the purge
            began = time.monotonic()
            results = purger.run_once()
            outcome["seconds"] = time.monotonic() - began
            outcome["purged"] = sum(r.purged for r in results)
            outcome["batches"] = sum(r.batches for r in results)
            # One more window without the purge.
            time.sleep(window_s / 2 + windows.grace)
            stop.set()

        purging = threading.Thread(target=purge, daemon=True)
        purging.start()
        measured = create_load(service, rate, threads, stop, created, windows.label)
        purging.join()
        baseline, during = measured["without"], measured["during"]
        echo(f"  {rate:g} creations/s from {threads} threads, open loop; the purge on for {window_s:g} s, off for "
             f"{window_s / 2:g} s, and so on:")
        echo(f"  without the purge: {baseline.line()}")
        echo(f"  during the purge:  {during.line()}")
        with sessions() as session:
            left = session.scalar(select(func.count()).select_from(Ticket).where(Ticket.closed_at.is_not(None))) or 0
            left += session.scalar(text("SELECT count(*) FROM ticket_search WHERE ticket_id < :n"),
                                   {"n": f"{rows:032x}"}) or 0
            kept = session.scalar(select(func.count()).select_from(Ticket).where(Ticket.id.in_(created[:5000]))) or 0
            recorded = session.scalar(select(func.sum(PurgeRun.purged))) or 0
        engine.dispose()
        return PurgeResult(rows, seed_s, baseline, during, outcome.get("seconds", 0.0), int(outcome.get("purged", 0)),
                           int(outcome.get("batches", 0)), int(left), kept == min(len(created), 5000),
                           int(recorded) == int(outcome.get("purged", -1)), database)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def report(r: PurgeResult, say: object = print) -> None:
    echo = say if callable(say) else print
    rate = r.purged / r.purge_s if r.purge_s else 0.0
    echo(f"purge of {r.rows:,} expired tickets ({r.database}): {r.purged:,} rows deleted in {r.batches} batches, "
         f"{r.purge_s:.1f} s ({rate:,.0f} rows/s); expired left {r.left_expired}; new tickets untouched: "
         f"{'yes' if r.new_tickets_kept else 'NO'}; purge run recorded with its count: "
         f"{'yes' if r.run_recorded else 'NO'} → the purge finishes: {'met' if r.finished else 'NOT MET'}")
    echo(f"ticket creation p99: {r.baseline.p99_ms:.1f} ms without the purge, {r.during.p99_ms:.1f} ms during it "
         f"→ {r.ratio:.2f}×, target < {RATIO_TARGET:.0f}×: {'met' if r.ratio < RATIO_TARGET else 'NOT MET'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="expired tickets to purge")
    parser.add_argument("--rate", type=float, default=40.0, help="ticket creations per second (total)")
    parser.add_argument("--threads", type=int, default=4, help="threads creating tickets")
    parser.add_argument("--window", type=float, default=5.0,
                        help="seconds of each window with the purge (those without it last half as long)")
    parser.add_argument("--batch", type=int, default=1000, help="rows per purge batch (one transaction each)")
    parser.add_argument("--pause", type=float, default=0.01, help="least seconds between purge batches")
    parser.add_argument("--max-batch", type=float, default=0.010,
                        help="a batch taking longer shrinks (RETENTION_MAX_BATCH_SECONDS)")
    parser.add_argument("--yield-factor", type=float, default=3.0,
                        help="pause after a batch, as a multiple of its duration (RETENTION_YIELD_FACTOR)")
    parser.add_argument("--database-url", default="", help="tickets database (default: a fresh SQLite file, or a "
                                                         "fresh PostgreSQL database when KASEUM_TEST_POSTGRES is set)")
    args = parser.parse_args(argv)
    result = run_purge_bench(args.rows, args.rate, args.threads, args.window, args.batch, args.pause,
                             args.database_url, max_batch=args.max_batch, yield_factor=args.yield_factor)
    report(result)
    return 0 if result.finished and result.ratio < RATIO_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
