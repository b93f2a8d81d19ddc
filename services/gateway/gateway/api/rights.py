"""Rights requests (section 13)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from kaseum.rights.v1 import rights_pb2
from spectree import Response as Resp

from .. import convert
from ..auth import backends, require_caller
from ..openapi import BEARER, spec
from ..schemas import ErrorOut, RightsBody, RightsOut, RightsPage, RightsQuery

bp = Blueprint("rights", __name__)


@bp.post("/api/v1/rights-requests")
@spec.validate(json=RightsBody, resp=Resp(HTTP_202=RightsOut, HTTP_401=ErrorOut, HTTP_403=ErrorOut,
                                          HTTP_422=ErrorOut), tags=["rights"], security=BEARER)
def file_request(json: RightsBody) -> tuple[dict[str, Any], int]:
    caller = require_caller()
    created = backends().rights.FileRequest(
        rights_pb2.FileRequestRequest(kind=json.kind, details=json.details), metadata=caller.metadata)
    return convert.rights_request(created), 202


@bp.get("/api/v1/rights-requests")
@spec.validate(query=RightsQuery, resp=Resp(HTTP_200=RightsPage, HTTP_401=ErrorOut, HTTP_403=ErrorOut),
               tags=["rights"], security=BEARER)
def list_requests(query: RightsQuery) -> dict[str, Any]:
    caller = require_caller()
    page = backends().rights.ListRequests(
        rights_pb2.ListRequestsRequest(status=query.status, overdue=query.overdue, cursor=query.cursor),
        metadata=caller.metadata)
    return {"items": [convert.rights_request(r) for r in page.items], "next_cursor": page.next_cursor or None}


@bp.get("/api/v1/rights-requests/<request_id>")
@spec.validate(resp=Resp(HTTP_200=RightsOut, HTTP_401=ErrorOut, HTTP_404=ErrorOut), tags=["rights"],
               security=BEARER)
def get_request(request_id: str) -> dict[str, Any]:
    caller = require_caller()
    found = backends().rights.GetRequest(rights_pb2.GetRequestRequest(id=request_id), metadata=caller.metadata)
    return convert.rights_request(found)
