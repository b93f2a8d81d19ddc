"""OpenTelemetry tracing: OTLP when configured, nothing otherwise; context across NATS headers.

Span attributes never carry personal data: the instrumentations record
methods, routes and statement shapes, and our own spans record ids only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

_provider: TracerProvider | None = None


def setup_tracing(service_name: str, otlp_endpoint: str = "", exporter: SpanExporter | None = None) -> None:
    """Install a tracer provider once per process.

    With `otlp_endpoint` (OTEL_EXPORTER_OTLP_ENDPOINT) spans go to a collector
    over OTLP/HTTP; `exporter` lets a test capture spans in memory.
    """
    global _provider
    if _provider is not None:
        if exporter is not None:
            _provider.add_span_processor(SimpleSpanProcessor(exporter))
        return
    if not otlp_endpoint and exporter is None:
        # Nowhere to send spans: keep OpenTelemetry's no-op tracer instead of building spans that would
        # be dropped. The request instrumentations (Flask, gRPC, SQLAlchemy) are then not installed at
        # all (`enabled()`): a deployment exports from every service or from none (one setting of the
        # chart), so a trace context carried through would reach no span either.
        return
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = otlp_endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _provider = provider


def enabled() -> bool:
    """Whether spans go anywhere (setup_tracing installed a provider)."""
    return _provider is not None


def shutdown_tracing() -> None:
    if _provider is not None:
        _provider.shutdown()


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def current_trace_headers() -> dict[str, str]:
    """W3C trace context of the current span, to store with an outbox row."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextmanager
def continued_from(headers: Mapping[str, str] | None) -> Iterator[None]:
    """Make the trace context carried in message headers current."""
    ctx = propagate.extract(dict(headers or {}))
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)
