# ruff: noqa: E402  (imports follow the sys.path fix below)
"""Analytics' figures (issue 8), each beside a plain baseline measured in the same run:

1. ingest: usage events through NATS JetStream into the store (the service's batch consumer writing
   SQLite) against a bare JetStream pull consumer that only fetches and acks; target ratio ≥ 0.5;
2. roll-up of `--events` events (default 10 million, spread over a year of days: every dimension,
   the day's released cells, the events deleted) against a plain SQL `GROUP BY day, feature`
   counting distinct pseudonyms on the raw rows; target < 120 s; with the process's peak memory
   before and after (a streamed roll-up does not raise it with the number of events);
3. query latency over a year of daily aggregates (p99 of the analyst's query, suppression included,
   after one untimed query, start-up objects frozen as the serving process has them) against the
   same question as a `GROUP BY` on the raw rows; target p99 < 20 ms and ≥ 10× faster.

    .venv/bin/python bench/analytics.py [--events 10000000] [--ingest 50000] [--queries 200]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on the path and its name would hide the
# analytics package: put the repository root there instead (for `tools` too).
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(_ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import asyncio
import gc
import resource
import statistics
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, date, datetime

import nats
from analytics.__main__ import MIGRATIONS
from analytics.ingest import UsageConsumer
from analytics.models import Outbox, Repository
from analytics.queries import AnalyticsQueries
from analytics.service import AnalyticsService
from kaseum.events.v1 import gateway_events_pb2 as gw
from servicekit.bus import Bus, ensure_streams, stream_name
from servicekit.caller import Principal
from servicekit.outbox import envelope
from servicekit.pseudonyms import Exclusions, PseudonymKeys, pseudonym
from servicekit.testing import migrated_uow
from sqlalchemy import text

from tools.stack import free_port, nats_server_binary

REGION = "uk"
FEATURES = [f"feature.f{i}" for i in range(10)]
FIRST_DAY = date(2024, 1, 1)


def say(line: str = "") -> None:
    print(line, flush=True)


async def publish(url: str, n: int, subject: str) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure_streams(js, REGION)
    key = b"k" * 32
    pending = []
    for i in range(n):
        env = envelope("gateway.usage.feature_used", REGION, "", gw.FeatureUsed(
            feature=FEATURES[i % 10], pseudonym=pseudonym(key, str(i % 5000)), period="2025-03-10",
            product="billing", org_size_band="10-49"))
        pending.append(await js.publish_async(subject, env.SerializeToString(), headers={"Nats-Msg-Id": env.id}))
        if len(pending) >= 2000:
            await asyncio.gather(*pending)
            pending = []
    await asyncio.gather(*pending)
    await nc.close()


async def bare_consumer(url: str, n: int, subject: str) -> float:
    nc = await nats.connect(url)
    js = nc.jetstream()
    sub = await js.pull_subscribe(subject, durable=f"bare-{uuid.uuid4().hex[:6]}", stream=stream_name(REGION))
    start, seen = time.perf_counter(), 0
    while seen < n:
        for msg in await sub.fetch(1000, timeout=5):
            await msg.ack()
            seen += 1
    elapsed = time.perf_counter() - start
    await nc.close()
    return n / elapsed


def bench_ingest(var: Path, url: str, n: int) -> tuple[float, float]:
    subject = f"{REGION}.gateway.usage.feature_used"
    asyncio.run(publish(url, n, subject))
    bare = asyncio.run(bare_consumer(url, n, subject))
    uow = migrated_uow(MIGRATIONS, f"sqlite:///{var}/ingest.db", Outbox, Repository, REGION)
    bus = Bus(url, REGION, "analytics-bench")
    service = AnalyticsService(uow, REGION, PseudonymKeys(bus, REGION), Exclusions(bus, REGION))
    consumer = UsageConsumer(bus, REGION, service)
    consumer.start()
    bus.start()
    # Timed from the connection, as the bare consumer is (its connection is not timed either).
    while bus.js is None:
        time.sleep(0.001)
    start = time.perf_counter()
    while consumer.stored < n:
        time.sleep(0.01)
    ours = n / (time.perf_counter() - start)
    bus.stop()
    return ours, bare


def fill(var: Path, events: int) -> tuple[str, Path]:
    """`events` raw usage rows over a year: 10 features, 20 000 people, 3 products, 4 size bands."""
    path = var / "rollup.db"
    url = f"sqlite:///{path}"
    migrated_uow(MIGRATIONS, url, Outbox, Repository, REGION)
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"""
        WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < {events - 1})
        INSERT INTO usage_events (id, day, region, feature, pseudonym, product, size_band)
        SELECT printf('%032x', n), date('{FIRST_DAY.isoformat()}', '+' || (n % 366) || ' days'), 'uk',
               'feature.f' || (n / 366 % 10), (n * 7919) % 20000,
               CASE n % 3 WHEN 0 THEN 'billing' WHEN 1 THEN 'support' ELSE 'portal' END,
               CASE (n * 7919) % 20000 % 4 WHEN 0 THEN '1-9' WHEN 1 THEN '10-49' WHEN 2 THEN '50-249'
                    ELSE '250+' END
        FROM seq
        -- Sorted first, so the rows append to the table's key order (day, pseudonym, id) instead
        -- of landing at random places in it; the rows are the same either way.
        ORDER BY 2, 5, 1""")
    conn.commit()
    conn.close()
    return url, path


def timed_sql(url: str, sql: str, **params: object) -> float:
    from servicekit.db import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        start = time.perf_counter()
        conn.execute(text(sql), params).all()
        elapsed = time.perf_counter() - start
    engine.dispose()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000, help="raw events rolled up (default 10 million)")
    parser.add_argument("--ingest", type=int, default=50_000, help="events through NATS (default 50 000)")
    parser.add_argument("--queries", type=int, default=200, help="analyst queries timed (default 200)")
    args = parser.parse_args(argv)
    var = Path(tempfile.mkdtemp(prefix="kaseum-bench-analytics-"))
    port = free_port()
    server = subprocess.Popen([nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd",
                               str(var / "nats")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        url = f"nats://127.0.0.1:{port}"
        say(f"analytics (issue 8), folder {var}:")
        ours, bare = bench_ingest(var, url, args.ingest)
        say(f"  ingest: {ours:,.0f} events/s into the store; bare JetStream consumer {bare:,.0f}/s; "
            f"ratio {ours / bare:.2f} (target ≥ 0.50)")

        start = time.perf_counter()
        db_url, _ = fill(var, args.events)
        say(f"  generated {args.events:,} raw events over 366 days in {time.perf_counter() - start:.1f} s")
        plain = timed_sql(db_url, "SELECT day, feature, COUNT(DISTINCT pseudonym) FROM usage_events "
                                  "GROUP BY day, feature")
        year_plain = [timed_sql(db_url, "SELECT day, COUNT(DISTINCT pseudonym) FROM usage_events "
                                        "WHERE feature = :f GROUP BY day", f=FEATURES[3]) for _ in range(3)]
        uow = migrated_uow(MIGRATIONS, db_url, Outbox, Repository, REGION)
        clock = datetime(2025, 2, 1, tzinfo=UTC)

        class NoKeys:
            def key(self, day: date, create: bool = False) -> bytes | None:
                return None

            def destroy_through(self, last: date, days_back: int = 7) -> list[date]:
                return []

        class NoExclusions:
            def set(self, subject_id: str, reason: str, excluded: bool) -> None: ...

            def reasons(self, subject_id: str) -> list[str]:
                return []

            def forget(self, subject_id: str) -> None: ...

        service = AnalyticsService(uow, REGION, NoKeys(), NoExclusions(), clock=lambda: clock)
        peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        start = time.perf_counter()
        days = service.rollup_finished_days()
        rolled = time.perf_counter() - start
        peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        say(f"  roll-up: {args.events:,} events ({len(days)} days, every dimension) in {rolled:.1f} s "
            f"(target < 120 s); plain GROUP BY day, feature: {plain:.1f} s; ratio {rolled / plain:.2f}; "
            f"peak memory {peak_before:.0f} MB before, {peak_after:.0f} MB after")

        queries = AnalyticsQueries(uow, REGION, 10, 10.0, 2.0, b"k" * 32)
        analyst = Principal("person", "bench-analyst", "analyst", REGION, "s")
        # As a serving process is by then: start-up objects frozen (`python -m analytics serve`
        # does it once bootstrapped) and the statements compiled by a first, untimed query.
        gc.freeze()
        queries.feature_usage(analyst, FEATURES[0], "2024-01-01", "2024-12-31", "day")
        times = []
        for i in range(args.queries):
            start = time.perf_counter()
            queries.feature_usage(analyst, FEATURES[i % 10], "2024-01-01", "2024-12-31", "day")
            times.append(time.perf_counter() - start)
        p99 = statistics.quantiles(times, n=100)[98] * 1000
        base = statistics.median(year_plain) * 1000
        say(f"  query, a year of daily aggregates: p50 {statistics.median(times) * 1000:.1f} ms, p99 {p99:.1f} ms "
            f"(target < 20 ms); GROUP BY on the raw rows {base:.0f} ms; {base / p99:.0f}× faster (target ≥ 10×)")
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
