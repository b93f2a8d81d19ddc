"""Resellers' scopes, asked of identity (which owns the relationships) and cached briefly.

A cached scope lives at most `ttl` seconds (30 by default), so a relationship that identity
ends stops granting access within a minute on every replica, whichever of them hears the
`identity.reseller.relationship_changed` event; the replica that hears it forgets that
reseller's scope at once. When identity cannot answer, nothing is granted (the caller gets
a retryable error, never a stale or widened view).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .visibility import Scope

DEFAULT_TTL_SECONDS = 30.0


class ResellerScopes:
    def __init__(self, fetch: Callable[[str], Scope], ttl: float = DEFAULT_TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 <= ttl <= 60:
            raise ValueError("a reseller scope may be cached for at most a minute")
        self._fetch = fetch
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, Scope]] = {}
        self._lock = threading.Lock()

    def of(self, reseller_account_id: str) -> Scope:
        now = self._clock()
        with self._lock:
            hit = self._cache.get(reseller_account_id)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        scope = self._fetch(reseller_account_id)
        with self._lock:
            self._cache[reseller_account_id] = (now, scope)
        return scope

    def forget(self, reseller_id: str) -> None:
        """Drop every cached scope of one reseller organisation (its relationships changed)."""
        with self._lock:
            for account, (_, scope) in list(self._cache.items()):
                if scope.reseller_id == reseller_id:
                    del self._cache[account]
