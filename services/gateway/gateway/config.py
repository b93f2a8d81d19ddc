"""The gateway's settings (no database, no service secret: it acts only for the people it serves)."""

from __future__ import annotations

from servicekit.settings import CommonSettings


class GatewaySettings(CommonSettings):
    gateway_port: int = 8080
    # Largest request body accepted (bytes); larger gets 413.
    max_body_bytes: int = 1024 * 1024
    # Deadline for each call to a service (seconds).
    upstream_deadline: float = 10.0
    # How many reverse proxies in front set X-Forwarded-For (0 in `make run`).
    trusted_proxies: int = 0
