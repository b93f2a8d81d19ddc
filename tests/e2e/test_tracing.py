"""One trace follows a sign-up from the gateway through identity and across NATS into consent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from servicekit.testing import eventually

from tests.support.api import Api, signup_body
from tests.support.otlp import Collector, Span


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.close()


def test_a_trace_spans_gateway_identity_nats_and_consent(make_stack, collector: Collector) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack(OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint, OTEL_BSP_SCHEDULE_DELAY="100")
    stack.start()
    body = signup_body()
    response = Api(stack.gateway_url).call("POST", "/api/v1/accounts", json=body)
    assert response.status_code == 201

    def chain_of(trace: list[Span]) -> list[tuple[str, str]]:
        """From the consumer up through its parents: (service, span name) of each."""
        by_id = {s.span_id: s for s in trace}
        chain, span = [], next(s for s in trace if s.name == "consume identity.account.created")
        while span.parent_id and span.parent_id in by_id:
            span = by_id[span.parent_id]
            chain.append((span.service, span.name))
        return chain

    def the_trace() -> list[Span] | None:
        spans = collector.snapshot()
        roots = [s for s in spans if s.service == "gateway" and "/api/v1/accounts" in s.name]
        if not roots:
            return None
        trace = [s for s in spans if s.trace_id == roots[0].trace_id]
        consumed = [s for s in trace if s.service == "consent" and s.name == "consume identity.account.created"]
        # Each process exports on its own schedule: wait until the chain reaches the gateway.
        return trace if consumed and chain_of(trace) and chain_of(trace)[-1][0] == "gateway" else None

    trace = eventually(the_trace, timeout=30, what="spans from gateway, identity and consent in one trace")
    services = {s.service for s in trace}
    assert {"gateway", "identity", "consent"} <= services
    chain = chain_of(trace)
    assert ("identity", "/kaseum.identity.v1.Identity/SignUp") in chain, chain
    assert chain[-1][0] == "gateway", chain
    # With tracing on, database statements are spans too (their shape only: values are bound parameters).
    assert any("db.statement" in s.attributes for s in trace if s.service == "identity"), [s.name for s in trace]

    # No personal data in span attributes.
    for s in collector.snapshot():
        for value in s.attributes.values():
            for secret in (body["email"], body["username"], body["password"], body["phone"]):
                assert secret not in value, (s.name, value)
