"""One bootstrap per service process: settings → database, outbox, bus, verifier, gRPC server."""

from __future__ import annotations

import asyncio
import gc
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import grpc
from kaseum.identity.v1 import identity_pb2, identity_pb2_grpc
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from . import caller, clients, errors, migrations, telemetry
from . import holds as legal_holds
from .bus import Bus, Subscription
from .db import UnitOfWorkFactory, make_engine, utcnow
from .declarations import ServiceDeclaration
from .governance import Governance
from .governance_api import FULL_NAME as GOVERNANCE
from .governance_api import GovernanceApi
from .governance_models import GovernanceModels
from .grpc_server import GrpcServer, wait_for_termination
from .logs import get_logger, setup_logging
from .outbox import InboxMixin, OutboxMixin, OutboxWriter
from .retention import Purger
from .revocations import RevocationList
from .scrub import Scrubber
from .settings import ServiceSettings
from .transfers import (
    HostingWatch,
    TransferGate,
    TransferPolicy,
    check_hosting,
    load_adequacy,
    load_safeguards,
    parse_hosting,
)

log = get_logger(__name__)
R = TypeVar("R")


def jwks_source(identity: identity_pb2_grpc.IdentityStub) -> caller.JwksSource:
    """Fetches identity's public keys over gRPC, for every service but identity and for the gateway.
    GetJwks is public and asked without credentials: public keys need none, and a service's readiness
    waits for them (serve), so nothing about its own secret should stand in the way."""
    def fetch() -> dict[str, Any]:
        return caller.jwks_from_json(identity.GetJwks(identity_pb2.GetJwksRequest()).jwks_json)

    return fetch


def identity_jwks_source(settings: ServiceSettings) -> caller.JwksSource:
    return jwks_source(identity_pb2_grpc.IdentityStub(
        clients.channel(settings.identity_addr, "kaseum.identity.v1.Identity", ["GetJwks"], deadline=3)))


@dataclass
class ServiceRuntime(Generic[R]):
    """Everything one service process wires together; built once in bootstrap()."""

    settings: ServiceSettings
    outbox_model: type[OutboxMixin]
    inbox_model: type[InboxMixin]
    repo_factory: Callable[[Session], R]
    jwks_source: caller.JwksSource | None = None
    subscriptions: list[Subscription] = field(default_factory=list)
    # Servicers every service serves the same way (Governance), added by governance().
    generic_servicers: list[tuple[Callable[[Any, Any], None], Any, str]] = field(default_factory=list)
    # The declared hosting providers' latest decisions, once governance() has run.
    hosting: HostingWatch | None = None

    def __post_init__(self) -> None:
        s = self.settings
        self.engine = make_engine(s.database_url)
        if telemetry.enabled():
            # Per statement, even with the no-op tracer, it costs a span's bookkeeping (~0.3 ms a sign-in).
            SQLAlchemyInstrumentor().instrument(engine=self.engine, enable_commenter=False)
        self.session_factory: sessionmaker[Session] = sessionmaker(self.engine, expire_on_commit=False)
        self.outbox = OutboxWriter(self.outbox_model, s.region)
        self.uow: UnitOfWorkFactory[R] = UnitOfWorkFactory(self.session_factory, self.repo_factory, self.outbox)
        self.credentials = caller.ServiceCredentials(s.service_secret(), s.service_name)
        source = self.jwks_source or identity_jwks_source(s)
        self.verifier = caller.TokenVerifier(source, s.service_secret())
        if self.jwks_source is None:
            self.verifier.warm_up()
        self.bus = Bus(s.nats_url, s.region, s.service_name)
        self.revocations = RevocationList(self.bus, s.region)
        # Asked when the revoked-session bucket cannot answer; identity replaces it with its own check.
        self.ask_identity: Callable[[str], None] = self._authenticate_with_identity
        self._identity: identity_pb2_grpc.IdentityStub | None = None
        self.outbox.on_commit(self.bus.wake)
        self.bus.relay(self.session_factory, self.outbox_model)
        # After an erasure, its rows leave the database files too (WAL checkpoint or VACUUM).
        self.scrubber = Scrubber(self.engine)
        self.every(s.scrub_interval_seconds, self.scrubber.run_once)

    def _authenticate_with_identity(self, token: str) -> None:
        if self._identity is None:
            self._identity = identity_pb2_grpc.IdentityStub(clients.channel(
                self.settings.identity_addr, "kaseum.identity.v1.Identity", ["Authenticate"], deadline=3))
        try:
            self._identity.Authenticate(identity_pb2.AuthenticateRequest(token=token))
        except grpc.RpcError as exc:
            if isinstance(exc, grpc.Call) and exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise errors.Unauthenticated("session has ended", "session_revoked") from exc
            raise errors.Unavailable("cannot confirm the session right now; try again") from exc

    def check_session(self, principal: caller.Principal, token: str) -> None:
        """Refuse a revoked session: the region's bucket, else identity (fail closed)."""
        self.revocations.refuse_revoked(principal.session_id, lambda: self.ask_identity(token))

    def subscribe(self, durable: str, subjects: list[str], handlers: dict[str, Any]) -> Subscription:
        sub = Subscription(durable=durable, subjects=subjects, handlers=handlers,
                           uow_factory=self.uow, inbox_model=self.inbox_model,
                           max_deliver=self.settings.max_deliver)
        self.subscriptions.append(sub)
        self.bus.consume(sub)
        return sub

    def every(self, seconds: float | Callable[[], float], job: Callable[[], object], *,
              wait_first: bool = False) -> None:
        """Run `job` in a worker thread every `seconds`, off the request path (e.g. a purge).

        Every replica runs it; jobs are idempotent batches of deletes, so that is safe. `seconds` may be
        a function, asked after each run (e.g. to wake just after midnight); `wait_first` skips the run at
        start (when start-up has just done the same work).
        """
        def pause() -> float:
            return seconds() if callable(seconds) else seconds

        async def loop() -> None:
            if wait_first:
                await self.bus.sleep(pause())
            while not self.bus.stopping:
                try:
                    await asyncio.to_thread(job)
                except Exception:
                    log.exception("periodic job failed", job=getattr(job, "__name__", "job"))
                await self.bus.sleep(pause())

        self.bus.add_task(loop)

    def governance(self, declaration: ServiceDeclaration, models: GovernanceModels, *,
                   hold_events: bool = True, clock: Callable[[], Any] = utcnow) -> Governance:
        """Sections 5, 10, 11 and 12 for this service, in one call from its bootstrap():

        refuses to start on an undeclared column or a hosting provider the transfer policy refuses, and
        re-checks the providers while running (a refusal: NOT_SERVING, an error logged);
        builds `self.transfers` (the TransferGate); subscribes the legal-hold projection (unless the
        service owns holds: rights); runs the retention purge every
        `retention_purge_interval_seconds`; serves kaseum.privacy.v1.Governance.
        """
        s = self.settings
        problems = declaration.problems()
        if problems:
            raise RuntimeError(f"{s.service_name}: processing declarations incomplete: {'; '.join(problems)}")
        policy = TransferPolicy(load_adequacy(s.adequacy_file), load_safeguards(s.transfer_safeguards_file))
        self.transfers = TransferGate(policy, self.session_factory, models.transfers, models.heads, clock)
        providers = parse_hosting(s.hosting_providers)
        decisions = check_hosting(self.transfers, providers, s.service_name)
        # A safeguard may expire while the service runs: re-checked hourly and just after each UTC
        # midnight; a refusal turns the service's health NOT_SERVING (serve() reads self.hosting).
        watch = self.hosting = HostingWatch(self.transfers, providers, s.service_name,
                                            list(zip(providers, decisions, strict=True)))
        if hold_events:
            self.subscribe(f"{s.service_name}-holds", [x.format(region=s.region) for x in legal_holds.SUBJECTS],
                           legal_holds.handlers(models.holds))
        purger = Purger(declaration.retention, self.session_factory, models.purge_runs, clock,
                        s.retention_batch_size, s.retention_batch_pause_seconds, s.retention_max_batch_seconds,
                        s.retention_yield_factor)
        if purger.rules:
            self.every(s.retention_purge_interval_seconds, purger.run_once)
        if providers:
            self.every(lambda: watch.seconds_to_next_check(s.hosting_recheck_interval_seconds), watch.check,
                       wait_first=True)
        gov = Governance(s.service_name, s.region, self.session_factory, models, declaration, policy,
                         hosting_watch=watch)
        api = GovernanceApi(gov)
        self.generic_servicers.append((lambda servicer, server: api.register(server), api, GOVERNANCE))
        return gov

    def database_ok(self) -> bool:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True

    def serve(self, servicers: Iterable[tuple[Callable[[Any, Any], None], Any, str]],
              public_methods: Iterable[str] = ()) -> None:
        server = GrpcServer(self.settings.grpc_bind, self.verifier, public_methods,
                            self.settings.grpc_workers, session_check=self.check_session)
        for register, servicer, name in [*servicers, *self.generic_servicers]:
            server.add(register, servicer, name)
        self.bus.start()
        checks: dict[str, Callable[[], bool]] = {"database": self.database_ok, "nats": lambda: self.bus.connected}
        critical = ["database"]
        if self.jwks_source is None:
            # Until identity's public keys are held, no person's token can be checked here: not ready
            # (once held, they outlive an identity outage).
            checks["identity_keys"], critical = self.verifier.has_keys, [*critical, "identity_keys"]
        if self.hosting is not None:
            checks["hosting"], critical = self.hosting.serving, [*critical, "hosting"]
        # What start-up made (modules, settings, engine, stubs) lives as long as the process: out of the
        # collector's way. Otherwise every full collection under load walks all of it, a stop of 0.1-0.25 s
        # holding the GIL (measured in each service during 200 erasures at once).
        gc.freeze()
        server.start(checks, critical)
        log.info("serving", bind=self.settings.grpc_bind, region=self.settings.region)

        def stop() -> None:
            log.info("stopping")
            server.stop(5)
            self.bus.stop()
            telemetry.shutdown_tracing()
            self.engine.dispose()

        wait_for_termination(stop)


def main_entry(name: str, migrations_dir: Path, serve: Callable[[ServiceSettings], None]) -> None:
    """`python -m <service> [serve|migrate]`."""
    settings = ServiceSettings.for_service(name)
    setup_logging(name, settings.log_level)
    command = sys.argv[1] if len(sys.argv) > 1 else "serve"
    if command == "migrate":
        migrations.upgrade(migrations_dir, settings.database_url)
        print(json.dumps({"service": name, "migrated": True}))
        return
    if command != "serve":
        raise SystemExit(f"usage: python -m {name} [serve|migrate]")
    telemetry.setup_tracing(name, settings.otel_exporter_otlp_endpoint)
    serve(settings)
