"""Analytics' reactions to other services' events (one explicit table)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC

from kaseum.events.v1 import envelope_pb2
from kaseum.events.v1 import gateway_events_pb2 as gw
from servicekit.db import UnitOfWork

from .models import Repository
from .service import record_usage

Handler = Callable[[UnitOfWork[Repository], envelope_pb2.Envelope], None]


def feature_used(uow: UnitOfWork[Repository], env: envelope_pb2.Envelope) -> None:
    event = gw.FeatureUsed()
    if not env.payload.Unpack(event):
        # A mislabelled payload is a bug upstream: fail, so it is retried and then dead-lettered.
        raise ValueError("payload is not a FeatureUsed event")
    # The gateway rotates the pseudonym key per UTC day, so the day of the event is the key's day.
    day = env.occurred_at.ToDatetime(tzinfo=UTC).date()
    record_usage(uow.repo, event.feature, event.pseudonym, day, env.region)
    # No commit here: the consumer commits this row with its inbox row, atomically.


HANDLERS: dict[str, Handler] = {"gateway.usage.feature_used": feature_used}

# Subjects of the durable consumer, per region.
SUBJECTS = ["{region}.gateway.usage.feature_used"]
