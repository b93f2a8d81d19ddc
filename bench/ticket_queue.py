"""The agent queue and text search over many tickets on PostgreSQL (issue 5).

    .venv/bin/python bench/ticket_queue.py [--sizes 10000,100000,1000000] [--queries 300]

One database (on a private PostgreSQL server, see bench/postgres.py) grows through `--sizes` stored
tickets; at each size the tickets service's own rules and repository (TicketsService.page, the code
behind GET /api/v1/tickets, without the HTTP and gRPC hops the stack benchmark measures) answer, as
an agent:
  queue   — a mix of first pages, filtered pages (status, priority, organisation, assignee) and
            next pages from a cursor at a random depth (keyset pagination: no OFFSET);
  search  — `q=` with a common word (in 2 % of tickets) and with a rare one.
p50/p99 of each, and how the queue's p50 grows from the smallest to the largest size.
Targets: queue p99 < 50 ms and search p99 < 100 ms at 100,000 tickets; queue p50 at the largest size
at most 1.2× the smallest's. Tickets are made server-side (generate_series), one a second.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import postgres  # noqa: E402

QUEUE_P99_TARGET_MS = 50.0
SEARCH_P99_TARGET_MS = 100.0
GROWTH_TARGET = 1.2
WORDS = ["printer", "invoice", "password", "billing", "export", "crash", "licence", "upgrade", "network", "backup"]
ORGANISATIONS = 500
AGENTS = 20


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p99_ms: float

    def line(self) -> str:
        return f"p50 {self.p50_ms:6.2f} ms  p99 {self.p99_ms:6.2f} ms"


def timed(calls: list[Callable[[], object]]) -> Latency:
    for call in calls[:10]:
        call()  # warm the plan and the buffers
    times = []
    for call in calls:
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    times.sort()
    return Latency(statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))])


def grow(url: str, start: int, stop: int) -> None:
    """Tickets start+1..stop, spread over 30 days, and their search rows, made by the server."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"""
            INSERT INTO tickets (id, requester_id, subject, body, product, status, region, created_at, updated_at,
                                 priority, assignee_id, organisation_id, requester_country)
            SELECT md5('t' || i), md5('r' || (i % 50000)),
                   'Ticket ' || i || ' about the ' || (ARRAY{WORDS!r})[1 + i % {len(WORDS)}],
                   'Body of ticket ' || i || ' word' || (i % 50) || ' unique' || i,
                   (ARRAY['portal', 'api', 'desktop'])[1 + i % 3],
                   (ARRAY['open', 'pending', 'resolved', 'closed'])[1 + i % 4], 'uk',
                   timestamptz '2026-10-01' + i * interval '1 second',
                   timestamptz '2026-10-01' + i * interval '1 second',
                   (ARRAY['low', 'normal', 'high', 'urgent'])[1 + (i / 4) % 4],
                   CASE WHEN i % 3 = 0 THEN md5('a' || (i % {AGENTS})) ELSE '' END,
                   md5('o' || (i % {ORGANISATIONS})), 'GB'
            FROM generate_series({start + 1}, {stop}) AS i""")
        conn.execute(f"""
            INSERT INTO ticket_search (ticket_id, content)
            SELECT id, subject || chr(10) || body FROM tickets
            WHERE id IN (SELECT md5('t' || i) FROM generate_series({start + 1}, {stop}) AS i)""")
        conn.execute("VACUUM ANALYZE tickets")
        conn.execute("VACUUM ANALYZE ticket_search")


def measure(url: str, size: int, queries: int) -> tuple[Latency, Latency, Latency]:
    from servicekit import cursors
    from servicekit.caller import Principal
    from servicekit.testing import migrated_uow
    from tickets.__main__ import MIGRATIONS
    from tickets.models import Outbox, Repository
    from tickets.service import TicketsService

    uow = migrated_uow(MIGRATIONS, url, Outbox, Repository)
    service = TicketsService(uow, "uk")
    agent = Principal("person", "f" * 32, "agent", "uk", "bench")
    rng = random.Random(size)
    import hashlib

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    def at_depth() -> str:
        when = datetime(2026, 10, 1, tzinfo=UTC).timestamp() + rng.random() * size
        return cursors.encode(datetime.fromtimestamp(when, UTC), "f" * 32)

    queue: list[Callable[[], object]] = []
    for n in range(queries):
        kind = n % 6
        filters: dict[str, str] = {}
        cursor = ""
        if kind == 1:
            filters = {"status": rng.choice(["open", "pending", "resolved", "closed"])}
        elif kind == 2:
            filters = {"priority": "urgent", "status": "open"}
        elif kind == 3:
            filters = {"organisation_id": md5(f"o{rng.randrange(ORGANISATIONS)}")}
        elif kind == 4:
            filters = {"assignee_id": md5(f"a{rng.randrange(AGENTS)}")}
        elif kind == 5:
            cursor = at_depth()
        queue.append(lambda f=filters, c=cursor: service.page(agent, f, c, 20))
    common = [lambda w=rng.choice(WORDS): service.page(agent, {}, "", 20, query=w) for _ in range(queries // 2)]
    rare = [lambda i=rng.randrange(1, size): service.page(agent, {}, "", 20, query=f"unique{i}")
            for _ in range(queries // 2)]
    result = timed(queue), timed(common), timed(rare)
    uow.session_factory.kw["bind"].dispose()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="stored tickets at each measurement")
    parser.add_argument("--queries", type=int, default=300, help="queue listings per size (half as many searches "
                                                                 "of each kind)")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    print(f"Tickets queue and search on PostgreSQL: sizes {sizes}, {args.queries} listings per size")
    try:
        with postgres.server() as admin, postgres.database(admin, "bench_queue") as url:
            from servicekit.migrations import upgrade
            from tickets.__main__ import MIGRATIONS

            upgrade(MIGRATIONS, url)
            stored, rows = 0, []
            for size in sizes:
                began = time.monotonic()
                grow(url, stored, size)
                stored = size
                queue, common, rare = measure(url, size, args.queries)
                rows.append((size, queue, common, rare))
                print(f"  {size:>9,} tickets (made in {time.monotonic() - began:5.1f} s): queue {queue.line()} | "
                      f"search, common word {common.line()} | rare word {rare.line()}", flush=True)
    except postgres.NoPostgres as exc:
        print(f"queue benchmark not run: {exc}")
        return 1
    report(rows)
    return 0


def report(rows: list[tuple[int, Latency, Latency, Latency]]) -> None:
    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT MET"

    at = {size: (queue, common, rare) for size, queue, common, rare in rows}
    if 100_000 in at:
        queue, common, rare = at[100_000]
        search = max(common.p99_ms, rare.p99_ms)
        print(f"at 100,000 tickets: agent queue p99 {queue.p99_ms:.2f} ms (target < {QUEUE_P99_TARGET_MS:.0f}: "
              f"{verdict(queue.p99_ms < QUEUE_P99_TARGET_MS)}); search p99 {search:.2f} ms "
              f"(target < {SEARCH_P99_TARGET_MS:.0f}: {verdict(search < SEARCH_P99_TARGET_MS)})")
    (small, first), (large, last) = (rows[0][0], rows[0][1]), (rows[-1][0], rows[-1][1])
    growth = last.p50_ms / first.p50_ms if first.p50_ms else 0.0
    print(f"queue p50 growth {small:,} → {large:,} tickets: {growth:.2f}× (target ≤ {GROWTH_TARGET}: "
          f"{verdict(growth <= GROWTH_TARGET)})")


if __name__ == "__main__":
    sys.exit(main())
