"""Tickets' settings."""

from __future__ import annotations

from servicekit.settings import ServiceSettings


class TicketsSettings(ServiceSettings):
    page_size_default: int = 20
