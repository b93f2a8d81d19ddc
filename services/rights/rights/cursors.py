"""Opaque keyset cursors for listings: (due_at, id) of the last request of a page."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

from servicekit.errors import InvalidArgument


def encode(due_at: datetime, request_id: str) -> str:
    raw = json.dumps([due_at.isoformat(), request_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> tuple[datetime, str] | None:
    """The position after which the next page starts; None for the first page."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        due, request_id = json.loads(raw)
        when = datetime.fromisoformat(due)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InvalidArgument("cursor is not valid", "invalid_cursor") from exc
    if not isinstance(request_id, str):
        raise InvalidArgument("cursor is not valid", "invalid_cursor")
    return (when if when.tzinfo else when.replace(tzinfo=UTC)), request_id
