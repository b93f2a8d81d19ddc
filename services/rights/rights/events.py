"""Rights reacts to no events yet; it publishes through the outbox (see service.py).

Kept so every service has the same shape: handlers would be registered here.
"""

from __future__ import annotations

from typing import Any

HANDLERS: dict[str, Any] = {}
