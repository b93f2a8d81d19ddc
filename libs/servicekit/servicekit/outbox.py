"""The transactional outbox and the consumer inbox, as table mixins and a writer.

A service writes its events to `outbox` in the same transaction as the change;
the relay (bus.py) publishes them. Consumers record handled event ids in
`inbox` in the same transaction as their effect, so a redelivery is a no-op.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from google.protobuf.any_pb2 import Any as AnyPb
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from kaseum.events.v1 import envelope_pb2
from sqlalchemy import DateTime, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column

from . import telemetry
from .statements import core_table, insert_values

NONE = {"category": "none"}  # processing declarations (declarations.py): no personal data


class OutboxMixin:
    """Columns of the outbox table; a service declares `class Outbox(OutboxMixin, Base)`."""

    __tablename__ = "outbox"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, info=NONE)
    subject: Mapped[str] = mapped_column(String(200), info=NONE)
    # Events carry ids and facts only: subject ids are Identity Data (an identifier).
    data: Mapped[bytes] = mapped_column(LargeBinary, info={"category": "3.2.1"})
    # Trace context (W3C headers) captured when the change was made.
    headers: Mapped[str] = mapped_column(Text, default="{}", info=NONE)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=NONE)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, info=NONE)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Index, ...]:
        return (Index("ix_outbox_unpublished", "published_at", "created_at"),)


class InboxMixin:
    """Event ids a consumer has handled; a service declares `class Inbox(InboxMixin, Base)`."""

    __tablename__ = "inbox"

    consumer: Mapped[str] = mapped_column(String(100), primary_key=True, info=NONE)
    event_id: Mapped[str] = mapped_column(String(32), primary_key=True, info=NONE)
    handled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=NONE)


def envelope(event_type: str, region: str, subject_id: str, payload: Message) -> envelope_pb2.Envelope:
    occurred = Timestamp()
    occurred.FromDatetime(datetime.now(UTC))
    packed = AnyPb()
    packed.Pack(payload)
    return envelope_pb2.Envelope(
        id=uuid.uuid4().hex,
        type=event_type,
        occurred_at=occurred,
        region=region,
        subject_id=subject_id,
        payload=packed,
    )


def subject_for(region: str, event_type: str) -> str:
    """`<region>.<service>.<entity>.<event>`, e.g. uk.identity.account.created."""
    return f"{region}.{event_type}"


class EventRecorder:
    """Writes events into the outbox of the current transaction."""

    def __init__(self, session: Session, model: type[OutboxMixin], region: str) -> None:
        self._session = session
        self._model = model
        self._region = region

    def publish(self, event_type: str, subject_id: str, payload: Message) -> str:
        """Write the event into the outbox, in the current transaction, by one statement at once: not as an
        ORM object flushed at the commit (an erasure publishes about ten events; each ORM row costs several
        times the statement). Rolled back with the transaction, like everything else in it."""
        env = envelope(event_type, self._region, subject_id, payload)
        insert_values(self._session, core_table(self._model), [{
            "id": env.id, "subject": subject_for(self._region, event_type), "data": env.SerializeToString(),
            "headers": json.dumps(telemetry.current_trace_headers()), "created_at": datetime.now(UTC),
            "published_at": None,
        }])
        return env.id


class OutboxWriter:
    """Binds an EventRecorder to each unit of work and wakes the relay after a commit."""

    def __init__(self, model: type[OutboxMixin], region: str) -> None:
        self.model = model
        self.region = region
        self._listeners: list[Callable[[], None]] = []

    def bind(self, session: Session) -> EventRecorder:
        return EventRecorder(session, self.model, self.region)

    def on_commit(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def notify(self) -> None:
        for listener in self._listeners:
            listener()
