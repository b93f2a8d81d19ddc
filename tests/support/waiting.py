"""Waits that retry instead of sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(probe: Callable[[], T], timeout: float = 20.0, interval: float = 0.1,
               what: str = "condition") -> T:
    """Call `probe` until it returns a truthy value (returned) or raises no AssertionError."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except AssertionError as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}" + (f": {last}" if last else ""))
