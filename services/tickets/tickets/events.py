"""Tickets reacts to no events yet; it publishes through the outbox (see service.py)."""

from __future__ import annotations

from typing import Any

HANDLERS: dict[str, Any] = {}
