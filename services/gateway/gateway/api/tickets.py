"""Tickets: open, list, read, reply; resellers' notices of customers' rights requests (Art. 19)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from kaseum.tickets.v1 import tickets_pb2
from spectree import Response as Resp

from .. import convert
from ..auth import backends, require_caller
from ..openapi import BEARER, spec
from ..schemas import (
    SPECIAL_CATEGORY_GUIDANCE,
    ErrorOut,
    OpenedTicketOut,
    RecipientNoticeOut,
    RecipientNoticePage,
    RecipientNoticeQuery,
    ReplyBody,
    ReplyOut,
    TicketBody,
    TicketOut,
    TicketPage,
    TicketPatch,
    TicketQuery,
)

bp = Blueprint("tickets", __name__)


def _notice(n: tickets_pb2.RecipientNotice) -> dict[str, Any]:
    return {"id": n.id, "subject_id": n.subject_id, "kind": n.kind, "request_id": n.request_id,
            "created_at": convert.rfc3339(n.created_at),
            "acknowledged_at": convert.rfc3339(n.acknowledged_at) if n.HasField("acknowledged_at") else None,
            "message": n.message}


@bp.post("/api/v1/tickets")
@spec.validate(json=TicketBody, resp=Resp(HTTP_201=OpenedTicketOut, HTTP_401=ErrorOut, HTTP_403=ErrorOut,
                                          HTTP_422=ErrorOut), tags=["tickets"], security=BEARER)
def open_ticket(json: TicketBody) -> tuple[dict[str, Any], int]:
    caller = require_caller()
    ticket = backends().tickets.OpenTicket(
        tickets_pb2.OpenTicketRequest(subject=json.subject, body=json.body, product=json.product,
                                      priority=json.priority),
        metadata=caller.metadata)
    return {**convert.ticket(ticket), "guidance": SPECIAL_CATEGORY_GUIDANCE}, 201


@bp.get("/api/v1/tickets")
@spec.validate(query=TicketQuery, resp=Resp(HTTP_200=TicketPage, HTTP_401=ErrorOut, HTTP_403=ErrorOut,
                                            HTTP_422=ErrorOut), tags=["tickets"], security=BEARER)
def list_tickets(query: TicketQuery) -> dict[str, Any]:
    """Customers: their own (and their organisation's, when it shares them); agents: the queue;
    resellers: their customers'. Filters and `q` (text search) narrow what the caller may see."""
    caller = require_caller()
    assignee = caller.subject_id if query.assignee == "me" else query.assignee
    page = backends().tickets.ListTickets(tickets_pb2.ListTicketsRequest(
        status=query.status, cursor=query.cursor, priority=query.priority, product=query.product,
        assignee_id=assignee, organisation_id=query.organisation, query=query.q, page_size=query.page_size),
        metadata=caller.metadata)
    return {"items": [convert.ticket(t) for t in page.items], "next_cursor": page.next_cursor or None}


@bp.get("/api/v1/tickets/<ticket_id>")
@spec.validate(resp=Resp(HTTP_200=TicketOut, HTTP_401=ErrorOut, HTTP_404=ErrorOut), tags=["tickets"],
               security=BEARER)
def get_ticket(ticket_id: str) -> dict[str, Any]:
    caller = require_caller()
    ticket = backends().tickets.GetTicket(tickets_pb2.GetTicketRequest(id=ticket_id), metadata=caller.metadata)
    return convert.ticket(ticket, with_replies=True)


@bp.patch("/api/v1/tickets/<ticket_id>")
@spec.validate(json=TicketPatch, resp=Resp(HTTP_200=TicketOut, HTTP_401=ErrorOut, HTTP_403=ErrorOut,
                                           HTTP_404=ErrorOut, HTTP_422=ErrorOut), tags=["tickets"], security=BEARER)
def update_ticket(ticket_id: str, json: TicketPatch) -> dict[str, Any]:
    """Agents: status, priority, assignee. The requester: close, or reopen (status "open")."""
    caller = require_caller()
    request = tickets_pb2.UpdateTicketRequest(id=ticket_id)
    for field in ("status", "priority", "assignee_id"):
        value = getattr(json, field)
        if value is not None:
            setattr(request, field, value)
    return convert.ticket(backends().tickets.UpdateTicket(request, metadata=caller.metadata))


@bp.post("/api/v1/tickets/<ticket_id>/replies")
@spec.validate(json=ReplyBody, resp=Resp(HTTP_201=ReplyOut, HTTP_401=ErrorOut, HTTP_403=ErrorOut,
                                         HTTP_404=ErrorOut, HTTP_422=ErrorOut), tags=["tickets"], security=BEARER)
def add_reply(ticket_id: str, json: ReplyBody) -> tuple[dict[str, Any], int]:
    caller = require_caller()
    reply = backends().tickets.AddReply(
        tickets_pb2.AddReplyRequest(ticket_id=ticket_id, body=json.body, internal=json.internal),
        metadata=caller.metadata)
    return convert.reply(reply), 201


@bp.get("/api/v1/reseller/notices")
@spec.validate(query=RecipientNoticeQuery, resp=Resp(HTTP_200=RecipientNoticePage, HTTP_401=ErrorOut,
                                                     HTTP_403=ErrorOut, HTTP_422=ErrorOut),
               tags=["tickets"], security=BEARER)
def list_notices(query: RecipientNoticeQuery) -> dict[str, Any]:
    """Resellers: their organisation's notices that a customer whose tickets they saw had their data
    erased, rectified or restricted (Art. 19), newest first. Other roles: 403."""
    caller = require_caller()
    page = backends().tickets.ListRecipientNotices(
        tickets_pb2.ListRecipientNoticesRequest(cursor=query.cursor, page_size=query.page_size),
        metadata=caller.metadata)
    return {"items": [_notice(n) for n in page.items], "next_cursor": page.next_cursor or None}


@bp.post("/api/v1/reseller/notices/<notice_id>/acknowledge")
@spec.validate(resp=Resp(HTTP_200=RecipientNoticeOut, HTTP_401=ErrorOut, HTTP_403=ErrorOut,
                         HTTP_404=ErrorOut), tags=["tickets"], security=BEARER)
def acknowledge_notice(notice_id: str) -> dict[str, Any]:
    """Resellers: the organisation has acted on the notice. Another organisation's notice: 404."""
    caller = require_caller()
    notice = backends().tickets.AcknowledgeRecipientNotice(
        tickets_pb2.AcknowledgeRecipientNoticeRequest(id=notice_id), metadata=caller.metadata)
    return _notice(notice)
