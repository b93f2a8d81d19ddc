"""The dead-letter stream, for operators: see what failed, and send it back once fixed.

A replayed message goes back to its original subject under a new Nats-Msg-Id (the old
one is inside JetStream's duplicate window, or was). Consumers recognise events by the
envelope's id in their inbox, so a replay of something already applied has no effect.
"""

from __future__ import annotations

from dataclasses import dataclass

from kaseum.events.v1 import envelope_pb2
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from .bus import dlq_stream_name


@dataclass(frozen=True)
class DeadLetter:
    seq: int
    original_subject: str
    consumer: str
    failure: str
    event_id: str
    event_type: str


def _describe(seq: int, headers: dict[str, str] | None, data: bytes) -> DeadLetter:
    headers = headers or {}
    env = envelope_pb2.Envelope()
    try:
        env.ParseFromString(data)
    except Exception:
        env = envelope_pb2.Envelope(type="(unparseable)")
    return DeadLetter(seq, headers.get("Kaseum-Original-Subject", ""), headers.get("Kaseum-Consumer", ""),
                      headers.get("Kaseum-Failure", ""), env.id, env.type)


async def list_dead_letters(js: JetStreamContext, region: str, limit: int = 1000) -> list[DeadLetter]:
    stream = dlq_stream_name(region)
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        return []
    found: list[DeadLetter] = []
    seq = info.state.first_seq
    while seq and seq <= info.state.last_seq and len(found) < limit:
        try:
            msg = await js.get_msg(stream, seq)
        except NotFoundError:  # deleted (replayed) messages leave gaps
            seq += 1
            continue
        found.append(_describe(seq, msg.headers, msg.data or b""))
        seq += 1
    return found


async def replay(js: JetStreamContext, region: str, seq: int) -> DeadLetter:
    """Publish dead letter `seq` to its original subject again, then remove it from the dead letters."""
    stream = dlq_stream_name(region)
    msg = await js.get_msg(stream, seq)
    letter = _describe(seq, msg.headers, msg.data or b"")
    if not letter.original_subject:
        raise ValueError("the dead letter does not name its original subject")
    headers = {k: v for k, v in (msg.headers or {}).items() if not k.startswith("Kaseum-")}
    headers["Nats-Msg-Id"] = f"{letter.event_id or 'msg'}-replay-{seq}"
    await js.publish(letter.original_subject, msg.data or b"", headers=headers)
    await js.delete_msg(stream, seq)
    return letter
