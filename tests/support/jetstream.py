"""Direct JetStream access for tests: count stored events, publish raw envelopes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable

import nats
from google.protobuf.message import Message
from servicekit.outbox import envelope


async def _count(url: str, stream: str, subject: str) -> int:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream, subjects_filter=subject)
        return int((info.state.subjects or {}).get(subject, 0))
    finally:
        await nc.close()


def count(url: str, stream: str, subject: str) -> int:
    """Messages stored in `stream` on exactly `subject`."""
    return asyncio.run(_count(url, stream, subject))


async def _publish(url: str, messages: Iterable[tuple[str, bytes, str]]) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        pending = [await js.publish_async(subject, data, headers={"Nats-Msg-Id": msg_id})
                   for subject, data, msg_id in messages]
        await asyncio.gather(*pending)
    finally:
        await nc.close()


def publish_events(url: str, region: str, event_type: str, payloads: Iterable[tuple[str, Message]],
                   msg_id: str | None = None) -> list[bytes]:
    """Publish envelopes as a service's relay would; returns the raw bodies."""
    bodies = []
    messages = []
    for subject_id, payload in payloads:
        env = envelope(event_type, region, subject_id, payload)
        data = env.SerializeToString()
        bodies.append(data)
        messages.append((f"{region}.{event_type}", data, msg_id or env.id))
    asyncio.run(_publish(url, messages))
    return bodies


def republish(url: str, subject: str, data: bytes) -> None:
    """The same envelope again under a new Nats-Msg-Id: a redelivery JetStream cannot de-duplicate."""
    asyncio.run(_publish(url, [(subject, data, uuid.uuid4().hex)]))


async def _caught_up(url: str, stream: str, durable: str) -> bool:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().consumer_info(stream, durable)
        return info.num_pending == 0 and info.num_ack_pending == 0 and (info.num_redelivered or 0) >= 0
    finally:
        await nc.close()


def caught_up(url: str, stream: str, durable: str) -> bool:
    """The durable consumer has been handed, and has acknowledged, everything in its stream."""
    return asyncio.run(_caught_up(url, stream, durable))
