"""Tickets: open, list, read, reply."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from kaseum.tickets.v1 import tickets_pb2
from spectree import Response as Resp

from .. import convert
from ..auth import backends, require_caller
from ..openapi import BEARER, spec
from ..schemas import ErrorOut, ReplyBody, ReplyOut, TicketBody, TicketOut, TicketPage, TicketQuery

bp = Blueprint("tickets", __name__)


@bp.post("/api/v1/tickets")
@spec.validate(json=TicketBody, resp=Resp(HTTP_201=TicketOut, HTTP_401=ErrorOut, HTTP_403=ErrorOut,
                                          HTTP_422=ErrorOut), tags=["tickets"], security=BEARER)
def open_ticket(json: TicketBody) -> tuple[dict[str, Any], int]:
    caller = require_caller()
    ticket = backends().tickets.OpenTicket(
        tickets_pb2.OpenTicketRequest(subject=json.subject, body=json.body, product=json.product),
        metadata=caller.metadata)
    return convert.ticket(ticket), 201


@bp.get("/api/v1/tickets")
@spec.validate(query=TicketQuery, resp=Resp(HTTP_200=TicketPage, HTTP_401=ErrorOut, HTTP_403=ErrorOut),
               tags=["tickets"], security=BEARER)
def list_tickets(query: TicketQuery) -> dict[str, Any]:
    caller = require_caller()
    page = backends().tickets.ListTickets(
        tickets_pb2.ListTicketsRequest(status=query.status, cursor=query.cursor), metadata=caller.metadata)
    return {"items": [convert.ticket(t) for t in page.items], "next_cursor": page.next_cursor or None}


@bp.get("/api/v1/tickets/<ticket_id>")
@spec.validate(resp=Resp(HTTP_200=TicketOut, HTTP_401=ErrorOut, HTTP_404=ErrorOut), tags=["tickets"],
               security=BEARER)
def get_ticket(ticket_id: str) -> dict[str, Any]:
    caller = require_caller()
    ticket = backends().tickets.GetTicket(tickets_pb2.GetTicketRequest(id=ticket_id), metadata=caller.metadata)
    return convert.ticket(ticket, with_replies=True)


@bp.post("/api/v1/tickets/<ticket_id>/replies")
@spec.validate(json=ReplyBody, resp=Resp(HTTP_201=ReplyOut, HTTP_401=ErrorOut, HTTP_403=ErrorOut,
                                         HTTP_404=ErrorOut, HTTP_422=ErrorOut), tags=["tickets"], security=BEARER)
def add_reply(ticket_id: str, json: ReplyBody) -> tuple[dict[str, Any], int]:
    caller = require_caller()
    reply = backends().tickets.AddReply(
        tickets_pb2.AddReplyRequest(ticket_id=ticket_id, body=json.body, internal=json.internal),
        metadata=caller.metadata)
    return convert.reply(reply), 201
