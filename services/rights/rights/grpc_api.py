"""gRPC translation for rights: requests in, rules called, messages out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from kaseum.rights.v1 import rights_pb2 as pb
from kaseum.rights.v1 import rights_pb2_grpc
from servicekit import caller
from servicekit.db import as_utc
from servicekit.timestamps import to_timestamp

from . import export_zip
from .models import RequestStep, RightsRequest
from .service import Destination, RequestView, RightsService

SERVICE = "kaseum.rights.v1.Rights"


def step_message(s: RequestStep) -> pb.Step:
    step = pb.Step(service=s.service, operation=s.operation, status=s.status, attempts=s.attempts,
                   error=s.last_error, outcome=s.outcome, kept=json.loads(s.kept or "[]"))
    if s.next_attempt_at is not None and s.status == "pending":
        step.next_attempt_at.CopyFrom(to_timestamp(as_utc(s.next_attempt_at)))
    return step


def request_message(r: RightsRequest, steps: list[RequestStep]) -> pb.RightsRequest:
    message = pb.RightsRequest(
        id=r.id, kind=r.kind, status=r.status, received_at=to_timestamp(r.received_at),
        due_at=to_timestamp(r.due_at), steps=[step_message(s) for s in steps], subject_id=r.subject_id,
        details=r.details, extension_reason=r.extension_reason, refusal_reason=r.refusal_reason,
        purpose=r.purpose, corrections=json.loads(r.corrections or "{}"), channel=r.channel,
        destination_host=urlsplit(r.destination_url).hostname or "", destination_country=r.destination_country)
    if r.clock_stopped_at is not None:
        message.clock_stopped_at.CopyFrom(to_timestamp(r.clock_stopped_at))
    if r.lift_at is not None:
        message.lift_at.CopyFrom(to_timestamp(r.lift_at))
    if r.completed_at is not None:
        message.completed_at.CopyFrom(to_timestamp(r.completed_at))
    if r.export_expires_at is not None:
        message.export_expires_at.CopyFrom(to_timestamp(r.export_expires_at))
    return message


def view_message(view: RequestView) -> pb.RightsRequest:
    return request_message(view.request, view.steps)


class RightsApi(rights_pb2_grpc.RightsServicer):
    def __init__(self, service: RightsService) -> None:
        self.service = service

    def FileRequest(self, request: pb.FileRequestRequest, context: Any) -> pb.RightsRequest:
        destination = Destination.parse(request.destination_url, request.destination_country)
        return view_message(self.service.file_request(caller.require_person(), request.kind, request.details,
                                                      request.purpose, dict(request.corrections), destination))

    def ListRequests(self, request: pb.ListRequestsRequest, context: Any) -> pb.ListRequestsResponse:
        page = self.service.list_requests(caller.require_person(), request.status, request.overdue,
                                          request.cursor, request.page_size)
        return pb.ListRequestsResponse(items=[request_message(r, page.steps.get(r.id, [])) for r in page.items],
                                       next_cursor=page.next_cursor)

    def GetRequest(self, request: pb.GetRequestRequest, context: Any) -> pb.RightsRequest:
        return view_message(self.service.get_request(caller.require_person(), request.id))

    def RetryRequest(self, request: pb.RetryRequestRequest, context: Any) -> pb.RightsRequest:
        return view_message(self.service.retry(caller.require_person(), request.id))

    def ExtendRequest(self, request: pb.ExtendRequestRequest, context: Any) -> pb.RightsRequest:
        return view_message(self.service.extend(caller.require_person(), request.id, request.months,
                                                request.reason))

    def RefuseRequest(self, request: pb.RefuseRequestRequest, context: Any) -> pb.RightsRequest:
        return view_message(self.service.refuse(caller.require_person(), request.id, request.reason))

    def DownloadExport(self, request: pb.DownloadExportRequest, context: Any) -> Iterator[pb.ExportChunk]:
        row, pieces = self.service.export_pieces(caller.require_person(), request.id)
        fields = export_zip.request_fields(row.id, row.kind, as_utc(row.received_at),
                                           as_utc(row.completed_at) if row.completed_at else None)
        with self.service.export_loader(row.id) as load:
            for chunk in export_zip.build(fields, pieces, load, portable_only=row.kind == "portability"):
                if chunk:
                    yield pb.ExportChunk(data=chunk)

    def ReplayErasures(self, request: pb.ReplayErasuresRequest, context: Any) -> pb.ReplayErasuresResponse:
        replay = self.service.replay_erasures(caller.require_any())
        return pb.ReplayErasuresResponse(subjects=replay.subjects, erased_rows=replay.erased_rows,
                                         failures=replay.failures)

    def FileOnBehalf(self, request: pb.FileOnBehalfRequest, context: Any) -> pb.RightsRequest:
        return view_message(self.service.file_on_behalf(
            caller.require_person(), request.email, request.kind, request.details, request.purpose,
            dict(request.corrections)))

    def VerifyRequest(self, request: pb.VerifyRequestRequest, context: Any) -> pb.RightsRequest:
        return view_message(self.service.verify(caller.require_person(), request.id, request.code))

    def ClaimVerificationCode(self, request: pb.ClaimVerificationCodeRequest,
                              context: Any) -> pb.ClaimVerificationCodeResponse:
        subject_id, code, expires = self.service.claim_code(caller.require_service("consent"), request.request_id)
        return pb.ClaimVerificationCodeResponse(subject_id=subject_id, code=code, expires_at=to_timestamp(expires))

    def StopClock(self, request: pb.StopClockRequest, context: Any) -> pb.RightsRequest:
        return view_message(self.service.stop_clock(caller.require_person(), request.id, request.stop))

    def LiftRestriction(self, request: pb.LiftRestrictionRequest, context: Any) -> pb.RightsRequest:
        return view_message(self.service.lift_restriction(caller.require_person(), request.id))
