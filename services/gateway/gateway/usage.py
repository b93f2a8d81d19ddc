"""Usage events: every use of a named feature by a signed-in customer, as `gateway.usage.feature_used`.

The event names no one: it carries the feature, the UTC day, coarse dimensions and a pseudonym,
the HMAC of the subject id under the day's key from the region's key bucket (shared by every
gateway replica, created by whichever first needs it; see servicekit.pseudonyms). Subjects on the
region's analytics exclusion list (objected or restricted) are not published at all. The use
carries the customer's organisation size band (a coarse dimension), asked of identity by the
organisation id in the caller's token and cached for a few minutes (`SizeBands`).

Publishing never slows or fails the customer's request: after the response is built, the work is
handed to the process's NATS loop and not awaited; if NATS is down, or too much is already
waiting, the use is dropped (a lost count, never a 5xx).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Collection
from datetime import UTC, datetime, time, timedelta
from time import monotonic

from flask import Flask, Response, g, request
from kaseum.events.v1 import gateway_events_pb2 as gw
from kaseum.identity.v1 import organisations_pb2
from servicekit.bus import Bus
from servicekit.dimensions import DEFAULT_PRODUCTS, SIZE_BANDS, coarse_product
from servicekit.logs import get_logger
from servicekit.outbox import envelope, subject_for
from servicekit.pseudonyms import Exclusions, PseudonymKeys, pseudonym

log = get_logger(__name__)
EVENT_TYPE = "gateway.usage.feature_used"

# The named features: (method, route) → feature name. Only these are counted.
FEATURES: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/tickets"): "tickets.open",
    ("GET", "/api/v1/tickets"): "tickets.list",
    ("GET", "/api/v1/tickets/<ticket_id>"): "tickets.view",
    ("POST", "/api/v1/tickets/<ticket_id>/replies"): "tickets.reply",
    ("PATCH", "/api/v1/tickets/<ticket_id>"): "tickets.update",
    ("GET", "/api/v1/me"): "profile.view",
    ("PATCH", "/api/v1/me"): "profile.update",
    ("GET", "/api/v1/me/sessions"): "sessions.list",
    ("DELETE", "/api/v1/me/sessions"): "sessions.sign_out_everywhere",
    ("POST", "/api/v1/me/password"): "password.change",
    ("GET", "/api/v1/me/preferences"): "preferences.view",
    ("PUT", "/api/v1/me/preferences"): "preferences.update",
    ("POST", "/api/v1/rights-requests"): "rights.request",
    ("GET", "/api/v1/rights-requests"): "rights.list",
    ("GET", "/api/v1/rights-requests/<request_id>"): "rights.view",
}


Metadata = tuple[tuple[str, str], ...]


class SizeBands:
    """Organisation id → size band ("" when not set or not known), cached for `ttl` seconds.

    A band changes rarely and is coarse, so a use counted under the previous band for a few
    minutes after an admin changes it is an acceptable error; asking identity on every use is not.
    A failed lookup counts the use as "unknown" and is retried sooner.
    """

    def __init__(self, fetch: Callable[[str, Metadata], str], ttl: float = 300.0, retry: float = 30.0,
                 max_entries: int = 10_000, clock: Callable[[], float] = monotonic) -> None:
        self.fetch = fetch
        self.ttl = ttl
        self.retry = retry
        self.max_entries = max_entries
        self.clock = clock
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def band(self, organisation_id: str, metadata: Metadata) -> str:
        if not organisation_id:
            return ""
        now = self.clock()
        with self._lock:
            hit = self._cache.get(organisation_id)
        if hit is not None and hit[1] > now:
            return hit[0]
        try:
            found = self.fetch(organisation_id, metadata)
            band, keep = (found if found in SIZE_BANDS else ""), self.ttl
        except Exception as exc:
            log.info("size band not known", error=type(exc).__name__)
            band, keep = "", self.retry
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()  # bounded memory; refilled on demand
            self._cache[organisation_id] = (band, now + keep)
        return band


class UsagePublisher:
    def __init__(self, bus: Bus, region: str, max_pending: int = 1000,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 size_bands: SizeBands | None = None) -> None:
        self.bus = bus
        self.size_bands = size_bands
        self.region = region
        self.keys = PseudonymKeys(bus, region)
        self.exclusions = Exclusions(bus, region)
        self.max_pending = max_pending
        self.clock = clock
        self._pending = 0
        self._lock = threading.Lock()
        # Only the current day's key is kept in memory, and only until the day ends.
        self._day_key: tuple[str, bytes] | None = None
        self._midnight: asyncio.TimerHandle | None = None

    def feature_used(self, subject_id: str, feature: str, product: str = "", size_band: str = "",
                     organisation_id: str = "", metadata: Metadata = ()) -> bool:
        """Hand the use to the NATS loop; True if handed, False if dropped. Never raises, never waits.
        Without `size_band`, the band of `organisation_id` is looked up (off the request's thread)."""
        try:
            if not self.bus.connected:
                return False
            with self._lock:
                if self._pending >= self.max_pending:
                    return False
                self._pending += 1
            future = asyncio.run_coroutine_threadsafe(
                self._publish(subject_id, feature, product, size_band, organisation_id, metadata), self.bus.loop)
            future.add_done_callback(self._done)
            return True
        except Exception:
            return False

    def _done(self, future: object) -> None:
        with self._lock:
            self._pending -= 1

    async def _key(self, day: str) -> bytes | None:
        if self._day_key is not None and self._day_key[0] == day:
            return self._day_key[1]
        key = await self.keys.get(datetime.fromisoformat(day).date(), create=True)
        if key is not None:
            self._day_key = (day, key)
            self._forget_at_midnight()
        return key

    def _forget_at_midnight(self) -> None:
        """Drop the key from memory when its day ends (UTC), used or not after: analytics destroys
        it in the bucket after the roll-up, and no copy may outlive it here, where it would let
        anyone who can read this process's memory recompute that day's pseudonyms. Runs on the
        NATS loop (as `_key` does)."""
        if self._midnight is not None:
            self._midnight.cancel()
        now = self.clock()
        midnight = datetime.combine(now.date() + timedelta(days=1), time(), tzinfo=UTC)
        self._midnight = self.bus.loop.call_later(max(0.001, (midnight - now).total_seconds()),
                                                  self._drop_past_key)

    def _drop_past_key(self) -> None:
        self._midnight = None
        if self._day_key is None:
            return
        if self._day_key[0] != self.clock().date().isoformat():
            self._day_key = None
        else:
            self._forget_at_midnight()  # woken before midnight (the loop's clock drifts): again

    async def _publish(self, subject_id: str, feature: str, product: str, size_band: str,
                       organisation_id: str = "", metadata: Metadata = ()) -> None:
        try:
            if await self.exclusions.is_excluded(subject_id):
                return
            if not size_band and organisation_id and self.size_bands is not None:
                # A blocking gRPC call (on a cache miss): in a worker thread, not on the NATS loop.
                size_band = await asyncio.get_running_loop().run_in_executor(
                    None, self.size_bands.band, organisation_id, metadata)
            day = self.clock().date().isoformat()
            key = await self._key(day)
            nc = self.bus.nc
            if key is None or nc is None:
                return
            event = gw.FeatureUsed(feature=feature, pseudonym=pseudonym(key, subject_id), period=day,
                                   product=product, org_size_band=size_band)
            # No subject id in the envelope: the pseudonym is the only trace of the person.
            env = envelope(EVENT_TYPE, self.region, "", event)
            # Core publish into the region's stream: no wait for the stream's acknowledgement.
            await nc.publish(subject_for(self.region, EVENT_TYPE), env.SerializeToString(),
                             headers={"Nats-Msg-Id": env.id})
        except Exception as exc:
            log.info("usage event dropped", error=type(exc).__name__)


def register(app: Flask, bus: Bus, region: str, products: Collection[str] = DEFAULT_PRODUCTS) -> UsagePublisher:
    """Publish a use after each successful request of a signed-in customer to a named feature.

    The product a customer typed is published only if it is one of `products` (the deployment's
    ANALYTICS_PRODUCTS), else as "other": free text never becomes a dimension value.
    """
    listed = frozenset(products)

    def fetch_band(organisation_id: str, metadata: Metadata) -> str:
        # Asked with the customer's own token: identity answers a member about their organisation.
        stub = app.extensions["kaseum_backends"].organisations
        answer = stub.OrganisationSizeBand(organisations_pb2.OrganisationSizeBandRequest(
            organisation_id=organisation_id), metadata=metadata, timeout=2)
        return str(answer.size_band)

    publisher = UsagePublisher(bus, region, size_bands=SizeBands(fetch_band))
    app.extensions["kaseum_usage"] = publisher

    @app.after_request
    def _count_feature_use(response: Response) -> Response:
        try:
            caller = g.get("caller")
            rule = request.url_rule
            if caller is None or rule is None or caller.role != "customer" or response.status_code >= 400:
                return response
            feature = FEATURES.get((request.method, rule.rule))
            if feature:
                body = request.get_json(silent=True) if request.is_json else None
                product = coarse_product(body.get("product"), listed) if isinstance(body, dict) else ""
                publisher.feature_used(caller.subject_id, feature, product,
                                       organisation_id=caller.organisation_id, metadata=caller.metadata)
        except Exception as exc:
            # Counting is never worth a failed request.
            log.info("usage not counted", error=type(exc).__name__)
        return response

    return publisher
