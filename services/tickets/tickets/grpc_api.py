"""gRPC translation for tickets."""

from __future__ import annotations

from typing import Any

from kaseum.tickets.v1 import tickets_pb2 as pb
from kaseum.tickets.v1 import tickets_pb2_grpc
from servicekit import caller
from servicekit.timestamps import to_timestamp

from .models import RecipientNotice, Reply, Ticket
from .service import Change, TicketsService, notice_message

SERVICE = "kaseum.tickets.v1.Tickets"


def reply_message(r: Reply) -> pb.Reply:
    return pb.Reply(id=r.id, author_id=r.author_id, body=r.body, internal=r.internal,
                    created_at=to_timestamp(r.created_at))


def ticket_message(t: Ticket, replies: list[Reply] | None = None) -> pb.Ticket:
    message = pb.Ticket(id=t.id, requester_id=t.requester_id, subject=t.subject, body=t.body,
                        product=t.product, status=t.status, created_at=to_timestamp(t.created_at),
                        updated_at=to_timestamp(t.updated_at), replies=[reply_message(r) for r in replies or []],
                        priority=t.priority, assignee_id=t.assignee_id, organisation_id=t.organisation_id)
    if t.closed_at is not None:
        message.closed_at.CopyFrom(to_timestamp(t.closed_at))
    return message


def notice_of(n: RecipientNotice) -> pb.RecipientNotice:
    message = pb.RecipientNotice(id=n.id, subject_id=n.subject_id, kind=n.kind, request_id=n.request_id,
                                 created_at=to_timestamp(n.created_at), message=notice_message(n))
    if n.acknowledged_at is not None:
        message.acknowledged_at.CopyFrom(to_timestamp(n.acknowledged_at))
    return message


class TicketsApi(tickets_pb2_grpc.TicketsServicer):
    def __init__(self, service: TicketsService) -> None:
        self.service = service

    def OpenTicket(self, request: pb.OpenTicketRequest, context: Any) -> pb.Ticket:
        return ticket_message(self.service.open(caller.require_person(), request.subject, request.body,
                                                request.product, request.priority))

    def ListTickets(self, request: pb.ListTicketsRequest, context: Any) -> pb.ListTicketsResponse:
        filters = {"status": request.status, "priority": request.priority, "product": request.product,
                   "assignee_id": request.assignee_id, "organisation_id": request.organisation_id}
        page = self.service.page(caller.require_person(), filters, request.cursor, request.page_size, request.query)
        return pb.ListTicketsResponse(items=[ticket_message(t) for t in page.items],
                                      next_cursor=page.next_cursor)

    def GetTicket(self, request: pb.GetTicketRequest, context: Any) -> pb.Ticket:
        ticket, replies = self.service.get(caller.require_person(), request.id)
        return ticket_message(ticket, replies)

    def AddReply(self, request: pb.AddReplyRequest, context: Any) -> pb.Reply:
        return reply_message(self.service.reply(caller.require_person(), request.ticket_id, request.body,
                                                request.internal))

    def UpdateTicket(self, request: pb.UpdateTicketRequest, context: Any) -> pb.Ticket:
        change = Change(
            status=request.status if request.HasField("status") else None,
            priority=request.priority if request.HasField("priority") else None,
            assignee_id=request.assignee_id if request.HasField("assignee_id") else None,
        )
        return ticket_message(self.service.update(caller.require_person(), request.id, change))

    def ListRecipientNotices(self, request: pb.ListRecipientNoticesRequest,
                             context: Any) -> pb.ListRecipientNoticesResponse:
        page = self.service.notices(caller.require_person(), request.cursor, request.page_size)
        return pb.ListRecipientNoticesResponse(items=[notice_of(n) for n in page.items], next_cursor=page.next_cursor)

    def AcknowledgeRecipientNotice(self, request: pb.AcknowledgeRecipientNoticeRequest,
                                   context: Any) -> pb.RecipientNotice:
        return notice_of(self.service.acknowledge(caller.require_person(), request.id))
