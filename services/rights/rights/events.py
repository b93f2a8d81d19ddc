"""Rights' reactions to other services' events (one explicit table).

- identity.account.dormant: an account unused for two years, warned and still unused 30 days later,
  is erased everywhere by an erasure request the retention schedule files (notice 12), in the
  consumer's transaction so that a redelivery files nothing twice.
"""

from __future__ import annotations

from typing import Any

from kaseum.events.v1 import envelope_pb2
from kaseum.events.v1 import identity_events_pb2 as identity

from .service import RightsService

SUBJECTS = ["{region}.identity.account.dormant"]


def handlers(service: RightsService) -> dict[str, Any]:
    def dormant(uow: Any, env: envelope_pb2.Envelope) -> None:
        event = identity.AccountDormant()
        env.payload.Unpack(event)
        if event.account_id:
            service.erase_dormant(uow, event.account_id)

    return {"identity.account.dormant": dormant}
