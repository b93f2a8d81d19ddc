"""Tickets: open, list, read, reply."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from kaseum.tickets.v1 import tickets_pb2
from spectree import Response as Resp

from .. import convert
from ..auth import backends, require_caller
from ..openapi import BEARER, spec
from ..schemas import ErrorOut, ReplyBody, ReplyOut, TicketBody, TicketOut, TicketPage, TicketPatch, TicketQuery

bp = Blueprint("tickets", __name__)


@bp.post("/api/v1/tickets")
@spec.validate(json=TicketBody, resp=Resp(HTTP_201=TicketOut, HTTP_401=ErrorOut, HTTP_403=ErrorOut,
                                          HTTP_422=ErrorOut), tags=["tickets"], security=BEARER)
def open_ticket(json: TicketBody) -> tuple[dict[str, Any], int]:
    caller = require_caller()
    ticket = backends().tickets.OpenTicket(
        tickets_pb2.OpenTicketRequest(subject=json.subject, body=json.body, product=json.product,
                                      priority=json.priority),
        metadata=caller.metadata)
    return convert.ticket(ticket), 201


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
