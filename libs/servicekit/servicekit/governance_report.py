"""Deployment-wide governance answers, as plain dicts: every service asked at once (governance_client),
results merged. The gateway's DPO routes return these as JSON; the `kaseum` CLI prints them.

Each answer names the services that did not answer (`not_reporting`, with why), so nothing that
claims to cover the whole deployment silently covers only part of it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from kaseum.privacy.v1 import governance_pb2 as pb
from kaseum.privacy.v1 import governance_pb2_grpc

from . import ropa
from .errors import InvalidArgument
from .governance_client import fan_out

Stubs = Mapping[str, governance_pb2_grpc.GovernanceStub]
Metadata = tuple[tuple[str, str], ...]


def rfc3339(ts: Timestamp) -> str:
    return ts.ToDatetime(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def timestamp(value: str, name: str) -> Timestamp | None:
    """An RFC 3339 time (or a date) from a query, as a Timestamp; None when empty."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidArgument(f"{name} must be an RFC 3339 time, e.g. 2026-01-31T09:00:00Z", "invalid_time") from exc
    ts = Timestamp()
    ts.FromDatetime(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
    return ts


def rule(r: pb.RetentionRule) -> dict[str, Any]:
    return {"name": r.name, "category": r.category, "covers": list(r.covers), "what": r.what, "period": r.period,
            "trigger": r.trigger, "reason": r.reason, "period_days": r.period_days,
            "period_months": r.period_months}


def retention(stubs: Stubs, metadata: Metadata) -> dict[str, Any]:
    def ask(_name: str, stub: governance_pb2_grpc.GovernanceStub
            ) -> tuple[pb.RetentionSchedule, pb.ListPurgeRunsResponse]:
        return (stub.GetRetentionSchedule(pb.GetRetentionScheduleRequest(), metadata=metadata),
                stub.ListPurgeRuns(pb.ListPurgeRunsRequest(limit=10), metadata=metadata))

    answers, missing = fan_out(stubs, ask)
    services = [{"service": name, "rules": [rule(r) for r in schedule.rules],
                 "recent_purges": [{"rule": p.rule, "started_at": rfc3339(p.started_at),
                                    "finished_at": rfc3339(p.finished_at), "cutoff": rfc3339(p.cutoff),
                                    "purged": p.purged, "batches": p.batches} for p in runs.runs]}
                for name, (schedule, runs) in sorted(answers.items())]
    return {"services": services, "not_reporting": missing}


def _cursors(cursor: str) -> dict[str, str]:
    if not cursor:
        return {}
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error) as exc:
        raise InvalidArgument("cursor is not valid", "invalid_cursor") from exc
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidArgument("cursor is not valid", "invalid_cursor")
    return value


def _next(cursors: Mapping[str, str]) -> str | None:
    live = {k: v for k, v in cursors.items() if v}
    return base64.urlsafe_b64encode(json.dumps(live).encode()).decode() if live else None


def audit(stubs: Stubs, metadata: Metadata, *, subject_id: str = "", actor_id: str = "",
          organisation_id: str = "", from_time: str = "", to_time: str = "", cursor: str = "",
          page_size: int = 100) -> dict[str, Any]:
    start, end = timestamp(from_time, "from"), timestamp(to_time, "to")
    positions = _cursors(cursor)
    # A continued listing asks only the services that had more.
    asked = {n: s for n, s in stubs.items() if not positions or n in positions}

    def ask(name: str, stub: governance_pb2_grpc.GovernanceStub) -> pb.QueryAuditResponse:
        answer: pb.QueryAuditResponse = stub.QueryAudit(pb.QueryAuditRequest(subject_id=subject_id, actor_id=actor_id,
                                                    actor_organisation_id=organisation_id, from_time=start,
                                                    to_time=end, page_size=page_size,
                                                    cursor=positions.get(name, "")), metadata=metadata)
        return answer

    answers, missing = fan_out(asked, ask)
    entries = sorted((e for a in answers.values() for e in a.entries), key=lambda e: (e.at.ToDatetime(), e.service,
                                                                                         e.seq))
    return {"items": [{"service": e.service, "seq": e.seq, "at": rfc3339(e.at), "actor_kind": e.actor_kind,
                       "actor_id": e.actor_id, "actor_role": e.actor_role,
                       "actor_organisation_id": e.actor_organisation_id, "subject_id": e.subject_id,
                       "action": e.action, "resource_id": e.resource_id, "purpose": e.purpose} for e in entries],
            "next_cursor": _next({n: a.next_cursor for n, a in answers.items()}), "not_reporting": missing}


def accessed_subjects(stubs: Stubs, metadata: Metadata, *, actor_id: str = "", organisation_id: str = "",
                      from_time: str, to_time: str) -> dict[str, Any]:
    """The breach-assessment answer (R-SEC-3): every subject the actor or organisation accessed, any service."""
    start, end = timestamp(from_time, "from"), timestamp(to_time, "to")

    def ask(_name: str, stub: governance_pb2_grpc.GovernanceStub) -> pb.AccessedSubjectsResponse:
        answer: pb.AccessedSubjectsResponse = stub.AccessedSubjects(pb.AccessedSubjectsRequest(
            actor_id=actor_id, actor_organisation_id=organisation_id, from_time=start, to_time=end),
            metadata=metadata)
        return answer

    answers, missing = fan_out(stubs, ask)
    merged: dict[str, dict[str, Any]] = {}
    for name, answer in sorted(answers.items()):
        for s in answer.subjects:
            row = merged.setdefault(s.subject_id, {"subject_id": s.subject_id, "accesses": 0, "services": [],
                                                    "first_at": rfc3339(s.first_at), "last_at": rfc3339(s.last_at)})
            row["accesses"] += s.accesses
            row["services"].append(name)
            row["first_at"] = min(row["first_at"], rfc3339(s.first_at))
            row["last_at"] = max(row["last_at"], rfc3339(s.last_at))
    return {"subjects": [merged[k] for k in sorted(merged)], "not_reporting": missing}


def verify(stubs: Stubs, metadata: Metadata, chain: str = "audit") -> dict[str, Any]:
    answers, missing = fan_out(stubs, lambda _n, s: s.VerifyChain(pb.VerifyChainRequest(chain=chain),
                                                                  metadata=metadata))
    return {"services": [{"service": n, "chain": a.chain, "intact": a.intact, "checked": a.checked,
                          "broken_at_seq": a.broken_at_seq, "problem": a.problem, "anchor_seq": a.anchor_seq}
                         for n, a in sorted(answers.items())],
            "intact": all(a.intact for a in answers.values()) and not missing, "not_reporting": missing}


def transfers(stubs: Stubs, metadata: Metadata, *, from_time: str = "", to_time: str = "",
              page_size: int = 100) -> dict[str, Any]:
    start, end = timestamp(from_time, "from"), timestamp(to_time, "to")
    answers, missing = fan_out(stubs, lambda _n, s: s.ListTransfers(pb.ListTransfersRequest(
        from_time=start, to_time=end, page_size=page_size), metadata=metadata))
    items = sorted((d for a in answers.values() for d in a.decisions), key=lambda d: (d.at.ToDatetime(), d.service))
    return {"items": [{"service": d.service, "seq": d.seq, "at": rfc3339(d.at), "kind": d.kind,
                       "destination_country": d.destination_country, "recipient": d.recipient,
                       "categories": list(d.categories), "subject_id": d.subject_id, "allowed": d.allowed,
                       "basis": d.basis, "safeguard_reference": d.safeguard_reference, "reason": d.reason,
                       "actor_id": d.actor_id} for d in items],
            "more": {n: a.next_cursor for n, a in answers.items() if a.next_cursor}, "not_reporting": missing}


def record_of_processing(stubs: Stubs, metadata: Metadata) -> dict[str, Any]:
    answers, missing = fan_out(stubs, lambda _n, s: s.GetDeclarations(pb.GetDeclarationsRequest(), metadata=metadata))
    return ropa.build([answers[n] for n in sorted(answers)], missing)
