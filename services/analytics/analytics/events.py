"""Analytics' reactions to other services' events (one explicit table), and the usage-event parser.

Usage events are many and carry no one's id, so they come in through their own batch consumer
(ingest.py); the facts about subjects (objection, restriction, erasure) go through the usual
durable consumer with its inbox.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from kaseum.events.v1 import envelope_pb2
from kaseum.events.v1 import gateway_events_pb2 as gw
from kaseum.events.v1 import identity_events_pb2 as identity
from kaseum.events.v1 import objection_events_pb2 as objection
from servicekit.db import UnitOfWork

from .models import Repository
from .service import AnalyticsService, Use

Handler = Callable[[UnitOfWork[Repository], envelope_pb2.Envelope], None]
# Purposes whose objection stops analytics (notice 4.1.4 rests on legitimate interests).
ANALYTICS_PURPOSES = ("analytics", "all")


def unpack(env: envelope_pb2.Envelope, message: object) -> None:
    if not env.payload.Unpack(message):  # type: ignore[arg-type]
        # A mislabelled payload is a bug upstream: fail, so it is retried and then dead-lettered.
        raise ValueError(f"payload is not a {type(message).__name__} event")


def handlers(service: AnalyticsService) -> dict[str, Handler]:
    """The table: event type → what analytics does. Effects on NATS buckets are idempotent."""

    def restricted(uow: UnitOfWork[Repository], env: envelope_pb2.Envelope) -> None:
        event = identity.AccountRestricted()
        unpack(env, event)
        service.set_excluded(event.account_id, "restricted", event.restricted, uow)

    def objected(uow: UnitOfWork[Repository], env: envelope_pb2.Envelope) -> None:
        event = objection.ProcessingObjected()
        unpack(env, event)
        if event.purpose in ANALYTICS_PURPOSES:
            service.set_excluded(event.subject_id, "objected", event.objected, uow)

    def erased(uow: UnitOfWork[Repository], env: envelope_pb2.Envelope) -> None:
        event = identity.AccountErased()
        unpack(env, event)
        service.account_erased(event.account_id, uow)

    return {
        "identity.account.restricted": restricted,
        "rights.processing.objected": objected,
        "identity.account.erased": erased,
    }


# Subjects of the durable consumer, per region.
SUBJECTS = ["{region}.identity.account.restricted", "{region}.rights.processing.objected",
            "{region}.identity.account.erased"]
USAGE_SUBJECT = "{region}.gateway.usage.feature_used"
USAGE_TYPE = "gateway.usage.feature_used"


def parse_use(data: bytes) -> Use | None:
    """A usage message as a Use, or None if it is not one (it is then dropped, not retried)."""
    try:
        env = envelope_pb2.Envelope.FromString(data)
        event = gw.FeatureUsed()
        if env.type != USAGE_TYPE or not env.payload.Unpack(event):
            return None
        day = date.fromisoformat(event.period)
    except Exception:
        return None
    return Use(env.id, day, env.region, event.feature, event.pseudonym, event.product, event.org_size_band)
