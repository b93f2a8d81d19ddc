"""An HTTP/1.1 load generator on asyncio streams (standard library only), run as its own process.

    python bench/load.py --url http://127.0.0.1:8080/api/v1/tickets --requests 2000 --concurrency 16 \
        --tokens-file tokens.json [--rate 500] [--expect 201] [--method GET] [--bodies-file bodies.json]

Each of the `--concurrency` connections is kept alive and sends requests (POST with a small JSON
ticket body unless told otherwise), one at a time. Request i carries bearer token i mod n of
`--tokens-file` (a JSON list; none if omitted) and, for POST/PUT/PATCH, JSON body i mod m of
`--bodies-file` (a JSON list of values; the ticket body if omitted); GET and DELETE carry no body.
The URL's query string is sent as given. Without `--rate` the load is closed-loop (saturation): a
connection sends its next request as soon as the previous answer is in, and latency is measured
from send to full response. With `--rate R` the load is open-loop: request i is due at
start + i/R and latency is measured from that due time, so any queueing behind busy connections
counts (no coordinated omission).

Prints one JSON object: count, ok, errors, statuses, seconds, throughput (ok/s), p50_ms, p99_ms,
max_ms, mean_ms, rate,
cpu_s (this process's own CPU time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

BODY = json.dumps({"subject": "Benchmark ticket", "body": "Opened by the load generator (bench/load.py)."},
                  separators=(",", ":")).encode()


WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class ProtocolError(Exception):
    pass


@dataclass
class Target:
    host: str
    port: int
    path: str  # with the query string, if any


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    next_index: int = 0
    last_done: float = 0.0

    def count(self, key: str) -> None:
        self.statuses[key] = self.statuses.get(key, 0) + 1


def build_requests(target: Target, tokens: list[str], method: str = "POST",
                   bodies: list[bytes] | None = None) -> list[bytes]:
    """The ready-to-send requests the run cycles through: request i has token i mod n and body i mod m."""
    method = method.upper()
    payloads = (bodies or [BODY]) if method in WITH_BODY else [b""]
    keys = tokens or [""]
    out = []
    for i in range(max(len(keys), len(payloads))):
        token, body = keys[i % len(keys)], payloads[i % len(payloads)]
        lines = [
            f"{method} {target.path} HTTP/1.1",
            f"Host: {target.host}:{target.port}",
            "User-Agent: kaseum-bench/1",
            "Accept: application/json",
        ]
        if method in WITH_BODY:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        if token:
            lines.append(f"Authorization: Bearer {token}")
        out.append(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return out


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one whole response; returns (status, server wants the connection closed)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise ProtocolError(f"bad status line {lines[0]!r}")
    status = int(parts[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    close = headers.get("connection", "").lower() == "close" or parts[0] == "HTTP/1.0"
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif status not in (204, 304) and status >= 200:
        await reader.read()  # delimited by the end of the connection
        close = True
    return status, close


class Connection:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = False

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.target.host, self.target.port)
        self.used = False

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def exchange(self, request: bytes) -> int:
        """Send one request, read its response; reconnect once if a kept-alive connection was dropped."""
        for attempt in (0, 1):
            if self.writer is None:
                await self.open()
            assert self.reader is not None and self.writer is not None
            reused = self.used
            try:
                self.writer.write(request)
                await self.writer.drain()
                status, close = await read_response(self.reader)
            except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
                self.close()
                nothing_read = not isinstance(exc, asyncio.IncompleteReadError) or not exc.partial
                if reused and nothing_read and attempt == 0:
                    continue  # the server closed an idle kept-alive connection: the request never ran
                raise
            self.used = True
            if close:
                self.close()
            return status
        raise AssertionError("unreachable")


async def worker(target: Target, requests: list[bytes], total: int, rate: float, start: float,
                 expect: int, timeout: float, tally: Tally) -> None:
    conn = Connection(target)
    try:
        while tally.next_index < total:
            i = tally.next_index
            tally.next_index += 1
            if rate > 0:
                due = start + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                began = due
            else:
                began = time.perf_counter()
            try:
                status = await asyncio.wait_for(conn.exchange(requests[i % len(requests)]), timeout)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ProtocolError,
                    TimeoutError, ValueError) as exc:
                conn.close()
                tally.errors += 1
                tally.count(type(exc).__name__)
                continue
            done = time.perf_counter()
            tally.last_done = max(tally.last_done, done)
            tally.count(str(status))
            if status == expect:
                tally.latencies.append(done - began)
            else:
                tally.errors += 1
    finally:
        conn.close()


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


async def run(target: Target, requests: list[bytes], total: int, concurrency: int, rate: float, expect: int,
              timeout: float) -> dict[str, Any]:
    tally = Tally()
    start = time.perf_counter()
    tally.last_done = start
    await asyncio.gather(*(worker(target, requests, total, rate, start, expect, timeout, tally)
                           for _ in range(concurrency)))
    seconds = max(tally.last_done - start, 1e-9)
    lat = sorted(tally.latencies)
    ok = len(lat)
    return {
        "count": total,
        "ok": ok,
        "errors": tally.errors,
        "statuses": dict(sorted(tally.statuses.items())),
        "seconds": round(seconds, 4),
        "throughput": round(ok / seconds, 2),
        "p50_ms": round(percentile(lat, 50) * 1000, 3),
        "p99_ms": round(percentile(lat, 99) * 1000, 3),
        "max_ms": round((lat[-1] if lat else 0.0) * 1000, 3),
        "mean_ms": round((sum(lat) / ok if ok else 0.0) * 1000, 3),
        "concurrency": concurrency,
        "rate": rate,
        "cpu_s": round(time.process_time(), 3),
    }


def parse_target(url: str) -> Target:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise SystemExit(f"only http:// URLs are supported, not {url!r}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.hostname, parts.port or 80, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="http://host:port/path?query to send the requests to")
    parser.add_argument("--method", default="POST", choices=["GET", "POST", "PUT", "PATCH", "DELETE"])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=0.0, help="open-loop requests/second (0: closed loop)")
    parser.add_argument("--tokens-file", help="JSON list of bearer tokens to cycle through")
    parser.add_argument("--bodies-file", help="JSON list of request bodies to cycle through (POST/PUT/PATCH)")
    parser.add_argument("--expect", type=int, default=201, help="the status that counts as success")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds allowed per request")
    args = parser.parse_args(argv)
    tokens: list[str] = []
    if args.tokens_file:
        with open(args.tokens_file) as f:
            tokens = [str(t) for t in json.load(f)]
    bodies: list[bytes] | None = None
    if args.bodies_file:
        with open(args.bodies_file) as f:
            bodies = [json.dumps(b, separators=(",", ":")).encode() for b in json.load(f)]
    target = parse_target(args.url)
    requests = build_requests(target, tokens, args.method, bodies)
    result = asyncio.run(run(target, requests, args.requests, max(1, args.concurrency), args.rate, args.expect,
                             args.timeout))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
