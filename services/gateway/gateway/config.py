"""The gateway's settings (no database, no service secret: it acts only for the people it serves)."""

from __future__ import annotations

from servicekit.settings import CommonSettings


class GatewaySettings(CommonSettings):
    gateway_port: int = 8080
    # Largest request body accepted (bytes); larger gets 413.
    max_body_bytes: int = 1024 * 1024
    # Deadline for each call to a service (seconds).
    upstream_deadline: float = 10.0
    # Deadline for deciding and enqueuing a campaign or a notice to every customer (seconds): a
    # 100,000-subject campaign may take up to a minute. A client that gives up sooner retries with
    # the same Idempotency-Key and gets the same campaign.
    bulk_send_deadline: float = 120.0
    # How many reverse proxies in front set X-Forwarded-For (0 in `make run`).
    trusted_proxies: int = 0
