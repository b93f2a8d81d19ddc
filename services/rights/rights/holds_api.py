"""gRPC translation of kaseum.rights.v1.LegalHolds (served by the rights process)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from kaseum.rights.v1 import holds_pb2 as pb
from kaseum.rights.v1 import holds_pb2_grpc
from servicekit import caller
from servicekit.timestamps import to_timestamp

from .holds import HoldRules
from .models import LegalHold

FULL_NAME = "kaseum.rights.v1.LegalHolds"


def hold_message(h: LegalHold) -> pb.Hold:
    message = pb.Hold(id=h.hold_id, scope=h.scope, target_id=h.target_id, reason_code=h.reason_code, note=h.note,
                      review_at=to_timestamp(h.review_at), placed_at=to_timestamp(h.placed_at),
                      placed_by=h.placed_by, released_by=h.released_by)
    if h.released_at is not None:
        message.released_at.CopyFrom(to_timestamp(h.released_at))
    return message


class LegalHoldsApi(holds_pb2_grpc.LegalHoldsServicer):
    def __init__(self, rules: HoldRules) -> None:
        self.rules = rules

    def PlaceHold(self, request: pb.PlaceHoldRequest, context: Any) -> pb.Hold:
        review = request.review_at.ToDatetime(tzinfo=UTC) if request.HasField("review_at") else None
        return hold_message(self.rules.place(caller.current(), request.scope, request.target_id,
                                             request.reason_code, request.note, review))

    def ReleaseHold(self, request: pb.ReleaseHoldRequest, context: Any) -> pb.Hold:
        return hold_message(self.rules.release(caller.current(), request.id))

    def ListHolds(self, request: pb.ListHoldsRequest, context: Any) -> pb.ListHoldsResponse:
        return pb.ListHoldsResponse(holds=[hold_message(h) for h in self.rules.list(
            caller.current(), request.include_released, request.target_id)])
