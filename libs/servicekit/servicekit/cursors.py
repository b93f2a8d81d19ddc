"""Opaque keyset cursors for listings: (time, id) of the last item of a page. No OFFSET anywhere."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, or_

from .db import as_utc
from .errors import InvalidArgument


def encode(when: datetime, item_id: str) -> str:
    raw = json.dumps([as_utc(when).isoformat(), item_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> tuple[datetime, str] | None:
    """The position after which the next page starts; None for the first page."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when_text, item_id = json.loads(raw)
        when = datetime.fromisoformat(when_text)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InvalidArgument("cursor is not valid", "invalid_cursor") from exc
    if not isinstance(item_id, str):
        raise InvalidArgument("cursor is not valid", "invalid_cursor")
    return as_utc(when), item_id


Q = TypeVar("Q", bound=Select[Any])


def newest_first(query: Q, created: Any, item_id: Any, after: tuple[datetime, str] | None, limit: int) -> Q:
    """`query` ordered newest first on (created, item_id), limited to `limit`, from after the position
    `after` (a decoded cursor; None for the first page). Written as an OR of comparisons, which every
    engine matches to a (created, id) index."""
    if after is not None:
        when, last = after
        query = query.where(or_(created < when, and_(created == when, item_id < last)))
    return query.order_by(created.desc(), item_id.desc()).limit(limit)
