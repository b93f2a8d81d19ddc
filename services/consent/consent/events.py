"""Consent's reactions to other services' events (one explicit table).

Each handler runs in the consumer's transaction with the inbox row: a redelivered event has no
second effect, and a message queued from an event is queued exactly once (keyed by the event id).
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from kaseum.events.v1 import envelope_pb2
from kaseum.events.v1 import identity_events_pb2 as ev
from kaseum.events.v1 import rights_events_pb2 as rev
from kaseum.events.v1 import tickets_events_pb2 as tev
from servicekit.db import new_id

from . import messages
from .campaigns import queued
from .service import ConsentService

# identity.message.requested kinds consent knows how to write (all service messages, section 8.2).
MESSAGE_KINDS = {"verify_email", "reset_password", "signup_existing", "signup_username_taken", "inactivity_warning",
                 "email_change_existing"}


def handlers(service: ConsentService) -> dict[str, Any]:
    def account_created(uow: Any, env: envelope_pb2.Envelope) -> None:
        event = ev.AccountCreated()
        env.payload.Unpack(event)
        if event.role != "customer":
            return
        service.create_defaults(uow, event.account_id, event.home_region, {
            "email": event.marketing_email,
            "telephone": event.marketing_telephone,
            "third_party": event.third_party_marketing,
        }, event.notice_version, gpc=event.gpc)
        # No commit here: the consumer commits this change with the inbox row, atomically.

    def account_rectified(uow: Any, env: envelope_pb2.Envelope) -> None:
        event = ev.AccountRectified()
        env.payload.Unpack(event)
        if {"email", "phone"} & set(event.fields):
            service.on_address_changed(uow, event.account_id)

    def message_requested(uow: Any, env: envelope_pb2.Envelope) -> None:
        event = ev.MessageRequested()
        env.payload.Unpack(event)
        if event.kind not in MESSAGE_KINDS:
            raise ValueError("unknown message kind")  # retried, then dead-lettered for an operator
        row = queued(new_id(), f"e:{env.id}", event.account_id, event.kind, "service", "email", "", "", service.clock())
        row["token_id"] = event.token_id
        uow.repo.enqueue_many([row])

    def ticket_opened(uow: Any, env: envelope_pb2.Envelope) -> None:
        event = tev.TicketOpened()
        env.payload.Unpack(event)
        # Raising a ticket about a product is how consent learns that the customer has it (section 4.1.5).
        service.record_product(uow, event.requester_id, event.product.strip())

    def ticket_replied(uow: Any, env: envelope_pb2.Envelope) -> None:
        event = tev.TicketReplied()
        env.payload.Unpack(event)
        if event.internal or not event.requester_id or event.author_id == event.requester_id:
            return
        if not uow.repo.has_preferences(event.requester_id):
            return  # not a customer of this region (or erased)
        uow.repo.enqueue_many([queued(new_id(), f"e:{env.id}", event.requester_id, "ticket_reply", "service",
                                      "email", "", event.ticket_id, service.clock())])

    def ticket_status_changed(uow: Any, env: envelope_pb2.Envelope) -> None:
        event = tev.TicketStatusChanged()
        env.payload.Unpack(event)
        if not event.requester_id or event.changed_by == event.requester_id:
            return  # the requester's own change needs no message
        if not uow.repo.has_preferences(event.requester_id):
            return
        uow.repo.enqueue_many([queued(new_id(), f"e:{env.id}", event.requester_id, "ticket_update", "service",
                                      "email", "", event.ticket_id, service.clock())])

    def rights_request(uow: Any, env: envelope_pb2.Envelope) -> None:
        event = rev.RequestReceived()
        env.payload.Unpack(event)
        service.on_rights_request(uow, event.subject_id, event.kind)

    def rights_status_changed(uow: Any, env: envelope_pb2.Envelope) -> None:
        event = rev.RequestStatusChanged()
        env.payload.Unpack(event)
        kind = messages.RIGHTS_CHANGES.get(event.change)
        if kind is None or not env.subject_id or not uow.repo.has_preferences(env.subject_id):
            return  # a change the subject is not told of, or an erased subject
        facts = {"kind": event.kind}
        if event.HasField("due_at"):
            facts["due_at"] = event.due_at.ToDatetime(tzinfo=UTC).isoformat()
        if event.HasField("lift_at"):
            facts["lift_at"] = event.lift_at.ToDatetime(tzinfo=UTC).isoformat()
        row = queued(new_id(), f"e:{env.id}", env.subject_id, kind, "service", "email", "", event.request_id,
                     service.clock())
        row["facts"] = json.dumps(facts)
        uow.repo.enqueue_many([row])

    def rights_verification(uow: Any, env: envelope_pb2.Envelope) -> None:
        event = rev.VerificationRequested()
        env.payload.Unpack(event)
        if not env.subject_id or not uow.repo.has_preferences(env.subject_id):
            return
        # The code itself is claimed from rights by the sender, at send time: it never rides the stream.
        row = queued(new_id(), f"e:{env.id}", env.subject_id, messages.RIGHTS_VERIFICATION, "service", "email", "",
                     event.request_id, service.clock())
        row["facts"] = json.dumps({"kind": event.kind})
        uow.repo.enqueue_many([row])

    return {
        "identity.account.created": account_created,
        "identity.account.rectified": account_rectified,
        "rights.request.received": rights_request,
        "identity.message.requested": message_requested,
        "tickets.ticket.opened": ticket_opened,
        "tickets.ticket.replied": ticket_replied,
        "tickets.ticket.status_changed": ticket_status_changed,
        "rights.request.status_changed": rights_status_changed,
        "rights.verification.requested": rights_verification,
    }


SUBJECTS = ["{region}.identity.account.created", "{region}.identity.account.rectified",
            "{region}.identity.message.requested",
            "{region}.tickets.ticket.opened", "{region}.tickets.ticket.replied",
            "{region}.tickets.ticket.status_changed", "{region}.rights.request.received",
            "{region}.rights.request.status_changed", "{region}.rights.verification.requested"]
