"""Revoked sessions in a NATS JetStream key-value bucket: identity writes, gateways read.

Identity stays the owner of sessions (its database is the record); the bucket is the
region's replicated list of session ids revoked before their access tokens expire, so a
gateway can refuse a revoked session on its very next request with one key lookup on
NATS instead of a call to identity. Entries expire with the longest access token, after
which the token's own expiry refuses it. A gateway that cannot read the bucket asks
identity instead (fail closed, never open).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from nats.js import api
from nats.js.errors import KeyNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from . import errors
from .bus import Bus

T = TypeVar("T")


def bucket_name(region: str) -> str:
    return f"kaseum_{region}_revoked_sessions"


class Unavailable(Exception):
    """The bucket could not be reached in time."""


# How long an entry is kept: longer than any access token lives (identity refuses a longer TTL).
ENTRY_TTL_SECONDS = 3600.0


class RevocationList:
    def __init__(self, bus: Bus, region: str) -> None:
        self._bus = bus
        self._bucket = bucket_name(region)
        self._ttl = ENTRY_TTL_SECONDS
        self._kv: KeyValue | None = None

    async def _store(self) -> KeyValue:
        if self._kv is None:
            js = self._bus.js
            if js is None:
                raise Unavailable("NATS is not connected")
            try:
                self._kv = await js.key_value(self._bucket)
            except NotFoundError:
                self._kv = await js.create_key_value(api.KeyValueConfig(
                    bucket=self._bucket, history=1, ttl=self._ttl, storage=api.StorageType.FILE,
                    direct=True))
        return self._kv

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        if not self._bus.connected:
            coro.close()
            raise Unavailable("NATS is not connected")
        try:
            return asyncio.run_coroutine_threadsafe(coro, self._bus.loop).result(timeout)
        except Unavailable:
            raise
        except Exception as exc:
            raise Unavailable(type(exc).__name__) from exc

    def revoke(self, session_ids: list[str], timeout: float = 3.0) -> None:
        """Record revocations; raises Unavailable if NATS did not confirm them."""
        async def put() -> None:
            kv = await self._store()
            for session_id in session_ids:
                await kv.put(session_id, b"1")

        if session_ids:
            self._run(put(), timeout)

    def refuse_revoked(self, session_id: str, ask_identity: Callable[[], None]) -> None:
        """Raise Unauthenticated for a revoked session; when the bucket cannot say, `ask_identity`
        decides (it raises for a revoked session): fail closed, never open."""
        try:
            revoked = self.is_revoked(session_id)
        except Unavailable:
            ask_identity()
            return
        if revoked:
            raise errors.Unauthenticated("session has ended", "session_revoked")

    def is_revoked(self, session_id: str, timeout: float = 0.5) -> bool:
        """True/False from the bucket; raises Unavailable when it cannot say."""
        async def get() -> bool:
            kv = await self._store()
            try:
                await kv.get(session_id)
            except KeyNotFoundError:
                return False
            return True

        return self._run(get(), timeout)
