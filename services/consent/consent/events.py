"""Consent's reactions to other services' events (one explicit table)."""

from __future__ import annotations

from typing import Any

from kaseum.events.v1 import envelope_pb2
from kaseum.events.v1 import identity_events_pb2 as ev

from .service import ConsentService


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
        }, event.notice_version)
        # No commit here: the consumer commits this change with the inbox row, atomically.

    return {"identity.account.created": account_created}


SUBJECTS = ["{region}.identity.account.created"]
