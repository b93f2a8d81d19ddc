"""Rights' figures (issue 7), on the whole system (tools/stack.py; SQLite, as `make run` ships):

1. erasure across every service: `--erasures` customers, each with a ticket, file an erasure request at
   once (POST /api/v1/rights-requests from their own session); per request, the time from its 202 to
   its completion (the rights database's `completed_at`: the subject's own token stops working when
   identity erases the account). p50/p99, target p99 < 2 s. Beside it, what limits the figure, measured:
   one erasure alone, each service's Erase called straight over gRPC, the orchestrator's steps per second
   and the wait, per request, before its first and its last phase; the write-lock wait on each SQLite
   file (BEGIN IMMEDIATE probed from here while the requests run); the CPU of every process;
2. access export of a long history: a subject with `--tickets` tickets and `--replies` replies, written
   straight into the tickets database in its own schema (search index included, as the service keeps
   it), then an access request through the API: (a) filing to completion, target < 3 s; (b) the ZIP's
   download through GET /api/v1/rights-requests/{id}/export; (c) the peak memory (RSS, sampled every
   10 ms) of the rights process and the gateway during the download beside the ZIP's size, and from
   the filing to the end of the download for that history, then 4× and 8× it (other subjects): flat
   memory means the peak stops rising (held whole, each would add at least its data). Beside it:
   tickets' Export called alone (a stream of bounded pieces), the stored pieces' size, and the ZIP built
   from them in this process, one piece at a time.

Sign-up goes straight to identity over gRPC, each from an address of its own (bench/run.py's sign_up:
identity caps sign-ups per client address, and through the gateway all would come from 127.0.0.1);
everything else goes through the gateway's JSON API.

    .venv/bin/python bench/rights.py [--erasures 200] [--tickets 1000] [--replies 10000] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this file's folder comes first on the path and its name would hide the rights package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from tools.stack import SERVICES, Stack  # noqa: E402

ERASURE_P99_TARGET_S = 2.0
EXPORT_TARGET_S = 3.0
RIGHTS_PATH = "/api/v1/rights-requests"
# A ticket's body and a reply of typical length (about 1,100 and 450 characters).
TICKET_WORDS, REPLY_WORDS = 160, 65
VOCABULARY = ("invoice export billing account page total dashboard error report customer order payment tax "
         "refund credit monthly annual plan seat licence login password reset browser chrome firefox upload "
         "file csv pdf attachment timeout slow failed success retry support agent please thanks urgent "
         "yesterday today morning march april number line column missing wrong duplicate currency pound euro "
         "integration webhook api key token permission admin team colleague organisation settings email "
         "notification reminder screenshot steps expected actual version mobile desktop sync import contact "
         "address phone company department manager approve reject pending closed reopen priority")
WORDS = VOCABULARY.split()
ALONE = 3  # erasures filed one at a time first: the figure with no queue
DIRECT = 3  # customers erased by calling each service's Erase straight over gRPC

Say = Callable[[str], None]


# --- HTTP through the gateway -------------------------------------------------------------------------


def call(base: str, method: str, path: str, token: str = "", body: dict[str, Any] | None = None,
         timeout: float = 60) -> tuple[int, dict[str, Any]]:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    headers = {"Content-Type": "application/json", "User-Agent": "kaseum-bench/1"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=headers)
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(raw or b"{}")
    except ValueError:
        return response.status, {"raw": raw[:200].decode(errors="replace")}


def expect(status: int, answer: dict[str, Any], wanted: int, what: str) -> dict[str, Any]:
    if status != wanted:
        raise RuntimeError(f"{what} answered {status}: {answer}")
    return answer


@dataclass(frozen=True)
class Customer:
    login: str
    token: str
    subject_id: str


def customers(stack: Stack, count: int, with_ticket: bool) -> list[Customer]:
    """New customers, signed in through the gateway, each with one ticket if asked."""
    from bench.run import PASSWORD, sign_up

    base = stack.gateway_url

    def one(login: str) -> Customer:
        token = expect(*call(base, "POST", "/api/v1/sessions", body={"login": login, "password": PASSWORD}),
                       200, "log-in")["token"]
        who = expect(*call(base, "GET", "/api/v1/sessions/current", token), 200, "sessions/current")
        if with_ticket:
            expect(*call(base, "POST", "/api/v1/tickets", token, {
                "subject": "Invoice export fails", "body": f"Export to CSV fails for {login} since Monday."}),
                201, "ticket")
        return Customer(login, str(token), str(who["subject_id"]))

    logins = sign_up(stack, count)
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, logins))


# --- the rights database, read from here ----------------------------------------------------------------


@dataclass(frozen=True)
class Done:
    received_at: datetime
    completed_at: datetime


@dataclass(frozen=True)
class Step:
    request_id: str
    service: str
    phase: int
    attempts: int
    done_at: datetime


class RightsDb:
    def __init__(self, url: str) -> None:
        from servicekit.db import make_engine

        self.engine = make_engine(url)

    def completed(self, ids: list[str]) -> dict[str, Done]:
        from rights.models import RightsRequest
        from servicekit.db import as_utc
        from sqlalchemy import select

        with self.engine.connect() as conn:
            rows = conn.execute(select(RightsRequest.id, RightsRequest.received_at, RightsRequest.completed_at)
                                .where(RightsRequest.id.in_(ids), RightsRequest.status == "completed"))
            return {r[0]: Done(as_utc(r[1]), as_utc(r[2])) for r in rows}

    def wait(self, ids: list[str], timeout: float, poll: float = 0.05) -> dict[str, Done]:
        deadline = time.monotonic() + timeout
        found: dict[str, Done] = {}
        while time.monotonic() < deadline:
            found = self.completed(ids)
            if len(found) == len(ids):
                return found
            time.sleep(poll)
        raise RuntimeError(f"{len(ids) - len(found)} of {len(ids)} requests not completed in {timeout:.0f} s")

    def steps(self, ids: list[str]) -> list[Step]:
        from rights.models import RequestStep
        from servicekit.db import as_utc
        from sqlalchemy import select

        with self.engine.connect() as conn:
            return [Step(r[0], r[1], r[2], r[3], as_utc(r[4])) for r in conn.execute(
                select(RequestStep.request_id, RequestStep.service, RequestStep.phase, RequestStep.attempts,
                       RequestStep.updated_at).where(RequestStep.request_id.in_(ids)))]

    def pieces(self, request_id: str) -> list[tuple[str, int]]:
        """The stored pieces' keys (service, seq), in order: what DownloadExport reads them by."""
        from rights.models import ExportPart
        from sqlalchemy import select

        with self.engine.connect() as conn:
            return [(r[0], r[1]) for r in conn.execute(
                select(ExportPart.service, ExportPart.seq).where(ExportPart.request_id == request_id)
                .order_by(ExportPart.service, ExportPart.seq))]

    def stored_mib(self, request_id: str) -> float:
        """The size of the request's stored pieces."""
        from rights.models import ExportPart
        from sqlalchemy import func, select

        with self.engine.connect() as conn:
            size = conn.execute(select(func.sum(func.length(ExportPart.export)))
                                .where(ExportPart.request_id == request_id)).scalar()
            return float(size or 0) / 2**20

    def piece(self, request_id: str, service: str, seq: int) -> tuple[bytes, bytes]:
        """One stored piece (export, declarations), read alone, as the service reads it."""
        from rights.models import ExportPart
        from sqlalchemy import select

        with self.engine.connect() as conn:
            row = conn.execute(select(ExportPart.export, ExportPart.declarations).where(
                ExportPart.request_id == request_id, ExportPart.service == service,
                ExportPart.seq == seq)).one()
            return bytes(row[0]), bytes(row[1])


# --- measuring from the outside: CPU, memory, the SQLite write lock ----------------------------------------


def cpu_by_process(stack: Stack) -> dict[str, float]:
    from bench.run import _children, descendants, process_cpu_s

    tree = _children()
    return {name: sum(process_cpu_s(p) for p in descendants(proc.pid, tree)) for name, proc in stack.procs.items()}


def settle(stack: Stack, quiet: float = 0.15, window: float = 0.5, windows: int = 3, limit: float = 90.0) -> float:
    """Wait until our processes are quiet (together under `quiet` of one CPU over `windows` windows in a
    row): what the set-up started (the sign-ups' verification mails, their events) is done before a burst
    is measured, so the figure is the burst's alone. Seconds waited."""
    began, calm = time.monotonic(), 0
    while time.monotonic() - began < limit and calm < windows:
        before = sum(cpu_by_process(stack).values())
        time.sleep(window)
        calm = calm + 1 if sum(cpu_by_process(stack).values()) - before < quiet * window else 0
    return time.monotonic() - began


def vm_kib(pid: int, key: str) -> int:
    from bench.run import _kib

    return _kib(f"/proc/{pid}/status", key)


class LockProbe:
    """Times BEGIN IMMEDIATE (SQLite's write lock, held for no time) on each service's file, in turn, every
    `every` seconds: the wait a writer of that database sees at that moment."""

    def __init__(self, files: dict[str, Path], every: float = 0.05) -> None:
        self.files, self.every = files, every
        self.waits: dict[str, list[float]] = {name: [] for name in files}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        conns = {name: sqlite3.connect(path, timeout=30, isolation_level=None) for name, path in self.files.items()}
        try:
            while not self._stop.is_set():
                for name, conn in conns.items():
                    began = time.perf_counter()
                    try:
                        conn.execute("BEGIN IMMEDIATE")
                        self.waits[name].append(time.perf_counter() - began)
                        conn.execute("ROLLBACK")
                    except sqlite3.OperationalError:
                        self.waits[name].append(time.perf_counter() - began)
                self._stop.wait(self.every)
        finally:
            for conn in conns.values():
                conn.close()

    def __enter__(self) -> LockProbe:
        if self.files:
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)


class MemorySampler:
    """The largest RSS seen, every `every` seconds, of each named process tree (gunicorn's workers too)."""

    def __init__(self, pids: dict[str, int], every: float = 0.01) -> None:
        from bench.run import _children, descendants

        tree = _children()
        self.trees = {name: descendants(pid, tree) for name, pid in pids.items()}
        self.every = every
        self.base = {name: self._rss(name) for name in pids}
        self.peak = dict(self.base)
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self, name: str) -> int:
        return sum(vm_kib(p, "VmRSS") for p in self.trees[name])

    def _run(self) -> None:
        while not self._stop.is_set():
            for name in self.trees:
                self.peak[name] = max(self.peak[name], self._rss(name))
            self.samples += 1
            self._stop.wait(self.every)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)


class EraseProbe:
    """Each service's PersonalData.Erase for a subject nobody is (the same queries and write transaction,
    nothing found), called from here every `every` seconds while the requests run: the round trip a step
    sees from the service under that load."""

    def __init__(self, stack: Stack, every: float = 0.1) -> None:
        from kaseum.privacy.v1 import personal_data_pb2_grpc
        from rights.plans import HOLDERS
        from servicekit import caller, clients

        self.credentials = caller.ServiceCredentials(stack.env()["KASEUM_SERVICE_SECRET"].encode(), "cli")
        self.stubs = {s: personal_data_pb2_grpc.PersonalDataStub(clients.channel(stack.grpc_addr(s)))
                      for s in HOLDERS}
        self.every = every
        self.times: dict[str, list[float]] = {s: [] for s in HOLDERS}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import grpc
        from kaseum.privacy.v1 import personal_data_pb2 as pd

        while not self._stop.is_set():
            for service, stub in self.stubs.items():
                began = time.perf_counter()
                with contextlib.suppress(grpc.RpcError):
                    stub.Erase(pd.EraseRequest(subject_id=uuid.uuid4().hex, request_id=uuid.uuid4().hex),
                               metadata=self.credentials.metadata(), timeout=30)
                self.times[service].append(time.perf_counter() - began)
            self._stop.wait(self.every)

    def __enter__(self) -> EraseProbe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(35)


def sqlite_files(stack: Stack) -> dict[str, Path]:
    files = {}
    for name in SERVICES:
        url = stack.database_url(name)
        if url.startswith("sqlite:///"):
            files[name] = Path(url.removeprefix("sqlite:///"))
    return files


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank, as p99 of 200 is the second largest)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def stats(values: list[float]) -> str:
    return f"p50 {pct(values, 50):.2f} s, p99 {pct(values, 99):.2f} s, max {max(values, default=0):.2f} s"


# --- 1. erasure across every service ------------------------------------------------------------------


@dataclass
class ErasureResult:
    count: int
    filing_s: float  # from the first POST to the last 202
    filing_p50_ms: float
    latencies: list[float]  # per request: its 202 to completed_at, seconds
    alone: list[float]  # the same, one request at a time
    direct_ms: dict[str, float]  # each service's Erase straight over gRPC, p50
    steps: int
    retried: dict[str, int]  # service → steps that needed more than one attempt
    steps_per_s: float
    first_phase: list[float]  # 202 → the last phase-1 step done
    last_phase: list[float]  # last phase-1 step done → completion (identity's Erase)
    lock_waits: dict[str, list[float]]
    erase_under_load: dict[str, list[float]]  # EraseProbe's round trips, seconds
    cpu: dict[str, float]  # CPU seconds per process over the run
    wall_s: float
    machine_busy_s: float
    log_problems: dict[str, int]  # "database is locked" / tracebacks per log file
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)
    probed_p99: float = 0.0  # the same burst's p99 with the probes running (not the figure)

    @property
    def p99(self) -> float:
        return pct(self.latencies, 99)


def erase_direct(stack: Stack, subject_ids: list[str]) -> dict[str, float]:
    """Each service's PersonalData.Erase called straight over gRPC (the operator CLI's credentials), one
    subject at a time, in the orchestrator's order: p50 milliseconds per service."""
    from kaseum.privacy.v1 import personal_data_pb2 as pd
    from kaseum.privacy.v1 import personal_data_pb2_grpc
    from rights.plans import HOLDERS
    from servicekit import caller, clients

    credentials = caller.ServiceCredentials(stack.env()["KASEUM_SERVICE_SECRET"].encode(), "cli")
    stubs = {s: personal_data_pb2_grpc.PersonalDataStub(clients.channel(stack.grpc_addr(s))) for s in HOLDERS}
    order = [s for s in HOLDERS if s != "identity"] + ["identity"]
    times: dict[str, list[float]] = {s: [] for s in order}
    for subject in subject_ids:
        for service in order:
            began = time.perf_counter()
            stubs[service].Erase(pd.EraseRequest(subject_id=subject, request_id=uuid.uuid4().hex),
                                 metadata=credentials.metadata(), timeout=30)
            times[service].append(time.perf_counter() - began)
    return {s: statistics.median(t) * 1000 for s, t in times.items()}


def file_erasure(base: str, customer: Customer) -> tuple[str, float, float]:
    """File one erasure: (request id, wall time of the 202, milliseconds the POST took)."""
    began = time.perf_counter()
    status, answer = call(base, "POST", RIGHTS_PATH, customer.token, {"kind": "erasure"})
    took = (time.perf_counter() - began) * 1000
    at = time.time()
    expect(status, answer, 202, "an erasure request")
    return str(answer["id"]), at, took


def log_problems(stack: Stack) -> dict[str, int]:
    found = {}
    for log in sorted((stack.var / "log").glob("*.log")):
        text = log.read_text(errors="replace")
        count = text.count("database is locked") + text.count("Traceback")
        if count:
            found[log.stem] = count
    return found


def bench_erasure(stack: Stack, count: int, say: Say) -> ErasureResult:
    base = stack.gateway_url
    began = time.monotonic()
    people = customers(stack, count + ALONE + DIRECT, with_ticket=True)
    say(f"  {len(people)} customers signed up, signed in and each with a ticket in {time.monotonic() - began:.1f} s")
    db = RightsDb(stack.database_url("rights"))
    alone = []
    for person in people[count:count + ALONE]:
        request_id, at, _ = file_erasure(base, person)
        alone.append(db.wait([request_id], 60)[request_id].completed_at.timestamp() - at)
    say(f"  one at a time: {', '.join(f'{s:.2f} s' for s in alone)} from the 202 to completion")
    direct = erase_direct(stack, [p.subject_id for p in people[count + ALONE:]])
    say("  Erase straight over gRPC, p50: " + ", ".join(f"{s} {ms:.1f} ms" for s, ms in direct.items()))

    waited = settle(stack)
    say(f"  the set-up's work done (verification mails sent) {waited:.1f} s later; then the burst:")
    measured = _burst(stack, db, people[:count], probes=False)
    say(f"  {count} erasures filed at once: p99 {pct(measured.latencies, 99):.2f} s; again with {count} others and "
        "the probes on (what limits the figure, measured beside it, not in it):")
    others = customers(stack, count, with_ticket=True)
    settle(stack)
    probed = _burst(stack, db, others, probes=True)
    return ErasureResult(
        count=count, filing_s=measured.filing_s, filing_p50_ms=measured.filing_p50_ms,
        latencies=measured.latencies, alone=alone, direct_ms=direct, steps=measured.steps,
        retried=measured.retried, steps_per_s=measured.steps_per_s, first_phase=measured.first_phase,
        last_phase=measured.last_phase, lock_waits=probed.lock_waits, erase_under_load=probed.erase_under_load,
        cpu=measured.cpu, wall_s=measured.wall_s, machine_busy_s=measured.machine_busy_s,
        log_problems=log_problems(stack), load=measured.load, probed_p99=pct(probed.latencies, 99))


@dataclass
class Burst:
    filing_s: float
    filing_p50_ms: float
    latencies: list[float]
    steps: int
    retried: dict[str, int]
    steps_per_s: float
    first_phase: list[float]
    last_phase: list[float]
    cpu: dict[str, float]
    wall_s: float
    machine_busy_s: float
    load: tuple[float, float, float]
    lock_waits: dict[str, list[float]] = field(default_factory=dict)
    erase_under_load: dict[str, list[float]] = field(default_factory=dict)


def _burst(stack: Stack, db: RightsDb, batch: list[Customer], probes: bool) -> Burst:
    """`batch` file an erasure each at once; with `probes`, the lock and Erase probes run meanwhile (they
    take write locks and run erasures of their own, so the figure is measured without them)."""
    from bench.run import machine_busy_s

    base = stack.gateway_url
    gate = threading.Barrier(len(batch))

    def go(person: Customer) -> tuple[str, float, float]:
        gate.wait()
        return file_erasure(base, person)

    load = os.getloadavg()
    cpu_before, busy, wall = cpu_by_process(stack), machine_busy_s(), time.monotonic()
    with contextlib.ExitStack() as running:
        probe = running.enter_context(LockProbe(sqlite_files(stack))) if probes else None
        erase_probe = running.enter_context(EraseProbe(stack)) if probes else None
        pool = running.enter_context(ThreadPoolExecutor(len(batch)))
        first = time.time()
        filed = list(pool.map(go, batch))
        ids = [f[0] for f in filed]
        done = db.wait(ids, 120 + len(batch))
    wall, busy = time.monotonic() - wall, machine_busy_s() - busy
    cpu_after = cpu_by_process(stack)
    latencies = [done[i].completed_at.timestamp() - at for i, at, _ in filed]
    steps = db.steps(ids)
    filed_at = {i: at for i, at, _ in filed}
    phase1: dict[str, datetime] = {}
    for s in steps:
        if s.phase == 1:
            phase1[s.request_id] = max(phase1.get(s.request_id, s.done_at), s.done_at)
    times = [s.done_at for s in steps]
    span = (max(times) - min(times)).total_seconds() if times else 0.0
    retried: dict[str, int] = {}
    for s in steps:
        if s.attempts > 1:
            retried[s.service] = retried.get(s.service, 0) + 1
    return Burst(
        filing_s=max(f[1] for f in filed) - first, filing_p50_ms=statistics.median(f[2] for f in filed),
        latencies=latencies, steps=len(steps), retried=retried, steps_per_s=len(steps) / span if span else 0.0,
        first_phase=[phase1[i].timestamp() - filed_at[i] for i in ids],
        last_phase=[(done[i].completed_at - phase1[i]).total_seconds() for i in ids],
        cpu={n: cpu_after.get(n, 0) - cpu_before.get(n, 0) for n in cpu_before}, wall_s=wall,
        machine_busy_s=busy, load=load, lock_waits=probe.waits if probe else {},
        erase_under_load=erase_probe.times if erase_probe else {})


# --- 2. access export of a long history -------------------------------------------------------------------


@dataclass
class ExportResult:
    tickets: int
    replies: int
    seed_s: float
    build_s: float  # the access request's 202 → completed_at
    step_s: dict[str, float]  # per service: the 202 → its export step done
    tickets_export_s: float  # tickets' Export called straight over gRPC (a stream of pieces)
    tickets_export_mib: float  # its serialized size, every piece
    tickets_export_pieces: int  # messages in the stream
    tickets_export_largest_kib: float  # the largest of them
    tickets_hwm_mib: tuple[float, float]  # tickets' VmHWM before the request, after it completed
    parts_mib: float  # every stored piece (rights' export_parts)
    parts_count: int  # pieces stored, every service
    download_s: float
    first_byte_s: float
    zip_mib: float
    zip_entries: int
    csv_rows: dict[str, int]
    local_build_s: float  # the ZIP built from the stored pieces in this process
    local_first_s: float  # its first chunk
    control_mib: dict[str, float]  # RSS growth while downloading a one-ticket subject's ZIP, first
    control_zip_mib: float
    base_mib: dict[str, float]
    peak_mib: dict[str, float]
    rights_hwm_mib: tuple[float, float]  # the rights process's VmHWM before and after the download
    samples: int
    erase_before_ms: float  # tickets' Erase alone before the history was written (from part 1)
    erase_after_ms: float  # and after
    # Peak RSS of rights and the gateway from the filing to the end of the download, for this history
    # and then for LARGER × it (other subjects, after); tickets' VmHWM at the end.
    first_peak_mib: dict[str, float] = field(default_factory=dict)
    larger: list[Larger] = field(default_factory=list)
    tickets_hwm_end_mib: float = 0.0
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Larger:
    times: int  # × the first history
    stored_mib: float  # its pieces in rights' database
    zip_mib: float
    peak_mib: dict[str, float]  # from its filing to the end of its download


LARGER = (4, 8)  # the later subjects' histories, × the first's


def seed_history(stack: Stack, subject_id: str, tickets: int, replies: int) -> None:
    """`tickets` tickets of the subject and `replies` public replies on them (every other one the
    subject's, the rest an agent's), written into the tickets database in the service's own schema; each
    ticket is indexed for search as the service does (Repository.index_text), so the database stays
    consistent (the export itself does not read the index)."""
    from servicekit.db import make_engine, new_id
    from sqlalchemy import insert, select
    from sqlalchemy.orm import Session
    from tickets.models import Reply, Repository, Ticket

    agent = uuid.uuid4().hex
    start = datetime.now(UTC) - timedelta(days=300)
    pick = random.Random(7)

    def text(words: int) -> str:
        # Varied words, so the ZIP compresses like real prose would, not like one sentence repeated.
        return " ".join(pick.choice(WORDS) for _ in range(words)) + "."

    rows, ids = [], []
    for n in range(tickets):
        at = start + timedelta(minutes=n * 7)
        ticket_id = new_id()
        ids.append((ticket_id, at))
        closed = n % 3 == 0
        rows.append({"id": ticket_id, "requester_id": subject_id, "subject": f"Invoice export fails ({n})",
                     "body": text(TICKET_WORDS), "product": "billing", "status": "closed" if closed else "open",
                     "region": "uk", "created_at": at, "updated_at": at, "priority": "normal", "assignee_id": agent,
                     "organisation_id": "", "requester_country": "GB",
                     "closed_at": at + timedelta(days=1) if closed else None})
    answers = []
    for n in range(replies):
        ticket_id, at = ids[n % tickets]
        answers.append({"id": new_id(), "ticket_id": ticket_id, "author_id": subject_id if n % 2 else agent,
                        "body": text(REPLY_WORDS), "internal": False,
                        "created_at": at + timedelta(minutes=1 + n // tickets)})
    engine = make_engine(stack.database_url("tickets"))
    try:
        with Session(engine) as session:
            for chunk in range(0, len(rows), 1000):
                session.execute(insert(Ticket), rows[chunk:chunk + 1000])
            for chunk in range(0, len(answers), 2000):
                session.execute(insert(Reply), answers[chunk:chunk + 2000])
            repo = Repository(session)
            for ticket in session.scalars(select(Ticket).where(Ticket.requester_id == subject_id)):
                repo.index_text(ticket)
            session.commit()
    finally:
        engine.dispose()


def export_direct(stack: Stack, subject_id: str) -> tuple[float, int, int, int]:
    """tickets' PersonalData.Export straight over gRPC, read piece by piece: seconds, serialized bytes in all,
    pieces, the largest piece's bytes."""
    from kaseum.privacy.v1 import personal_data_pb2 as pd
    from kaseum.privacy.v1 import personal_data_pb2_grpc
    from servicekit import caller, clients

    credentials = caller.ServiceCredentials(stack.env()["KASEUM_SERVICE_SECRET"].encode(), "cli")
    stub = personal_data_pb2_grpc.PersonalDataStub(clients.channel(stack.grpc_addr("tickets"), deadline=120))
    began = time.perf_counter()
    sizes = [piece.ByteSize() for piece in stub.Export(
        pd.ExportRequest(subject_id=subject_id, request_id=uuid.uuid4().hex),
        metadata=credentials.metadata(), timeout=120)]
    return time.perf_counter() - began, sum(sizes), len(sizes), max(sizes)


def download(base: str, path: str, token: str) -> tuple[bytes, float, float]:
    """The ZIP, read in 64 KiB pieces: (bytes, seconds to the first byte, seconds in all)."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=300)
    out = io.BytesIO()
    began = time.perf_counter()
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}", "User-Agent": "kaseum-bench/1"})
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"the export answered {response.status}: {response.read()[:300]!r}")
        first = 0.0
        # read1: whatever has arrived (up to 64 KiB), so the first byte is timed when it comes.
        while chunk := response.read1(64 * 1024):
            first = first or time.perf_counter() - began
            out.write(chunk)
    finally:
        conn.close()
    return out.getvalue(), first, time.perf_counter() - began


def csv_rows(data: bytes) -> tuple[int, dict[str, int]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        counts: dict[str, int] = {}
        for name in ("tickets/tickets.csv", "tickets/replies.csv"):
            if name in names:
                counts[name] = max(0, zf.read(name).decode().count("\r\n") - 1)
        return len(names), counts


def build_locally(db: RightsDb, request_id: str) -> tuple[float, float, int, int]:
    """The ZIP built here from the pieces rights stored, read one at a time as DownloadExport does: seconds
    to the first non-empty chunk, seconds in all, bytes of the pieces (each counted once), pieces."""
    from rights import export_zip

    keys = db.pieces(request_id)
    sizes: dict[tuple[str, int], int] = {}

    def load(service: str, seq: int) -> export_zip.Part:
        export, declarations = db.piece(request_id, service, seq)
        sizes[(service, seq)] = len(export) + len(declarations)
        return export_zip.Part(service, export, declarations)

    began = time.perf_counter()
    first = 0.0
    fields = export_zip.request_fields(request_id, "access", datetime.now(UTC), datetime.now(UTC))
    for chunk in export_zip.build(fields, keys, load):
        if chunk and not first:
            first = time.perf_counter() - began
    return first, time.perf_counter() - began, sum(sizes.values()), len(keys)


def bench_export(stack: Stack, tickets: int, replies: int, erase_before_ms: float, say: Say) -> ExportResult:
    base = stack.gateway_url
    person = customers(stack, 1, with_ticket=False)[0]
    spare = customers(stack, 1, with_ticket=True)[0]
    began = time.perf_counter()
    seed_history(stack, person.subject_id, tickets, replies)
    seed_s = time.perf_counter() - began
    say(f"  {tickets:,} tickets and {replies:,} replies of one subject written into the tickets database "
        f"in {seed_s:.1f} s")
    db = RightsDb(stack.database_url("rights"))
    tickets_pid, rights_pid = stack.procs["tickets"].pid, stack.procs["rights"].pid
    watched = {"rights": rights_pid, "gateway": stack.procs["gateway"].pid}
    # The control: the same download for a subject with one ticket, first, so that the growth the long
    # history adds can be told from what any download costs.
    status, answer = call(base, "POST", RIGHTS_PATH, spare.token, {"kind": "access"})
    small = str(expect(status, answer, 202, "the control access request")["id"])
    db.wait([small], 60)
    with MemorySampler(watched) as sampler:
        control_zip = len(download(base, f"{RIGHTS_PATH}/{small}/export", spare.token)[0])
    control = {k: (sampler.peak[k] - sampler.base[k]) / 1024 for k in watched}
    hwm_before = vm_kib(tickets_pid, "VmHWM")
    load = os.getloadavg()
    # `whole`: from the filing to the end of the download (the pieces stored, then the ZIP written).
    with MemorySampler(watched) as whole:
        status, answer = call(base, "POST", RIGHTS_PATH, person.token, {"kind": "access"})
        filed_at = time.time()
        request_id = str(expect(status, answer, 202, "the access request")["id"])
        done = db.wait([request_id], 300)[request_id]
        build_s = done.completed_at.timestamp() - filed_at
        hwm_after = vm_kib(tickets_pid, "VmHWM")
        step_s = {s.service: s.done_at.timestamp() - filed_at for s in db.steps([request_id])}
        say(f"  access request completed {build_s:.2f} s after its 202")

        rights_hwm = vm_kib(rights_pid, "VmHWM")
        with MemorySampler(watched) as sampler:
            data, first_byte, download_s = download(base, f"{RIGHTS_PATH}/{request_id}/export", person.token)
        rights_hwm_after = vm_kib(rights_pid, "VmHWM")
    entries, rows = csv_rows(data)
    say(f"  ZIP of {len(data) / 2**20:.1f} MiB downloaded in {download_s:.2f} s; {entries} entries, "
        + ", ".join(f"{k} {v:,} rows" for k, v in rows.items()))
    # Flat means bounded whatever the history's length: subjects with LARGER × the history, built and
    # downloaded after, must not keep lifting the peaks (held whole, each would add at least its data).
    larger: list[Larger] = []
    for times in LARGER:
        bigger = customers(stack, 1, with_ticket=False)[0]
        seed_history(stack, bigger.subject_id, tickets * times, replies * times)
        with MemorySampler(watched) as span:
            status, answer = call(base, "POST", RIGHTS_PATH, bigger.token, {"kind": "access"})
            larger_id = str(expect(status, answer, 202, "a larger access request")["id"])
            db.wait([larger_id], 300)
            zipped = len(download(base, f"{RIGHTS_PATH}/{larger_id}/export", bigger.token)[0])
        larger.append(Larger(times, db.stored_mib(larger_id), zipped / 2**20,
                             {k: v / 1024 for k, v in span.peak.items()}))
        say(f"  then {tickets * times:,} tickets and {replies * times:,} replies of another subject: ZIP of "
            f"{zipped / 2**20:.1f} MiB")
    local_first_s, local_s, parts_bytes, parts_count = build_locally(db, request_id)
    direct_s, direct_bytes, direct_pieces, direct_largest = export_direct(stack, person.subject_id)
    erase_after_ms = erase_direct(stack, [spare.subject_id])["tickets"]
    notes = []
    if rows.get("tickets/tickets.csv") != tickets or rows.get("tickets/replies.csv") != replies:
        notes.append(f"the ZIP's row counts differ from what was seeded ({tickets} tickets, {replies} replies)")
    mib = 1 / 1024
    return ExportResult(
        tickets=tickets, replies=replies, seed_s=seed_s, build_s=build_s, step_s=step_s,
        tickets_export_s=direct_s, tickets_export_mib=direct_bytes / 2**20, tickets_export_pieces=direct_pieces,
        tickets_export_largest_kib=direct_largest / 1024,
        tickets_hwm_mib=(hwm_before * mib, hwm_after * mib), parts_mib=parts_bytes / 2**20, parts_count=parts_count,
        download_s=download_s, first_byte_s=first_byte, zip_mib=len(data) / 2**20, zip_entries=entries,
        csv_rows=rows, local_build_s=local_s, local_first_s=local_first_s, control_mib=control,
        control_zip_mib=control_zip / 2**20, base_mib={k: v * mib for k, v in sampler.base.items()},
        peak_mib={k: v * mib for k, v in sampler.peak.items()},
        rights_hwm_mib=(rights_hwm * mib, rights_hwm_after * mib), samples=sampler.samples,
        erase_before_ms=erase_before_ms, erase_after_ms=erase_after_ms,
        first_peak_mib={k: v * mib for k, v in whole.peak.items()}, larger=larger,
        tickets_hwm_end_mib=vm_kib(tickets_pid, "VmHWM") * mib, load=load, notes=notes)


# --- the run and its report -----------------------------------------------------------------------------


def run(var: Path, erasures: int = 200, tickets: int = 1000, replies: int = 10_000,
        say: Say = print) -> tuple[ErasureResult, ExportResult]:
    stack = Stack.on_free_ports(var)
    try:
        began = time.monotonic()
        stack.start()
        say(f"  stack up in {time.monotonic() - began:.1f} s at {stack.gateway_url} (databases: "
            f"{stack.database_url('rights').split(':', 1)[0]}); orchestrator: every "
            f"{os.environ.get('ORCHESTRATOR_INTERVAL_SECONDS', '0.5')} s (the default), 8 workers, "
            f"batches of {lease_batch()}, woken by each filing")
        say(f"erasure: {erasures} customers, each with a ticket, file an erasure at once:")
        erasure = bench_erasure(stack, erasures, say)
        say(f"access export: one subject with {tickets:,} tickets and {replies:,} replies:")
        export = bench_export(stack, tickets, replies, erasure.direct_ms["tickets"], say)
        return erasure, export
    finally:
        with contextlib.suppress(Exception):
            from bench import run as bench_run

            bench_run.STARTED.extend(stack.procs.values())
        stack.stop()


def lease_batch() -> int:
    from rights.orchestration import LEASE_BATCH

    return LEASE_BATCH


def _lock_line(waits: dict[str, list[float]]) -> str:
    return ", ".join(f"{name} p50 {pct(w, 50) * 1000:.1f}/p99 {pct(w, 99) * 1000:.0f}/max {max(w) * 1000:.0f} ms"
                     for name, w in waits.items() if w)


def _limits(e: ErasureResult) -> Iterator[str]:
    """What the erasure figure is made of, from the measurements above (no guesses)."""
    cpus = os.cpu_count() or 1
    total_cpu = sum(e.cpu.values())
    per = ", ".join(f"{n} {s:.1f}" for n, s in sorted(e.cpu.items(), key=lambda kv: -kv[1]) if s >= 0.05)
    yield (f"CPU over the {e.wall_s:.1f} s run (× {cpus} CPUs = {e.wall_s * cpus:.1f} CPU s): our processes "
           f"{total_cpu:.1f} s ({per}); everything else on the machine {max(e.machine_busy_s - total_cpu, 0):.1f} s")
    direct = sum(e.direct_ms.values())
    per_request = e.steps // max(e.count, 1)
    yield (f"the orchestrator settled {e.steps} steps ({e.count} requests × {per_request}) at {e.steps_per_s:.0f} "
           f"steps/s, {e.steps / e.steps_per_s if e.steps_per_s else 0:.1f} s to drain the queue; it leases up to "
           f"{lease_batch()} due steps at a time and sends a batch's erasures to each service in one call "
           "(PersonalData.EraseMany), "
           f"so a step costs no round trip of its own (one Erase called alone: {direct / len(e.direct_ms):.0f} ms, "
           "mean over the services)")
    need = e.steps / ERASURE_P99_TARGET_S
    yield (f"rights used {e.cpu.get('rights', 0.0) * 1000 / max(e.steps, 1):.1f} ms of CPU per step "
           f"({e.cpu.get('rights', 0.0) / e.wall_s * 100:.0f} % of one CPU), every process together "
           f"{sum(e.cpu.values()) * 1000 / max(e.count, 1):.0f} ms per erasure; draining {e.steps} steps in "
           f"{ERASURE_P99_TARGET_S:.0f} s needs ≥ {need:.0f} steps/s, "
           f"{need / e.steps_per_s if e.steps_per_s else 0:.1f}× the measured rate")
    loaded = ", ".join(f"{s} p50 {pct(t, 50) * 1000:.0f}/p99 {pct(t, 99) * 1000:.0f} ms"
                       for s, t in e.erase_under_load.items() if t)
    yield (f"in a second burst of {e.count} with the probes on (p99 {e.probed_p99:.2f} s there): each service's "
           f"Erase (a subject nobody is) called from here meanwhile: {loaded} "
           f"({len(next(iter(e.erase_under_load.values()), []))} rounds)")
    yield (f"per request: 202 → its four phase-1 erasures done {stats(e.first_phase)}; then identity's erasure "
           f"(phase 2) → completed {stats(e.last_phase)}")
    yield (f"one erasure alone: {', '.join(f'{s:.2f} s' for s in e.alone)} (a poll every 0.5 s, then two phases "
           f"one after the other)")
    if e.lock_waits:
        yield ("SQLite write-lock wait seen from outside during that burst (BEGIN IMMEDIATE): "
               f"{_lock_line(e.lock_waits)}")
    retried = ", ".join(f"{s} {n}" for s, n in e.retried.items()) or "none"
    problems = ", ".join(f"{s} {n}" for s, n in e.log_problems.items()) or "none"
    yield f"steps that needed a retry: {retried}; 'database is locked' or tracebacks in the logs: {problems}"


def report(result: tuple[ErasureResult, ExportResult], say: Say = print) -> None:
    e, x = result

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT MET"

    say("")
    say(f"Rights (issue 7), SQLite; load average at the start of each part {e.load[0]:.2f} / {x.load[0]:.2f} "
        f"on {os.cpu_count()} CPUs (shared machine)")
    say(f"erasure, {e.count} at once   {e.p99:6.2f} s p99   p50 {pct(e.latencies, 50):.2f} s, max "
        f"{max(e.latencies):.2f} s from each 202 to completion in every service  target p99 < "
        f"{ERASURE_P99_TARGET_S:.0f} s: {verdict(e.p99 < ERASURE_P99_TARGET_S)}")
    say(f"  filing: {e.count} POSTs answered 202 within {e.filing_s:.2f} s (p50 {e.filing_p50_ms:.0f} ms each)")
    for line in _limits(e):
        say(f"  {line}")
    say(f"access export build      {x.build_s:6.2f} s       {x.tickets:,} tickets, {x.replies:,} replies, from the "
        f"202 to completed  target < {EXPORT_TARGET_S:.0f} s: {verdict(x.build_s < EXPORT_TARGET_S)}")
    steps = ", ".join(f"{s} {t:.2f} s" for s, t in sorted(x.step_s.items(), key=lambda kv: kv[1]))
    say(f"  each service's export step done after: {steps}")
    say(f"  tickets' Export alone over gRPC: {x.tickets_export_s:.2f} s for {x.tickets_export_mib:.1f} MiB in "
        f"{x.tickets_export_pieces} messages (the largest {x.tickets_export_largest_kib:.0f} KiB); tickets' VmHWM "
        f"{x.tickets_hwm_mib[0]:.0f} → {x.tickets_hwm_mib[1]:.0f} MiB across the request; stored in rights' "
        f"database: {x.parts_mib:.1f} MiB in {x.parts_count} pieces")
    say(f"export download          {x.download_s:6.2f} s       ZIP {x.zip_mib:.1f} MiB ({x.zip_entries} entries; "
        f"first byte after {x.first_byte_s:.2f} s); the same ZIP built in this process from the stored pieces: "
        f"first chunk after {x.local_first_s:.2f} s, whole in {x.local_build_s:.2f} s")
    extra = {}
    for name in ("rights", "gateway"):
        grew = x.peak_mib[name] - x.base_mib[name]
        extra[name] = grew - x.control_mib[name]
        say(f"  {name:<8} RSS {x.base_mib[name]:6.1f} → peak {x.peak_mib[name]:6.1f} MiB during the download "
            f"(+{grew:.1f} MiB = {grew / x.zip_mib if x.zip_mib else 0:.2f}× the ZIP; {x.samples} samples); "
            f"+{x.control_mib[name]:.1f} MiB for a one-ticket subject's {x.control_zip_mib * 1024:.0f} KiB ZIP before")
    streamed = x.first_byte_s < x.download_s / 2
    say(f"streamed to the client   {x.first_byte_s:6.2f} s       to the first byte of a {x.download_s:.2f} s download "
        f"(the ZIP's first chunk is ready {x.local_first_s:.2f} s into the build): {verdict(streamed)}")
    say(f"  rights' VmHWM {x.rights_hwm_mib[0]:.1f} → {x.rights_hwm_mib[1]:.1f} MiB across the download")
    worst = max(extra, key=lambda n: extra[n])
    say(f"  growth beyond the one-ticket download's: {worst} {extra[worst]:+.1f} MiB for a {x.zip_mib:.1f} MiB ZIP of "
        f"{x.parts_mib:.1f} MiB of stored pieces (the fixed cost of a long download: one connection's page "
        "cache, zlib and one piece parsed)")
    # Held whole, each larger history would lift the peak by at least the data it adds; streamed, the
    # peak stops rising (what is left is bounded: a piece, zlib, a page cache, allocator arenas).
    spans = [(1, x.parts_mib, x.first_peak_mib)] + [(b.times, b.stored_mib, b.peak_mib) for b in x.larger]
    for name in ("rights", "gateway"):
        say(f"  {name:<8} peak RSS from filing to downloaded: " + ", ".join(
            f"{t}× ({stored:.0f} MiB stored) {peak.get(name, 0):.1f} MiB" for t, stored, peak in spans))
    (_, stored_a, peak_a), (times_b, stored_b, peak_b) = spans[-2], spans[-1]
    rise = {name: peak_b.get(name, 0) - peak_a.get(name, 0) for name in ("rights", "gateway")}
    worst = max(rise, key=lambda n: rise[n])
    added = stored_b - stored_a
    say(f"flat memory              {rise[worst]:+6.1f} MiB     {worst}: the peak's rise from the last but one "
        f"history to {times_b}× ({added:.0f} MiB more stored; held whole: ≥ +{added:.0f} MiB); tickets' VmHWM "
        f"{x.tickets_hwm_mib[0]:.0f} → {x.tickets_hwm_end_mib:.0f} MiB over all of them: "
        f"{verdict(rise[worst] < added / 4)}")
    say(f"tickets' Erase alone, {x.tickets:,} more tickets in its database and search index: "
        f"{x.erase_after_ms:.0f} ms (it was {x.erase_before_ms:.0f} ms before them)")
    for note in x.notes:
        say(f"  NOTE: {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--erasures", type=int, default=200, help="erasure requests filed at once")
    parser.add_argument("--tickets", type=int, default=1000, help="tickets of the subject whose data is exported")
    parser.add_argument("--replies", type=int, default=10_000, help="replies on those tickets")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder (logs, databases)")
    args = parser.parse_args(argv)
    var = Path(tempfile.mkdtemp(prefix="kaseum-bench-rights-"))
    failed = True
    try:
        result = run(var, args.erasures, args.tickets, args.replies, say=lambda s: print(s, flush=True))
        report(result, lambda s: print(s, flush=True))
        failed = False
        return 0
    finally:
        if args.keep or failed:
            print(f"run folder kept: {var}")
        else:
            shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
