"""Tickets' reactions to identity's and rights' events (one explicit table).

- identity.organisation.ticket_sharing_changed: colleagues' sharing, applied in the consumer's
  transaction (committed with the inbox row, so a redelivery has no second effect);
- identity.reseller.relationship_changed: forget that reseller's cached scope now (the other
  replicas' caches expire within their TTL, see scopes.py);
- rights.request.completed: a completed erasure, rectification or restriction of a customer gives each
  reseller organisation that saw their tickets a notice (Art. 19), written with the inbox row.
"""

from __future__ import annotations

from typing import Any

from kaseum.events.v1 import envelope_pb2
from kaseum.events.v1 import identity_events_pb2 as ev
from kaseum.events.v1 import rights_events_pb2 as rights_ev
from servicekit.db import as_utc

from .scopes import ResellerScopes
from .service import TicketsService

SUBJECTS = ["{region}.identity.organisation.ticket_sharing_changed", "{region}.identity.reseller.relationship_changed",
            "{region}.rights.request.completed"]


def handlers(service: TicketsService, scopes: ResellerScopes) -> dict[str, Any]:
    def sharing_changed(uow: Any, env: envelope_pb2.Envelope) -> None:
        event = ev.TicketSharingChanged()
        env.payload.Unpack(event)
        service.apply_sharing(uow, event.organisation_id, event.enabled, as_utc(env.occurred_at.ToDatetime()))

    def relationship_changed(uow: Any, env: envelope_pb2.Envelope) -> None:
        event = ev.ResellerRelationshipChanged()
        env.payload.Unpack(event)
        scopes.forget(event.reseller_id)

    def request_completed(uow: Any, env: envelope_pb2.Envelope) -> None:
        event = rights_ev.RequestCompleted()
        env.payload.Unpack(event)
        # The envelope names the data subject; the payload the request.
        service.notify_recipients(uow, env.subject_id, event.request_id, event.kind, event.status)

    return {"identity.organisation.ticket_sharing_changed": sharing_changed,
            "identity.reseller.relationship_changed": relationship_changed,
            "rights.request.completed": request_completed}
