"""`make bench`: ticket creation through the whole stack against a bare Flask app, side by side.

    .venv/bin/python bench/run.py [--requests 2000] [--concurrency 16] [--accounts 16] [--quick] [--keep]

In one run on this machine, with the load coming from a separate process (bench/load.py) on loopback:

1. saturation: POST /api/v1/tickets through the whole system (gateway → gRPC → database → outbox →
   JetStream), closed loop; then every `uk.tickets.ticket.opened` event is looked up in JetStream;
2. the stack again, open loop at half of its saturation throughput: p99, target < 50 ms;
3. idle memory of every process started (RSS, gunicorn workers included), target < 1024 MiB;
4. the same load against a bare Flask handler returning a constant (bench/bare_app.py), served the same
   way: the gateway's own gunicorn command line (read from /proc, so --workers/--threads/access log match)
   with only the address and the app swapped: the ratio stack/bare throughput, target ≥ 0.40.

Each load run also says where the CPU went (the servers, per process; the load generator; everything
else on the machine), since a shared machine makes throughput figures move.
Everything started is stopped on the way out, on an error or Ctrl-C too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.stack import Stack, free_port  # noqa: E402

LOAD = ROOT / "bench" / "load.py"
STREAM = "KASEUM_UK"
SUBJECT = "uk.tickets.ticket.opened"
PASSWORD = "correct horse battery staple"
TICKETS_PATH = "/api/v1/tickets"

# Every server process started, so a last resort can kill what a stop interrupted by Ctrl-C left behind.
STARTED: list[subprocess.Popen[bytes]] = []

RATIO_TARGET = 0.40
P99_TARGET_MS = 50.0
MEMORY_TARGET_MIB = 1024.0


def say(text: str = "") -> None:
    print(text, flush=True)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


# --- CPU accounting (the machine may be shared: say how much CPU went elsewhere) ------------------------

TICK = os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (steal included), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / TICK


def process_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def servers_cpu_s(servers: dict[str, int]) -> float:
    tree = _children()
    return sum(process_cpu_s(p) for root in servers.values() for p in descendants(root, tree))


@dataclass(frozen=True)
class CpuUse:
    wall_s: float
    servers_s: float
    load_s: float
    others_s: float
    by_server: dict[str, float]  # name → CPU seconds (the process and its descendants)

    def line(self) -> str:
        cpus = os.cpu_count() or 1
        return (f"CPU over {self.wall_s:.1f} s × {cpus} CPUs: servers {self.servers_s:.1f} s, "
                f"load generator {self.load_s:.1f} s, everything else on the machine {max(self.others_s, 0):.1f} s")

    def per_request(self, requests: int) -> str:
        per = 1000 / max(requests, 1)
        parts = [f"{name} {seconds * per:.1f}" for name, seconds in self.by_server.items()]
        total = f"total {self.servers_s * per:.1f}" if len(parts) > 1 else ""
        return "server CPU ms per request: " + ", ".join([*parts, total] if total else parts)


# --- load -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    count: int
    ok: int
    errors: int
    statuses: dict[str, int]
    seconds: float
    throughput: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    rate: float
    cpu: CpuUse

    @classmethod
    def from_json(cls, data: dict[str, Any], cpu: CpuUse) -> LoadResult:
        return cls(count=int(data["count"]), ok=int(data["ok"]), errors=int(data["errors"]),
                   statuses={str(k): int(v) for k, v in data["statuses"].items()},
                   seconds=float(data["seconds"]), throughput=float(data["throughput"]),
                   p50_ms=float(data["p50_ms"]), p99_ms=float(data["p99_ms"]), max_ms=float(data["max_ms"]),
                   rate=float(data["rate"]), cpu=cpu)

    def line(self) -> str:
        statuses = ", ".join(f"{k}×{v}" for k, v in self.statuses.items())
        return (f"{self.ok}/{self.count} ok in {self.seconds:.2f} s → {self.throughput:.1f}/s, "
                f"p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms, max {self.max_ms:.1f} ms, "
                f"errors {self.errors} [{statuses}]\n              {self.cpu.line()}")


def run_load(url: str, requests: int, concurrency: int, servers: dict[str, int], tokens_file: Path | None = None,
             rate: float = 0.0) -> LoadResult:
    """bench/load.py in its own process; its JSON answer, and where the CPU went meanwhile.

    `servers` names the pids of the processes under test: they and their descendants are the servers' CPU.
    """
    argv = [sys.executable, str(LOAD), "--url", url, "--requests", str(requests),
            "--concurrency", str(concurrency), "--expect", "201"]
    if tokens_file is not None:
        argv += ["--tokens-file", str(tokens_file)]
    if rate > 0:
        argv += ["--rate", f"{rate:.3f}"]
    # Generous: even at 10 requests/s the run finishes; subprocess.run kills the child on any exception.
    limit = 120 + requests / 10 + (requests / rate if rate > 0 else 0)
    tree = _children()
    groups = {name: descendants(root, tree) for name, root in servers.items()}
    before = {p: process_cpu_s(p) for pids in groups.values() for p in pids}
    busy, wall = machine_busy_s(), time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=limit, check=False)
    busy, wall = machine_busy_s() - busy, time.monotonic() - wall
    by_server = {name: sum(process_cpu_s(p) - before[p] for p in pids) for name, pids in groups.items()}
    servers_s = sum(by_server.values())
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise RuntimeError(f"the load generator failed with exit status {done.returncode}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    load_s = float(data.get("cpu_s", 0.0))
    return LoadResult.from_json(data, CpuUse(wall, servers_s, load_s, busy - servers_s - load_s, by_server))


# --- HTTP set-up calls --------------------------------------------------------------------------------


def post_json(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def customer_token(base: str) -> str:
    """Sign a new customer up and log in: the session token."""
    tag = uuid.uuid4().hex[:10]
    status, answer = post_json(base + "/api/v1/accounts", {
        "username": f"bench_{tag}", "email": f"bench_{tag}@example.com", "password": PASSWORD,
        "first_name": "Ada", "last_name": "Lovelace", "company": "Analytical Engines Ltd",
        "job_title": "Engineer", "phone": "+44 20 7946 0018", "country": "GB",
    })
    if status != 201:
        raise RuntimeError(f"sign-up answered {status}: {answer}")
    status, answer = post_json(base + "/api/v1/sessions", {"login": f"bench_{tag}", "password": PASSWORD})
    if status != 200:
        raise RuntimeError(f"log-in answered {status}: {answer}")
    return str(answer["token"])


def wait_http_ok(url: str, proc: subprocess.Popen[bytes], log: Path, wait: float = 30) -> None:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}; see {log}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {wait:.0f} s; see {log}")


# --- JetStream ----------------------------------------------------------------------------------------


async def _stream_count(nats_url: str) -> int:
    import nats

    nc = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=0)
    try:
        info = await nc.jetstream().stream_info(STREAM, subjects_filter=SUBJECT)
        return int((info.state.subjects or {}).get(SUBJECT, 0))
    finally:
        await nc.close()


def events_in_jetstream(nats_url: str, expected: int, wait: float = 60) -> tuple[int, float]:
    """Poll the stream until it holds `expected` ticket events (or `wait` passes): (count, seconds waited)."""
    began = time.monotonic()
    count = asyncio.run(_stream_count(nats_url))
    while count < expected and time.monotonic() - began < wait:
        time.sleep(0.25)
        count = asyncio.run(_stream_count(nats_url))
    return count, time.monotonic() - began


# --- memory -------------------------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    """Parent pid → child pids, from /proc/<pid>/stat."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "(comm)", which may hold spaces
        tree.setdefault(int(fields[1]), []).append(int(entry))
    return tree


def descendants(pid: int, tree: dict[int, list[int]]) -> list[int]:
    found = [pid]
    for child in tree.get(pid, []):
        found += descendants(child, tree)
    return found


def _kib(path: str, key: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass(frozen=True)
class Memory:
    name: str
    pids: list[int]
    rss_mib: float
    pss_mib: float


def memory_of(procs: dict[str, subprocess.Popen[bytes]]) -> list[Memory]:
    """VmRSS (and PSS, which does not count shared pages twice) of each process and its descendants."""
    tree = _children()
    out = []
    for name, proc in procs.items():
        pids = descendants(proc.pid, tree)
        rss = sum(_kib(f"/proc/{p}/status", "VmRSS") for p in pids)
        pss = sum(_kib(f"/proc/{p}/smaps_rollup", "Pss") for p in pids)
        out.append(Memory(name, pids, rss / 1024, pss / 1024))
    return out


# --- the two systems under test ------------------------------------------------------------------------


def cmdline(pid: int) -> list[str]:
    try:
        return [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return []


def gunicorn_argv(gateway_pid: int) -> list[str]:
    """The gateway's gunicorn master command line (the process itself, or the first descendant running it)."""
    for pid in descendants(gateway_pid, _children()):
        argv = cmdline(pid)
        if any(Path(a).name == "gunicorn" for a in argv[:2]) and argv[-1].endswith("create_app()"):
            return argv
    raise RuntimeError("could not find the gateway's gunicorn command line in /proc")


def bare_argv(gateway: list[str], port: int) -> list[str]:
    """The gateway's gunicorn command with another address and app: the bare app is served the same way."""
    out: list[str] = []
    skip = False
    for arg in gateway[:-1]:
        if skip:
            skip = False
        elif arg in ("--bind", "-b"):
            skip = True
        elif not arg.startswith("--bind="):
            out.append(arg)
    return [*out, "--bind", f"127.0.0.1:{port}", "--pythonpath", str(ROOT / "bench"), "bare_app:create_app()"]


def option(argv: list[str], name: str) -> str:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return "(default)"


def bench_bare(var: Path, gateway: list[str], requests: int, concurrency: int, warmup: int) -> LoadResult:
    """The bare Flask app under the gateway's own gunicorn command line."""
    port = free_port()
    log_path = var / "log" / "bare.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = bare_argv(gateway, port)
    say(f"  command: {shlex.join(os.path.relpath(a, ROOT) if a.startswith(str(ROOT)) else a for a in argv)}")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    STARTED.append(proc)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http_ok(base + "/healthz", proc, log_path)
        if warmup:
            run_load(base + TICKETS_PATH, warmup, concurrency, {"bare": proc.pid})
        return run_load(base + TICKETS_PATH, requests, concurrency, {"bare": proc.pid})
    finally:
        stop_process(proc)


def kill_leftovers() -> None:
    """SIGKILL whatever started process (and its descendants) is still alive; normally nothing."""
    tree = _children()
    for proc in STARTED:
        if proc.poll() is None:
            for pid in reversed(descendants(proc.pid, tree)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            proc.wait(5)
            say(f"killed leftover process {proc.pid} and its descendants")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 8) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@dataclass
class StackResult:
    saturation: LoadResult
    half: LoadResult
    created: int  # 201s over every run on the stack (warm-up included)
    created_before_half: int
    events_after_saturation: int
    events_waited_s: float
    events_final: int
    memory: list[Memory]
    gunicorn: list[str]
    idle_cpu: float  # CPUs' worth the idle stack kept busy


def bench_stack(var: Path, requests: int, concurrency: int, warmup: int, accounts: int,
                idle: float) -> StackResult:
    stack = Stack.on_free_ports(var)
    try:
        t = time.monotonic()
        stack.start()
        db = stack.database_url("tickets").split(":", 1)[0]
        gunicorn = gunicorn_argv(stack.procs["gateway"].pid)
        say(f"  stack up in {time.monotonic() - t:.1f} s at {stack.gateway_url} (tickets database: {db}); "
            f"gateway: gunicorn --workers {option(gunicorn, '--workers')} --threads {option(gunicorn, '--threads')}")
        servers = {name: p.pid for name, p in stack.procs.items()}
        t = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            tokens = list(pool.map(lambda _: customer_token(stack.gateway_url), range(accounts)))
        tokens_file = var / "tokens.json"
        tokens_file.write_text(json.dumps(tokens))
        tokens_file.chmod(0o600)
        say(f"  {accounts} customers signed up and logged in in {time.monotonic() - t:.1f} s")
        url = stack.gateway_url + TICKETS_PATH
        created = 0
        if warmup:
            warm = run_load(url, warmup, concurrency, servers, tokens_file)
            created += warm.ok
            say(f"  warm-up:    {warm.line()}")
        saturation = run_load(url, requests, concurrency, servers, tokens_file)
        created += saturation.ok
        say(f"  saturation: {saturation.line()}")
        say(f"              {saturation.cpu.per_request(saturation.count)}")
        events, waited = events_in_jetstream(stack.nats_url, created)
        say(f"  JetStream {STREAM} {SUBJECT}: {events} events for {created} tickets created "
            f"(201s, warm-up included; waited {waited:.1f} s)")
        created_before_half = created
        rate = max(saturation.throughput / 2, 1.0)
        half = run_load(url, requests, concurrency, servers, tokens_file, rate=rate)
        created += half.ok
        say(f"  half rate ({rate:.1f}/s, open loop): {half.line()}")
        say(f"              {half.cpu.per_request(half.count)}")
        events_final, _ = events_in_jetstream(stack.nats_url, created)
        say(f"  idling {idle:.0f} s before reading memory…")
        busy = servers_cpu_s(servers)
        time.sleep(idle)
        idle_cpu = (servers_cpu_s(servers) - busy) / idle
        memory = memory_of(stack.procs)
        return StackResult(saturation, half, created, created_before_half, events, waited, events_final, memory,
                           gunicorn, idle_cpu)
    finally:
        STARTED.extend(stack.procs.values())
        t = time.monotonic()
        stack.stop()
        say(f"  stack stopped in {time.monotonic() - t:.1f} s")


# --- report -------------------------------------------------------------------------------------------


def report(stack: StackResult, bare: LoadResult, command: str) -> None:
    ratio = stack.saturation.throughput / bare.throughput if bare.throughput else 0.0
    total_rss = sum(m.rss_mib for m in stack.memory)
    total_pss = sum(m.pss_mib for m in stack.memory)
    say()
    say("Idle memory after the load (process and its descendants):")
    for m in stack.memory:
        say(f"  {m.name:<10} {len(m.pids)} process{'es' if len(m.pids) > 1 else '  '}  "
            f"RSS {m.rss_mib:7.1f} MiB   PSS {m.pss_mib:7.1f} MiB")
    say(f"  {'total':<10} {sum(len(m.pids) for m in stack.memory):>2} processes  "
        f"RSS {total_rss:7.1f} MiB   PSS {total_pss:7.1f} MiB   (idle CPU: {stack.idle_cpu * 100:.1f} % of one CPU)")
    say()
    rows = [
        ("stack, saturation", stack.saturation),
        ("bare Flask, saturation", bare),
        (f"stack, open loop {stack.half.rate:.0f}/s", stack.half),
    ]
    cpus = os.cpu_count() or 1
    say(f"{'run':<28} {'requests':>8} {'201s':>6} {'errors':>6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'server CPU ms/req':>18} {'CPU used elsewhere':>19}")
    for label, r in rows:
        elsewhere = max(r.cpu.others_s, 0) / (r.cpu.wall_s * cpus) * 100
        say(f"{label:<28} {r.count:>8} {r.ok:>6} {r.errors:>6} {r.throughput:>9.1f} {r.p50_ms:>8.1f} "
            f"{r.p99_ms:>8.1f} {r.cpu.servers_s * 1000 / max(r.count, 1):>18.1f} {elsewhere:>18.0f}%")
    say()
    ok_events = stack.events_after_saturation == stack.created_before_half
    say(f"JetStream {SUBJECT}: {stack.events_after_saturation} events / {stack.created_before_half} tickets "
        f"created after saturation ({'all there' if ok_events else 'MISMATCH'}); "
        f"{stack.events_final} / {stack.created} after every run")
    say(f"stack/bare throughput  {ratio:6.2f}          target ≥ {RATIO_TARGET:.2f}: {verdict(ratio >= RATIO_TARGET)}")
    say(f"p99 at half saturation {stack.half.p99_ms:6.1f} ms       target < {P99_TARGET_MS:.0f} ms: "
        f"{verdict(stack.half.p99_ms < P99_TARGET_MS)}")
    say(f"idle memory (RSS sum)  {total_rss:6.0f} MiB      target < {MEMORY_TARGET_MIB:.0f} MiB: "
        f"{verdict(total_rss < MEMORY_TARGET_MIB)}")
    say()
    say(f"repeat: {command}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, help="requests per measured run (default 2000; 300 with --quick)")
    parser.add_argument("--concurrency", type=int, default=16, help="connections kept open by the load generator")
    parser.add_argument("--accounts", type=int, default=16, help="customers whose tokens the requests cycle through")
    parser.add_argument("--warmup", type=int, help="unmeasured requests before each saturation run "
                                                   "(default a tenth of --requests, at least 50)")
    parser.add_argument("--idle", type=float, default=3.0, help="seconds of idling before reading memory")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 300 requests")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder (logs, databases, NATS store)")
    args = parser.parse_args(argv)
    requests = args.requests or (300 if args.quick else 2000)
    warmup = args.warmup if args.warmup is not None else max(50, requests // 10)

    # SIGTERM unwinds like Ctrl-C, so the finally blocks stop every process started.
    def _terminate(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _terminate)
    python = os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT)) else sys.executable
    command = shlex.join([python, "bench/run.py", "--requests", str(requests), "--concurrency",
                          str(args.concurrency), "--accounts", str(args.accounts), "--warmup", str(warmup)])
    var = Path(tempfile.mkdtemp(prefix="kaseum-bench-"))
    failed = True
    try:
        say(f"Kaseum bench: {requests} requests per run, {args.concurrency} connections, {args.accounts} "
            f"customers, warm-up {warmup}; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}; folder {var}")
        say("whole stack (NATS, five services, the gateway under gunicorn):")
        stack = bench_stack(var, requests, args.concurrency, warmup, args.accounts, args.idle)
        say("bare Flask app, served by the gateway's gunicorn command line:")
        bare = bench_bare(var, stack.gunicorn, requests, args.concurrency, warmup)
        say(f"  saturation: {bare.line()}")
        say(f"              {bare.cpu.per_request(bare.count)}")
        report(stack, bare, f"cd {shlex.quote(str(ROOT))} && {command}")
        failed = False
        return 0
    except KeyboardInterrupt:
        say("interrupted; everything started was stopped")
        return 130
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        kill_leftovers()
        if args.keep or failed:
            say(f"run folder kept: {var} (logs in {var / 'log'})")
        else:
            shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
