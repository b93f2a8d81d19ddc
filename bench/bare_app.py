"""The baseline: a bare Flask app whose handler returns a constant, served like the gateway.

    gunicorn --threads 8 --workers 2 --pythonpath bench 'bare_app:create_app()'
"""

from __future__ import annotations

from typing import Any

from flask import Flask

TICKET = {"id": "0" * 32, "subject": "Benchmark ticket", "status": "open"}


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/v1/tickets")
    def open_ticket() -> tuple[dict[str, Any], int]:
        return TICKET, 201

    return app
