"""Rights requests (section 13): filing, following and downloading for the subject; the DPO's actions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, stream_with_context
from kaseum.rights.v1 import rights_pb2
from spectree import Response as Resp

from .. import convert
from ..auth import backends, require_caller
from ..openapi import BEARER, spec, streamed
from ..rights_schemas import (
    ClockBody,
    ExtendBody,
    OnBehalfBody,
    RefuseBody,
    RightsBody,
    RightsOut,
    RightsPage,
    RightsQuery,
    VerifyBody,
)
from ..schemas import ErrorOut

bp = Blueprint("rights", __name__)
# A DPO's action on a request: its new state, or why not (no such request, wrong role, not now, bad body).
DPO_ACTION = Resp(HTTP_200=RightsOut, HTTP_401=ErrorOut, HTTP_403=ErrorOut, HTTP_404=ErrorOut, HTTP_409=ErrorOut,
                  HTTP_422=ErrorOut)
# A ZIP of a long history takes longer to stream than a JSON answer; still bounded.
EXPORT_DEADLINE_SECONDS = 300.0


@bp.post("/api/v1/rights-requests")
@spec.validate(json=RightsBody, resp=Resp(HTTP_202=RightsOut, HTTP_401=ErrorOut, HTTP_403=ErrorOut,
                                          HTTP_422=ErrorOut), tags=["rights"], security=BEARER)
def file_request(json: RightsBody) -> tuple[dict[str, Any], int]:
    caller = require_caller()
    created = backends().rights.FileRequest(
        rights_pb2.FileRequestRequest(kind=json.kind, details=json.details, purpose=json.purpose,
                                      corrections=json.corrections, destination_url=json.destination_url,
                                      destination_country=json.destination_country), metadata=caller.metadata)
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


@bp.post("/api/v1/rights-requests/<request_id>/retry")
@spec.validate(resp=Resp(HTTP_200=RightsOut, HTTP_401=ErrorOut, HTTP_403=ErrorOut, HTTP_404=ErrorOut,
                         HTTP_409=ErrorOut), tags=["rights"], security=BEARER)
def retry_request(request_id: str) -> dict[str, Any]:
    """DPO: run the request's failed steps again now."""
    caller = require_caller()
    return convert.rights_request(backends().rights.RetryRequest(
        rights_pb2.RetryRequestRequest(id=request_id), metadata=caller.metadata))


@bp.post("/api/v1/rights-requests/<request_id>/extend")
@spec.validate(json=ExtendBody, resp=DPO_ACTION, tags=["rights"], security=BEARER)
def extend_request(request_id: str, json: ExtendBody) -> dict[str, Any]:
    """DPO: extend the deadline once by one or two further months, with a reason the subject is told."""
    caller = require_caller()
    return convert.rights_request(backends().rights.ExtendRequest(
        rights_pb2.ExtendRequestRequest(id=request_id, months=json.months, reason=json.reason),
        metadata=caller.metadata))


@bp.post("/api/v1/rights-requests/<request_id>/refuse")
@spec.validate(json=RefuseBody, resp=DPO_ACTION, tags=["rights"], security=BEARER)
def refuse_request(request_id: str, json: RefuseBody) -> dict[str, Any]:
    """DPO: refuse a manifestly unfounded or excessive request, with a reason the subject is told."""
    caller = require_caller()
    return convert.rights_request(backends().rights.RefuseRequest(
        rights_pb2.RefuseRequestRequest(id=request_id, reason=json.reason), metadata=caller.metadata))


streamed("/api/v1/rights-requests/{request_id}/export", "GET",
         "The requester's ZIP: data.json, one CSV per table, report.html (7 days)", "application/zip",
         (401, 403, 404, 409))


@bp.get("/api/v1/rights-requests/<request_id>/export")
def download_export(request_id: str) -> Response:
    """The requester's ZIP (data.json, one CSV per table, report.html) while the link is valid."""
    caller = require_caller()
    chunks = backends().rights.DownloadExport(rights_pb2.DownloadExportRequest(id=request_id),
                                              metadata=caller.metadata, timeout=EXPORT_DEADLINE_SECONDS)
    # The first chunk is fetched here, so a refusal (not yours, not ready, expired) is a proper error
    # answer; after it the ZIP streams through without being held whole.
    first = next(chunks, None)

    def body() -> Iterator[bytes]:
        if first is not None:
            yield first.data
        for chunk in chunks:
            yield chunk.data

    response = Response(stream_with_context(body()), mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="kaseum-{request_id[:32]}.zip"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/api/v1/dpo/rights-requests")
@spec.validate(json=OnBehalfBody, resp=Resp(HTTP_202=RightsOut, HTTP_401=ErrorOut, HTTP_403=ErrorOut,
                                            HTTP_404=ErrorOut, HTTP_422=ErrorOut), tags=["rights"],
               security=BEARER)
def file_on_behalf(json: OnBehalfBody) -> tuple[dict[str, Any], int]:
    """DPO: a request that came by e-mail (notice 13.2); it waits for the subject's one-time code."""
    caller = require_caller()
    created = backends().rights.FileOnBehalf(rights_pb2.FileOnBehalfRequest(
        email=json.email, kind=json.kind, details=json.details, purpose=json.purpose,
        corrections=json.corrections), metadata=caller.metadata)
    return convert.rights_request(created), 202


@bp.post("/api/v1/rights-requests/<request_id>/verify")
@spec.validate(json=VerifyBody, resp=DPO_ACTION, tags=["rights"], security=BEARER)
def verify_request(request_id: str, json: VerifyBody) -> dict[str, Any]:
    """DPO: the code the subject returned starts the work; an empty code sends a new one."""
    caller = require_caller()
    return convert.rights_request(backends().rights.VerifyRequest(
        rights_pb2.VerifyRequestRequest(id=request_id, code=json.code), metadata=caller.metadata))


@bp.post("/api/v1/rights-requests/<request_id>/clock")
@spec.validate(json=ClockBody, resp=DPO_ACTION, tags=["rights"], security=BEARER)
def stop_clock(request_id: str, json: ClockBody) -> dict[str, Any]:
    """DPO: stop the clock while waiting for clarification, restart it on the answer."""
    caller = require_caller()
    return convert.rights_request(backends().rights.StopClock(
        rights_pb2.StopClockRequest(id=request_id, stop=json.stop), metadata=caller.metadata))


@bp.post("/api/v1/rights-requests/<request_id>/lift-restriction")
@spec.validate(resp=Resp(HTTP_200=RightsOut, HTTP_401=ErrorOut, HTTP_403=ErrorOut, HTTP_404=ErrorOut,
                         HTTP_409=ErrorOut), tags=["rights"], security=BEARER)
def lift_restriction(request_id: str) -> dict[str, Any]:
    """DPO: end a completed restriction; the subject is told now, the services lift it after notice."""
    caller = require_caller()
    return convert.rights_request(backends().rights.LiftRestriction(
        rights_pb2.LiftRestrictionRequest(id=request_id), metadata=caller.metadata))
