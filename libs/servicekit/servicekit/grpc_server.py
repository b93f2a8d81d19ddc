"""gRPC server bootstrap: caller identity, error translation, tracing, health, reflection, graceful stop."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from contextlib import contextmanager
from typing import Any, NoReturn

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import server_interceptor
from sqlalchemy.exc import IntegrityError

from . import caller, telemetry
from .errors import (
    Conflict,
    DomainError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Throttled,
    Unauthenticated,
    Unavailable,
    WrongRegion,
)
from .logs import get_logger

log = get_logger(__name__)

ERROR_CODE_KEY = "kaseum-error-code"
RACE_MESSAGE = "a conflicting change happened at the same time; try again"
RETRY_AFTER_KEY = "kaseum-retry-after"

# Raises Unauthenticated for a revoked session (principal, raw token).
SessionCheck = Callable[[caller.Principal, str], None]

_STATUS: list[tuple[type[DomainError], grpc.StatusCode]] = [
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (Conflict, grpc.StatusCode.ALREADY_EXISTS),
    (WrongRegion, grpc.StatusCode.FAILED_PRECONDITION),
    (Throttled, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
]


def status_of(error: DomainError) -> grpc.StatusCode:
    for cls, code in _STATUS:
        if isinstance(error, cls):
            return code
    return grpc.StatusCode.FAILED_PRECONDITION


def failure_of(exc: Exception, method: str) -> tuple[grpc.StatusCode, str, str]:
    """What a call that raised `exc` ends with: (status, machine code, message for the client). An error
    that is not a domain error is a bug: logged here (with the traceback; messages are redacted), and the
    client learns only that it was internal."""
    if isinstance(exc, IntegrityError):
        # Two requests raced on a unique key: the loser is told to try again, not "internal".
        return grpc.StatusCode.ABORTED, "conflict", RACE_MESSAGE
    if isinstance(exc, DomainError):
        return status_of(exc), exc.code, exc.message
    log.error("unhandled error", method=method, exc_info=exc)
    return grpc.StatusCode.INTERNAL, "internal", "internal error"


class CallerInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Authenticates every call (deny by default) and turns domain errors into statuses."""

    def __init__(self, verifier: caller.TokenVerifier, public_methods: Iterable[str],
                 session_check: SessionCheck | None = None) -> None:
        self._verifier = verifier
        self._public = frozenset(public_methods)
        self._session_check = session_check

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        method: str = details.method
        if handler is None or method.startswith("/grpc."):
            return handler
        public = method in self._public
        if handler.unary_unary is not None:
            unary = handler.unary_unary

            def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
                with self._as_caller(context, public, method):
                    return unary(request, context)

            return grpc.unary_unary_rpc_method_handler(
                wrapped, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        if handler.unary_stream is not None:
            streaming = handler.unary_stream

            def wrapped_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                # The same checks as a unary call; errors while streaming end the stream with a status.
                with self._as_caller(context, public, method):
                    yield from streaming(request, context)

            return grpc.unary_stream_rpc_method_handler(
                wrapped_stream, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        # Deny by default: a client-streaming method would otherwise skip authentication.
        return grpc.unary_unary_rpc_method_handler(
            lambda request, context: context.abort(grpc.StatusCode.UNIMPLEMENTED, "not served"))

    @contextmanager
    def _as_caller(self, context: grpc.ServicerContext, public: bool, method: str) -> Iterator[None]:
        """Authenticate, make the caller current for the call, and turn any failure into a status."""
        token = None
        try:
            token = caller.set_current(self._authenticate(context, public))
            yield
        except Exception as exc:
            self._abort(context, method, exc)
        finally:
            if token is not None:
                caller.reset_current(token)

    def _authenticate(self, context: grpc.ServicerContext, public: bool) -> caller.Principal | None:
        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        principal = self._verifier.from_metadata(metadata)
        if principal is None and not public:
            raise Unauthenticated("credentials required")
        if principal is not None and not principal.is_service and self._session_check is not None:
            # A valid signature is not enough: the session must not have been revoked.
            self._session_check(principal, metadata.get("authorization", "").partition(" ")[2])
        return principal

    @staticmethod
    def _abort(context: grpc.ServicerContext, method: str, exc: Exception) -> NoReturn:
        trailers: list[tuple[str, str]] = []
        code, machine, message = failure_of(exc, method)
        if isinstance(exc, Throttled):
            trailers.append((RETRY_AFTER_KEY, str(exc.retry_after)))
        context.set_trailing_metadata(((ERROR_CODE_KEY, machine), *trailers))
        context.abort(code, message)
        raise AssertionError("context.abort always raises")


class HealthReporter:
    """Health from real dependencies, checked every `interval` s.

    The service itself ("" and its full names) is SERVING while its critical
    checks pass (the database answers; its declared hosting providers are allowed
    by the transfer policy). Others (NATS) are reported under
    `kaseum.dependency.<name>` only: with the outbox, a service keeps serving
    requests while NATS is away, and its events follow when NATS returns.
    """

    def __init__(self, servicer: health.HealthServicer, names: list[str],
                 checks: dict[str, Callable[[], bool]], critical: Iterable[str] = ("database",),
                 interval: float = 1.0) -> None:
        self._servicer = servicer
        self._names = names
        self._checks = checks
        self._critical = set(critical)
        self._interval = interval
        self._stop = threading.Event()
        self._last: dict[str, bool] = {}

    def check_once(self) -> bool:
        ok = True
        for name, check in self._checks.items():
            try:
                healthy = bool(check())
            except Exception:
                healthy = False
            if self._last.get(name) != healthy:
                log.info("dependency state", dependency=name, healthy=healthy)
                self._last[name] = healthy
            self._servicer.set(f"kaseum.dependency.{name}", _status(healthy))
            if name in self._critical and not healthy:
                ok = False
        for name in ["", *self._names]:
            self._servicer.set(name, _status(ok))
        return ok

    def run(self) -> None:
        while not self._stop.wait(self._interval):
            self.check_once()

    def start(self) -> None:
        self.check_once()
        threading.Thread(target=self.run, name="health", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._servicer.enter_graceful_shutdown()


def _status(ok: bool) -> Any:
    return health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING


class GrpcServer:
    """A gRPC server with our interceptors, health and reflection."""

    def __init__(self, bind: str, verifier: caller.TokenVerifier, public_methods: Iterable[str],
                 workers: int = 16, session_check: SessionCheck | None = None) -> None:
        interceptors: list[grpc.ServerInterceptor] = [CallerInterceptor(verifier, public_methods, session_check)]
        if telemetry.enabled():
            # A span per call only when spans go somewhere (telemetry.enabled).
            interceptors.insert(0, server_interceptor())  # type: ignore[no-untyped-call]
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
            interceptors=interceptors,
            options=[("grpc.max_receive_message_length", 8 * 1024 * 1024)],
        )
        self.health = health.HealthServicer(experimental_non_blocking=True)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self._service_names: list[str] = []
        self.port = self.server.add_insecure_port(bind)
        if self.port == 0:
            raise RuntimeError(f"cannot bind gRPC server to {bind}")
        self.reporter: HealthReporter | None = None

    def add(self, register: Callable[[Any, grpc.Server], None], servicer: Any, full_name: str) -> None:
        register(servicer, self.server)
        self._service_names.append(full_name)

    def start(self, checks: dict[str, Callable[[], bool]], critical: Iterable[str] = ("database",)) -> None:
        names = [*self._service_names, reflection.SERVICE_NAME, health.SERVICE_NAME]
        reflection.enable_server_reflection(names, self.server)
        self.reporter = HealthReporter(self.health, self._service_names, checks, critical)
        self.reporter.start()
        self.server.start()

    def stop(self, grace: float = 5.0) -> None:
        if self.reporter:
            self.reporter.stop()
        self.server.stop(grace).wait()


def wait_for_termination(stop: Callable[[], None]) -> None:
    """Block until SIGTERM or SIGINT, then run `stop` once (graceful shutdown)."""
    done = threading.Event()

    def _handler(_signum: int, _frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    done.wait()
    stop()
