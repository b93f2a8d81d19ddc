"""The usage-event consumer: many small events, stored a batch per transaction.

A durable pull consumer shared by every replica, like servicekit's, but a fetched batch is
parsed, filtered and inserted in one transaction and then acknowledged, instead of one
transaction (and one inbox row) per event: usage events name no one, are keyed by their own
event id (a redelivery inserts nothing), and arrive by the thousand. A message that is not a
usage event is terminated (dropped): losing a usage event costs a count, never a person.
"""

from __future__ import annotations

import asyncio
import contextlib

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import api
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError
from servicekit.bus import Bus, stream_name
from servicekit.logs import get_logger

from .events import USAGE_SUBJECT, parse_use
from .service import AnalyticsService, Use

log = get_logger(__name__)
DURABLE = "analytics-usage"


class UsageConsumer:
    def __init__(self, bus: Bus, region: str, service: AnalyticsService, batch: int = 1000) -> None:
        self.bus = bus
        self.region = region
        self.service = service
        self.batch = batch
        self.stored = 0

    def start(self) -> None:
        self.bus.add_task(self.run)

    async def _bind(self) -> JetStreamContext.PullSubscription:
        while self.bus.js is None:
            await asyncio.sleep(0.2)
        js = self.bus.js
        stream = stream_name(self.region)
        try:
            await js.consumer_info(stream, DURABLE)
        except NotFoundError:
            with contextlib.suppress(Exception):
                await js.add_consumer(stream, api.ConsumerConfig(
                    durable_name=DURABLE, filter_subject=USAGE_SUBJECT.format(region=self.region),
                    ack_policy=api.AckPolicy.EXPLICIT, deliver_policy=api.DeliverPolicy.ALL,
                    ack_wait=60.0, max_deliver=-1, max_ack_pending=20000))
        return await js.pull_subscribe_bind(durable=DURABLE, stream=stream)

    async def run(self) -> None:
        psub = None
        while not self.bus.stopping:
            try:
                if psub is None:
                    psub = await self._bind()
                try:
                    msgs = await psub.fetch(self.batch, timeout=1)
                except NatsTimeout:
                    continue
                await self._store(msgs)
            except asyncio.CancelledError:
                raise
            except NotFoundError:
                psub = None
                await asyncio.sleep(0.5)
            except Exception as exc:
                log.warning("usage batch failed, will retry", error=type(exc).__name__)
                await asyncio.sleep(0.5)

    async def _store(self, msgs: list[Msg]) -> None:
        uses: list[Use] = []
        good: list[Msg] = []
        for msg in msgs:
            use = parse_use(msg.data)
            if use is None:
                await msg.term()
            else:
                uses.append(use)
                good.append(msg)
        try:
            self.stored += await asyncio.to_thread(self.service.ingest, uses)
        except Exception:
            # The database is unwell: hand the batch back for a later try.
            for msg in good:
                await msg.nak(delay=2)
            raise
        for msg in good:
            await msg.ack()
