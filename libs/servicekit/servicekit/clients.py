"""gRPC client channels: tracing, a deadline on every call, retries only where idempotent."""

from __future__ import annotations

import collections
import json
from collections.abc import Callable, Iterable
from typing import Any

import grpc
from opentelemetry.instrumentation.grpc import client_interceptor
from opentelemetry.instrumentation.grpc.grpcext import intercept_channel as traced

from . import telemetry

DEFAULT_DEADLINE = 5.0


class _Details(
    collections.namedtuple(
        "_Details", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
    ),
    grpc.ClientCallDetails,  # type: ignore[misc]
):
    pass


class DefaultDeadline(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Gives every call a deadline unless the caller chose one, and lets it wait for the
    connection within that deadline (a restarting replica is then a delay, not an error)."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        if details.timeout is None:
            wait = True if details.wait_for_ready is None else details.wait_for_ready
            details = _Details(details.method, self._seconds, details.metadata, details.credentials,
                               wait, details.compression)
        return continuation(details, request)


def retry_config(service: str, idempotent_methods: Iterable[str]) -> str:
    methods = [{"service": service, "method": m} for m in idempotent_methods]
    if not methods:
        return json.dumps({"methodConfig": []})
    return json.dumps({
        "methodConfig": [{
            "name": methods,
            "retryPolicy": {
                "maxAttempts": 3,
                "initialBackoff": "0.05s",
                "maxBackoff": "0.5s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }]
    })


def channel(addr: str, service: str = "", idempotent_methods: Iterable[str] = (),
            deadline: float = DEFAULT_DEADLINE) -> grpc.Channel:
    """An insecure channel for loopback/mesh; production wraps pods in mTLS (see the chart)."""
    options: list[tuple[str, Any]] = [
        ("grpc.enable_retries", 1),
        ("grpc.service_config", retry_config(service, idempotent_methods)),
        ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        # Reconnect quickly after a service restarts: the default back-off grows to
        # two minutes, during which every call would fail fast with UNAVAILABLE.
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 1000),
    ]
    raw = grpc.insecure_channel(addr, options=options)
    deadlined = grpc.intercept_channel(raw, DefaultDeadline(deadline))
    if not telemetry.enabled():
        return deadlined  # no span to make or context to carry: spans would go nowhere
    return traced(deadlined, client_interceptor())  # type: ignore[no-any-return,no-untyped-call]
