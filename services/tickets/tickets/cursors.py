"""Opaque keyset cursors: (created_at, id) of the last item of a page."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from servicekit.errors import InvalidArgument


def encode(created_at: datetime, item_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), item_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, item_id = json.loads(raw)
        return datetime.fromisoformat(created), str(item_id)
    except (ValueError, TypeError) as exc:
        raise InvalidArgument("cursor is not valid", "invalid_cursor") from exc
