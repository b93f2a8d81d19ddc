"""`python -m gateway`: serve the gateway with gunicorn worker threads (never Flask's dev server).

Used by `make run`, the tests and the container image alike.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Access lines as JSON without the client address or query string: no personal data in logs.
ACCESS_LOG = '{"event": "request", "status": %(s)s, "method": "%(m)s", "path": "%(U)s", "ms": %(M)s}'


def main() -> None:
    port = os.environ.get("GATEWAY_PORT", "8080")
    bind = os.environ.get("GATEWAY_BIND", f"0.0.0.0:{port}")
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    os.execv(gunicorn, [
        gunicorn, "--bind", bind,
        "--workers", os.environ.get("GATEWAY_WORKERS", "2"),
        "--threads", os.environ.get("GATEWAY_THREADS", "8"),
        "--graceful-timeout", "5",
        "--access-logfile", "-", "--access-logformat", ACCESS_LOG,
        "gateway.app:create_app()",
    ])


if __name__ == "__main__":
    main()
