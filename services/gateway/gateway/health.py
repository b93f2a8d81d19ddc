"""/healthz (the process is alive) and /readyz (every service answers its health check)."""

from __future__ import annotations

from typing import Any

import grpc
from flask import Blueprint
from grpc_health.v1 import health_pb2

from .auth import backends

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> tuple[dict[str, Any], int]:
    states: dict[str, str] = {}
    for name, stub in backends().health.items():
        try:
            answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
            states[name] = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
        except grpc.RpcError:
            states[name] = "UNREACHABLE"
    ready = all(state == "SERVING" for state in states.values())
    return {"status": "ready" if ready else "not_ready", "services": states}, 200 if ready else 503
