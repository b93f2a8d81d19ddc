"""gRPC translation for rights: requests in, rules called, messages out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from kaseum.privacy.v1 import personal_data_pb2 as pd
from kaseum.privacy.v1 import personal_data_pb2_grpc
from kaseum.rights.v1 import rights_pb2 as pb
from kaseum.rights.v1 import rights_pb2_grpc
from servicekit import caller
from servicekit.personal_data import erase_response, export_response, require_rights_caller

from .models import RightsRequest
from .service import RightsService, as_utc

SERVICE = "kaseum.rights.v1.Rights"


def _ts(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(as_utc(value))
    return ts


def request_message(r: RightsRequest) -> pb.RightsRequest:
    # Steps arrive with the orchestration of the per-service PersonalData calls.
    return pb.RightsRequest(id=r.id, kind=r.kind, status=r.status, received_at=_ts(r.received_at),
                            due_at=_ts(r.due_at), steps=[], subject_id=r.subject_id, details=r.details)


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


class RightsPersonalData(personal_data_pb2_grpc.PersonalDataServicer):
    def __init__(self, service: RightsService) -> None:
        self.service = service

    def Export(self, request: pd.ExportRequest, context: Any) -> pd.ExportResponse:
        require_rights_caller()
        return export_response("rights", self.service.export(request.subject_id))

    def Erase(self, request: pd.EraseRequest, context: Any) -> pd.EraseResponse:
        require_rights_caller()
        erased, kept = self.service.erase(request.subject_id)
        return erase_response("rights", erased, kept)

    def Rectify(self, request: pd.RectifyRequest, context: Any) -> pd.RectifyResponse:
        # Rights owns no correctable field: a request records what the subject wrote, as evidence.
        require_rights_caller()
        return pd.RectifyResponse(service="rights")

    def Restrict(self, request: pd.RestrictRequest, context: Any) -> pd.RestrictResponse:
        require_rights_caller()
        return pd.RestrictResponse(service="rights",
                                   restricted=self.service.set_restricted(request.subject_id, True))

    def LiftRestriction(self, request: pd.LiftRestrictionRequest, context: Any) -> pd.LiftRestrictionResponse:
        require_rights_caller()
        return pd.LiftRestrictionResponse(
            service="rights", restricted=self.service.set_restricted(request.subject_id, False))
