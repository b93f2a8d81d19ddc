"""The DPO's governance routes (notice sections 5, 10, 11, 12): every service asked at once.

Audit trail and breach query (R-SEC-1, R-SEC-3), audit-chain check, transfer log (R-XFER-1),
the record of processing, legal holds (12.1) for the DPO; the retention schedule for
administrators too. The gateway checks the role first; each service checks it again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Response
from kaseum.rights.v1 import holds_pb2
from servicekit import governance_report, ropa
from servicekit.errors import InvalidArgument
from spectree import Response as Resp

from .. import convert
from ..auth import backends, require_role
from ..dpo_schemas import (
    AccessedQuery,
    AuditQuery,
    HoldBody,
    HoldList,
    HoldOut,
    HoldsQuery,
    Json,
    Report,
    TransfersQuery,
    VerifyQuery,
)
from ..errors import fail
from ..openapi import BEARER, spec
from ..schemas import ErrorOut

bp = Blueprint("dpo", __name__)
T = TypeVar("T")
READ = Resp(HTTP_200=Report, HTTP_401=ErrorOut, HTTP_403=ErrorOut, HTTP_422=ErrorOut)


def _checked(work: Callable[[], T]) -> T:
    try:
        return work()
    except InvalidArgument as exc:
        fail(422, exc.code, exc.message)


@bp.get("/api/v1/admin/retention")
@spec.validate(resp=READ, tags=["governance"], security=BEARER)
def retention_schedule() -> Json:
    """The retention schedule of every service and its recent purge runs (counts only)."""
    caller = require_role("admin", "dpo")
    return governance_report.retention(backends().governance, caller.metadata)


@bp.get("/api/v1/dpo/audit")
@spec.validate(query=AuditQuery, resp=READ, tags=["governance"], security=BEARER)
def audit_trail(query: AuditQuery) -> Json:
    """Accesses to personal data by subject, actor, actor organisation and time window."""
    caller = require_role("dpo")
    return _checked(lambda: governance_report.audit(
        backends().governance, caller.metadata, subject_id=query.subject_id, actor_id=query.actor_id,
        organisation_id=query.organisation_id, from_time=query.from_, to_time=query.to, cursor=query.cursor))


@bp.get("/api/v1/dpo/accessed-subjects")
@spec.validate(query=AccessedQuery, resp=READ, tags=["governance"], security=BEARER)
def accessed_subjects(query: AccessedQuery) -> Json:
    """The breach assessment: which subjects did this account, or this organisation, access in the window."""
    caller = require_role("dpo")
    if not (query.actor_id or query.organisation_id):
        fail(422, "missing_field", "give actor_id or organisation_id")
    return _checked(lambda: governance_report.accessed_subjects(
        backends().governance, caller.metadata, actor_id=query.actor_id, organisation_id=query.organisation_id,
        from_time=query.from_, to_time=query.to))


@bp.get("/api/v1/dpo/audit/verify")
@spec.validate(query=VerifyQuery, resp=READ, tags=["governance"], security=BEARER)
def verify_chains(query: VerifyQuery) -> Json:
    """Recompute every service's hash chain and say where one breaks."""
    caller = require_role("dpo")
    return governance_report.verify(backends().governance, caller.metadata, query.chain)


@bp.get("/api/v1/dpo/transfers")
@spec.validate(query=TransfersQuery, resp=READ, tags=["governance"], security=BEARER)
def transfer_log(query: TransfersQuery) -> Json:
    """Every transfer decision, allowed or refused, of every service."""
    caller = require_role("dpo")
    return _checked(lambda: governance_report.transfers(backends().governance, caller.metadata,
                                                        from_time=query.from_, to_time=query.to))


@bp.get("/api/v1/dpo/ropa")
@spec.validate(resp=READ, tags=["governance"], security=BEARER)
def record_of_processing() -> Json:
    """The record of processing (Art. 30), generated from the services' own declarations."""
    caller = require_role("dpo")
    return governance_report.record_of_processing(backends().governance, caller.metadata)


@bp.get("/api/v1/dpo/ropa.txt")
@spec.validate(tags=["governance"], security=BEARER)
def record_of_processing_text() -> Response:
    """The same record as plain text, for reading and printing (the DPO's page)."""
    caller = require_role("dpo")
    record = governance_report.record_of_processing(backends().governance, caller.metadata)
    return Response(ropa.to_text(record), mimetype="text/plain")


def hold_json(h: holds_pb2.Hold) -> dict[str, Any]:
    return {"id": h.id, "scope": h.scope, "target_id": h.target_id, "reason_code": h.reason_code, "note": h.note,
            "review_at": convert.rfc3339(h.review_at), "placed_at": convert.rfc3339(h.placed_at),
            "placed_by": h.placed_by,
            "released_at": convert.rfc3339(h.released_at) if h.HasField("released_at") else None,
            "released_by": h.released_by}


@bp.post("/api/v1/dpo/holds")
@spec.validate(json=HoldBody, resp=Resp(HTTP_201=HoldOut, HTTP_401=ErrorOut, HTTP_403=ErrorOut, HTTP_422=ErrorOut),
               tags=["governance"], security=BEARER)
def place_hold(json: HoldBody) -> tuple[dict[str, Any], int]:
    """Place a legal hold on a subject or a ticket: purge and erasure skip it until released."""
    caller = require_role("dpo")
    review = _checked(lambda: governance_report.timestamp(json.review_at, "review_at"))
    hold = backends().holds.PlaceHold(holds_pb2.PlaceHoldRequest(
        scope=json.scope, target_id=json.target_id, reason_code=json.reason_code, note=json.note,
        review_at=review), metadata=caller.metadata)
    return hold_json(hold), 201


@bp.get("/api/v1/dpo/holds")
@spec.validate(query=HoldsQuery, resp=Resp(HTTP_200=HoldList, HTTP_401=ErrorOut, HTTP_403=ErrorOut),
               tags=["governance"], security=BEARER)
def list_holds(query: HoldsQuery) -> dict[str, Any]:
    caller = require_role("dpo")
    found = backends().holds.ListHolds(holds_pb2.ListHoldsRequest(
        include_released=query.include_released, target_id=query.target_id), metadata=caller.metadata)
    return {"items": [hold_json(h) for h in found.holds]}


@bp.post("/api/v1/dpo/holds/<hold_id>/release")
@spec.validate(resp=Resp(HTTP_200=HoldOut, HTTP_401=ErrorOut, HTTP_403=ErrorOut, HTTP_404=ErrorOut),
               tags=["governance"], security=BEARER)
def release_hold(hold_id: str) -> dict[str, Any]:
    caller = require_role("dpo")
    return hold_json(backends().holds.ReleaseHold(holds_pb2.ReleaseHoldRequest(id=hold_id), metadata=caller.metadata))
