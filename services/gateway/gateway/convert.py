"""Protobuf messages to the JSON shapes API.md promises."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from kaseum.consent.v1 import consent_pb2
from kaseum.identity.v1 import identity_pb2
from kaseum.rights.v1 import rights_pb2
from kaseum.tickets.v1 import tickets_pb2


def rfc3339(ts: Timestamp) -> str:
    return ts.ToDatetime(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def account(a: identity_pb2.Account) -> dict[str, Any]:
    return {"id": a.id, "username": a.username, "email": a.email, "first_name": a.first_name,
            "last_name": a.last_name, "company": a.company, "job_title": a.job_title,
            "phone": a.phone, "country": a.country, "region": a.region, "role": a.role,
            "created_at": rfc3339(a.created_at), "email_verified": a.email_verified,
            "pending_email": a.pending_email}


def tokens(t: identity_pb2.LoginResponse) -> dict[str, str]:
    return {"token": t.token, "expires_at": rfc3339(t.expires_at), "refresh_token": t.refresh_token,
            "refresh_expires_at": rfc3339(t.refresh_expires_at)}


def session(s: identity_pb2.SessionInfo) -> dict[str, Any]:
    return {"id": s.id, "created_at": rfc3339(s.created_at), "last_seen_at": rfc3339(s.last_seen_at),
            "browser": s.browser, "os": s.os, "current": s.current}


def reply(r: tickets_pb2.Reply) -> dict[str, Any]:
    return {"id": r.id, "author_id": r.author_id, "body": r.body, "internal": r.internal,
            "created_at": rfc3339(r.created_at)}


def ticket(t: tickets_pb2.Ticket, with_replies: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": t.id, "status": t.status, "subject": t.subject, "body": t.body, "product": t.product,
        "requester_id": t.requester_id, "created_at": rfc3339(t.created_at),
        "updated_at": rfc3339(t.updated_at), "priority": t.priority, "assignee_id": t.assignee_id or None,
        "organisation_id": t.organisation_id or None,
        "closed_at": rfc3339(t.closed_at) if t.HasField("closed_at") else None,
    }
    if with_replies:
        out["replies"] = [reply(r) for r in t.replies]
    return out


def preferences(p: consent_pb2.Preferences) -> dict[str, Any]:
    return {
        "marketing": {"email": p.marketing.email, "telephone": p.marketing.telephone},
        "third_party_marketing": p.third_party_marketing,
        "cookies": {"analytics": p.cookies.analytics, "marketing": p.cookies.marketing},
        "notice_version": p.notice_version,
        "objected": p.objected,
        "reconsent_required": p.reconsent_required,
        "last_notice_seen": p.last_notice_seen,
    }


# The DPO is warned of requests due within a week (R-RIGHTS-2).
DUE_SOON = timedelta(days=7)
# Art. 12(4): a refusal tells the subject they may complain to the supervisory authority (notice 13.3).
ICO_COMPLAINT = ("You may complain to the Information Commissioner's Office: https://ico.org.uk/make-a-complaint/ "
                 "or 0303 123 1113.")


def rights_request(r: rights_pb2.RightsRequest) -> dict[str, Any]:
    refused = r.status == "refused"
    return {"id": r.id, "kind": r.kind, "status": r.status, "received_at": rfc3339(r.received_at),
            "due_at": rfc3339(r.due_at),
            "completed_at": rfc3339(r.completed_at) if r.HasField("completed_at") else None,
            "steps": [{"service": s.service, "operation": s.operation, "status": s.status,
                       "attempts": s.attempts, "error": s.error or None,
                       "next_attempt_at": rfc3339(s.next_attempt_at) if s.HasField("next_attempt_at") else None,
                       "outcome": s.outcome, "kept": list(s.kept)} for s in r.steps],
            "purpose": r.purpose or None, "extension_reason": r.extension_reason or None,
            "refusal_reason": r.refusal_reason or None,
            "complaint": ICO_COMPLAINT if refused else None,
            "export_url": f"/api/v1/rights-requests/{r.id}/export" if r.HasField("export_expires_at") else None,
            "export_expires_at": rfc3339(r.export_expires_at) if r.HasField("export_expires_at") else None,
            "channel": r.channel or "portal",
            "due_soon": r.status not in ("completed", "refused")
            and r.due_at.ToDatetime(tzinfo=UTC) <= datetime.now(UTC) + DUE_SOON,
            "clock_stopped_at": rfc3339(r.clock_stopped_at) if r.HasField("clock_stopped_at") else None,
            "lift_at": rfc3339(r.lift_at) if r.HasField("lift_at") else None,
            "destination": {"host": r.destination_host, "country": r.destination_country}
            if r.destination_host else None}
