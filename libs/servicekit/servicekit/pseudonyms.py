"""Rotating pseudonym keys and the analytics exclusion list, in NATS JetStream key-value buckets.

Usage statistics name no one: the gateway publishes a keyed hash (HMAC-SHA-256) of the subject
id under the key of the current UTC day. The key is shared by every gateway replica, so it lives
in the region's key-value bucket, created atomically by whichever process first needs it
(`create` succeeds for exactly one writer; the others read the winner's key). Analytics destroys
a day's key once the day is rolled up (end of day + grace), and the bucket's TTL destroys it in
any case shortly after: from then on no one can recompute that day's pseudonyms, so they cannot
be linked to a person or to another day's pseudonyms. A key is never written to a database, a
log or the repository.

The exclusion list names the subjects whose usage must not be counted (an objection to analytics
or a restriction of processing): the minimum needed to honour them, kept in the region's NATS
(never in the analytics database), written by analytics from the owners' events and read by the
gateway before it publishes a use.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import re
import secrets
from collections.abc import Coroutine
from datetime import date, timedelta
from typing import Any, TypeVar

from nats.js import api
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from .bus import Bus

T = TypeVar("T")



def key_ttl_seconds(rollup_grace_seconds: float = 3600.0, rollup_interval_seconds: float = 600.0) -> float:
    """How long the bucket keeps a day's key. A key may be made as its day starts and must live
    until the day is rolled up (its end, plus the grace, plus up to one roll-up interval): until
    then analytics recomputes pseudonyms under it to erase or exclude a subject's events. Analytics
    destroys it after the roll-up; this TTL (an hour's margin more) is the backstop if none runs."""
    return 24 * 3600.0 + rollup_grace_seconds + rollup_interval_seconds + 3600.0


# With analytics' default settings (1 h grace, 10 min interval).
KEY_TTL_SECONDS = key_ttl_seconds()
EXCLUSION_REASONS = ("objected", "restricted")
_SUBJECT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def keys_bucket(region: str) -> str:
    return f"kaseum_{region}_pseudonym_keys"


def exclusions_bucket(region: str) -> str:
    return f"kaseum_{region}_analytics_exclusions"


def pseudonym(key: bytes, subject_id: str) -> str:
    """The subject's pseudonym under one period's key (64 hex characters)."""
    return hmac.new(key, subject_id.encode(), hashlib.sha256).hexdigest()


class Unavailable(Exception):
    """NATS could not answer in time."""


class _Bucket:
    """One key-value bucket, opened (or created) lazily on the bus's event loop."""

    def __init__(self, bus: Bus, name: str, ttl: float | None, enforce_ttl: bool = False) -> None:
        self.bus = bus
        self.name = name
        self.ttl = ttl
        # Set the TTL of a bucket another process created with another one (e.g. a gateway,
        # which does not know analytics' roll-up settings).
        self.enforce_ttl = enforce_ttl
        self._kv: KeyValue | None = None

    def js(self) -> Any:
        if self.bus.js is None:
            raise Unavailable("NATS is not connected")
        return self.bus.js

    async def store(self) -> KeyValue:
        if self._kv is None:
            js = self.js()
            try:
                kv = await js.key_value(self.name)
            except NotFoundError:
                config = api.KeyValueConfig(bucket=self.name, history=1, storage=api.StorageType.FILE,
                                            direct=True, ttl=self.ttl)
                try:
                    kv = await js.create_key_value(config)
                except Exception:
                    # Another process created it between our lookup and our create.
                    kv = await js.key_value(self.name)
            if self.enforce_ttl and self.ttl is not None:
                info = await js.stream_info(f"KV_{self.name}")
                if abs((info.config.max_age or 0.0) - self.ttl) > 1:
                    # Applies to the keys already there too (their age counts from when they were made).
                    await js.update_stream(info.config.evolve(max_age=self.ttl))
            self._kv = kv
        return self._kv

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 3.0) -> T:
        """Run `coro` on the bus's loop from a worker thread and wait for it."""
        if not self.bus.connected:
            coro.close()
            raise Unavailable("NATS is not connected")
        try:
            return asyncio.run_coroutine_threadsafe(coro, self.bus.loop).result(timeout)
        except Unavailable:
            raise
        except Exception as exc:
            raise Unavailable(type(exc).__name__) from exc


class PseudonymKeys:
    """The region's per-day pseudonym keys."""

    def __init__(self, bus: Bus, region: str, ttl: float = KEY_TTL_SECONDS, enforce_ttl: bool = False) -> None:
        self._bucket = _Bucket(bus, keys_bucket(region), ttl, enforce_ttl)

    async def get(self, day: date, create: bool) -> bytes | None:
        """The key of `day`; with `create`, made now if no process has made it yet."""
        kv = await self._bucket.store()
        name = day.isoformat()
        try:
            return bytes((await kv.get(name)).value or b"") or None
        except KeyNotFoundError:
            if not create:
                return None
        # Exactly one creator wins; a replica that loses the race uses the winner's key.
        with contextlib.suppress(KeyWrongLastSequenceError):
            await kv.create(name, secrets.token_bytes(32))
        return bytes((await kv.get(name)).value or b"") or None

    async def destroy(self, day: date) -> bool:
        """Purge the key of `day` (all revisions). True if there was one."""
        kv = await self._bucket.store()
        try:
            await kv.get(day.isoformat())
        except KeyNotFoundError:
            return False
        await kv.purge(day.isoformat())
        return True

    # --- blocking forms, for worker threads (event handlers, periodic jobs, gRPC calls) ---
    def key(self, day: date, create: bool = False) -> bytes | None:
        return self._bucket.run(self.get(day, create))

    def destroy_through(self, last: date, days_back: int = 7) -> list[date]:
        """Destroy every key from `days_back` days before `last` up to `last`; returns those found."""
        async def purge() -> list[date]:
            days = [last - timedelta(days=n) for n in range(days_back, -1, -1)]
            return [d for d in days if await self.destroy(d)]

        return self._bucket.run(purge(), timeout=10.0)


class Exclusions:
    """Subjects not to be counted, with why: `objected` and/or `restricted`."""

    def __init__(self, bus: Bus, region: str) -> None:
        self._bucket = _Bucket(bus, exclusions_bucket(region), None)

    async def reasons_of(self, subject_id: str) -> list[str]:
        kv = await self._bucket.store()
        found = []
        for reason in EXCLUSION_REASONS:
            try:
                await kv.get(f"{reason}.{subject_id}")
                found.append(reason)
            except KeyNotFoundError:
                pass
        return found

    async def is_excluded(self, subject_id: str) -> bool:
        return bool(await self.reasons_of(subject_id))

    async def mark(self, subject_id: str, reason: str, excluded: bool) -> None:
        kv = await self._bucket.store()
        if excluded:
            await kv.put(f"{reason}.{subject_id}", b"1")
            return
        js = self._bucket.js()
        # Every message of the key goes, and no purge marker is left behind: a marker would keep the
        # subject's id in the stream, with no expiry, after the account was erased (notice 13.1.3).
        await js.purge_stream(f"KV_{self._bucket.name}", subject=f"$KV.{self._bucket.name}.{reason}.{subject_id}")

    # --- blocking forms ---
    def set(self, subject_id: str, reason: str, excluded: bool) -> None:
        if reason not in EXCLUSION_REASONS:
            raise ValueError(f"unknown exclusion reason {reason!r}")
        if not _SUBJECT.match(subject_id):
            raise ValueError("a subject id is letters, digits, '-' and '_' only")
        self._bucket.run(self.mark(subject_id, reason, excluded))

    def reasons(self, subject_id: str) -> list[str]:
        return self._bucket.run(self.reasons_of(subject_id))

    def forget(self, subject_id: str) -> None:
        """The account is gone: nothing about it is kept."""
        async def purge_all() -> None:
            for reason in EXCLUSION_REASONS:
                await self.mark(subject_id, reason, False)

        self._bucket.run(purge_all())
