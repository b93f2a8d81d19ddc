"""gRPC translation for rights: requests in, rules called, messages out."""

from __future__ import annotations

from typing import Any

from kaseum.rights.v1 import rights_pb2 as pb
from kaseum.rights.v1 import rights_pb2_grpc
from servicekit import caller
from servicekit.timestamps import to_timestamp

from .models import RightsRequest
from .service import RightsService

SERVICE = "kaseum.rights.v1.Rights"




def request_message(r: RightsRequest) -> pb.RightsRequest:
    # Steps arrive with the orchestration of the per-service PersonalData calls.
    return pb.RightsRequest(id=r.id, kind=r.kind, status=r.status, received_at=to_timestamp(r.received_at),
                            due_at=to_timestamp(r.due_at), steps=[], subject_id=r.subject_id, details=r.details)


class RightsApi(rights_pb2_grpc.RightsServicer):
    def __init__(self, service: RightsService) -> None:
        self.service = service

    def FileRequest(self, request: pb.FileRequestRequest, context: Any) -> pb.RightsRequest:
        row = self.service.file_request(caller.require_person(), request.kind, request.details)
        return request_message(row)

    def ListRequests(self, request: pb.ListRequestsRequest, context: Any) -> pb.ListRequestsResponse:
        page = self.service.list_requests(caller.require_person(), request.status, request.overdue,
                                          request.cursor, request.page_size)
        return pb.ListRequestsResponse(items=[request_message(r) for r in page.items],
                                       next_cursor=page.next_cursor)

    def GetRequest(self, request: pb.GetRequestRequest, context: Any) -> pb.RightsRequest:
        return request_message(self.service.get_request(caller.require_person(), request.id))
