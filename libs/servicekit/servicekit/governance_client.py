"""Asking every service's Governance at once (the gateway's DPO routes and the `kaseum` CLI).

A service that is down, or does not serve Governance yet, is reported by name with the reason,
never silently left out of an answer that claims to cover "every service".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import grpc
from kaseum.privacy.v1 import governance_pb2_grpc

from . import clients
from .governance_api import FULL_NAME
from .settings import SERVICES, CommonSettings

T = TypeVar("T")
READS = ("GetRetentionSchedule", "ListPurgeRuns", "QueryAudit", "AccessedSubjects", "VerifyChain",
         "ListTransfers", "GetDeclarations")


def stubs(settings: CommonSettings, deadline: float = 10) -> dict[str, governance_pb2_grpc.GovernanceStub]:
    return {name: governance_pb2_grpc.GovernanceStub(clients.channel(settings.addr_of(name), FULL_NAME, READS,
                                                                     deadline=deadline))
            for name in SERVICES}


def why(error: grpc.RpcError) -> str:
    code = error.code() if isinstance(error, grpc.Call) else None
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return "does not serve kaseum.privacy.v1.Governance yet"
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return "not reachable"
    return f"{error.details() if isinstance(error, grpc.Call) else 'failed'}"


def fan_out(services: Mapping[str, governance_pb2_grpc.GovernanceStub],
            call: Callable[[str, governance_pb2_grpc.GovernanceStub], T]) -> tuple[dict[str, T], dict[str, str]]:
    """(answers by service, reasons by service that did not answer). Auth failures are raised."""
    answers: dict[str, T] = {}
    missing: dict[str, str] = {}

    def one(name: str) -> tuple[str, T | None, grpc.RpcError | None]:
        try:
            return name, call(name, services[name]), None
        except grpc.RpcError as exc:
            return name, None, exc

    with ThreadPoolExecutor(max_workers=len(services) or 1) as pool:
        for name, answer, error in pool.map(one, list(services)):
            if error is None:
                answers[name] = answer  # type: ignore[assignment]
                continue
            code = error.code() if isinstance(error, grpc.Call) else None
            if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED,
                        grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
                raise error  # the caller's problem, the same for every service: answer it as such
            missing[name] = why(error)
    return answers, missing
