"""Tickets' settings."""

from __future__ import annotations

from servicekit.settings import ServiceSettings


class TicketsSettings(ServiceSettings):
    page_size_default: int = 20
    # How long a reseller's scope is trusted before identity is asked again (at most 60).
    reseller_scope_ttl_seconds: float = 30.0
