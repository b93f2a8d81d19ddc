"""The baseline: a bare Flask app whose handlers return a constant, served like the gateway.

    gunicorn --threads 8 --workers 2 --pythonpath bench 'bare_app:create_app()'

With $KASEUM_BENCH_VERIFIER (host:port of bench/bare_verifier.py) it also answers POST /api/v1/sessions by
sending the password to that server and saying its verdict: the login's floor on this machine.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, request

TICKET = {"id": "0" * 32, "subject": "Benchmark ticket", "status": "open"}


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/v1/tickets")
    def open_ticket() -> tuple[dict[str, Any], int]:
        return TICKET, 201

    verifier = os.environ.get("KASEUM_BENCH_VERIFIER")
    if verifier:
        # The gateway's command has no --preload: each worker makes its app, and its channel, after the fork.
        import grpc
        from bare_verifier import METHOD

        verify = grpc.insecure_channel(verifier).unary_unary(METHOD)

        @app.post("/api/v1/sessions")
        def log_in() -> tuple[dict[str, Any], int]:
            password = str((request.get_json(silent=True) or {}).get("password", ""))
            if verify(password.encode(), timeout=10) == b"1":
                return {"ok": True}, 200
            return {"error": "bad_credentials"}, 401

    return app

