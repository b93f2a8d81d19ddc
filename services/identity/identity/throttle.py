"""Throttling kept in identity's database (so every replica sees it): an account's by its id, anything else
under a keyed hash only, never a login name, address or e-mail.

Two shapes: back-off after failures (sign-in), and a cap per window (sign-up, reset requests).
Neither is a permanent lock that a stranger could use to shut someone out.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime, timedelta

from servicekit.db import as_utc
from servicekit.errors import Throttled

from .models import ACCOUNT_THROTTLE_PREFIX, LoginThrottle, Repository, ThrottleState

# Failed sign-ins allowed before back-off starts: per login name, and per client
# address (where a whole office may share one NAT), and the longest wait.
FREE_FAILURES = {"login": 5, "ip": 30}
MAX_BACKOFF_SECONDS = 900


class Throttle:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def key(self, kind: str, value: str) -> str:
        """`kind:` + a keyed hash: the table never holds a login name, address or e-mail."""
        return kind + ":" + hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()[:64]

    @staticmethod
    def account_key(account_id: str) -> str:
        """An account's sign-in back-off, whichever of its logins is typed: keyed by its id, which is no
        personal value, so that the sign-in's read finds it by a join (`models.SIGN_IN_READ`)."""
        return ACCOUNT_THROTTLE_PREFIX + account_id

    @staticmethod
    def check(repo: Repository, keys: list[str], now: datetime) -> dict[str, ThrottleState]:
        """Raise Throttled while any key is backing off; what the keys have counted otherwise."""
        rows = repo.throttle_states(keys)
        Throttle.refuse_blocked(rows.values(), now)
        return rows

    @staticmethod
    def refuse_blocked(states: Iterable[ThrottleState | None], now: datetime) -> None:
        """Raise Throttled if any of `states` (None: nothing counted) is backing off at `now`."""
        for row in states:
            if row is not None and row.blocked_until is not None and as_utc(row.blocked_until) > now:
                wait = int((as_utc(row.blocked_until) - now).total_seconds()) + 1
                raise Throttled(f"too many attempts; try again in {wait} s", wait)

    @staticmethod
    def _row(repo: Repository, key: str, now: datetime) -> LoginThrottle:
        return repo.throttle_row(key, now)

    def failed(self, repo: Repository, keys: list[str], now: datetime) -> None:
        """Count a failure; past the free ones, back off exponentially (capped)."""
        for key in keys:
            row = self._row(repo, key, now)
            row.failures += 1
            row.updated_at = now
            free = FREE_FAILURES.get(key.split(":", 1)[0], 5)
            if row.failures >= free:
                row.blocked_until = now + timedelta(seconds=min(2 ** (row.failures - free), MAX_BACKOFF_SECONDS))

    def count(self, repo: Repository, key: str, limit: int, window: timedelta, now: datetime) -> None:
        """Allow `limit` uses of `key` per `window`; the next one is refused until the window ends."""
        self.check(repo, [key], now)
        row = self._row(repo, key, now)
        if now - as_utc(row.updated_at) > window:
            row.failures = 0
        if row.failures == 0:
            row.updated_at = now  # the window starts with its first use
        row.failures += 1
        if row.failures >= limit:
            row.blocked_until = as_utc(row.updated_at) + window
