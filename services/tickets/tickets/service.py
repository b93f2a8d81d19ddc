"""Tickets' rules: customers reach their own tickets; agents the region's queue; deny otherwise."""

from __future__ import annotations

from dataclasses import dataclass

from kaseum.events.v1 import tickets_events_pb2 as ev
from servicekit import audit, cursors
from servicekit.caller import Principal
from servicekit.db import UnitOfWork, UnitOfWorkFactory, new_id, utcnow
from servicekit.errors import InvalidArgument, NotFound, PermissionDenied
from servicekit.holds import LegalHoldMixin
from servicekit.personal_data import table_of
from servicekit.region import RegionGuard
from servicekit.subject_data import Erasure, Export, SubjectDataRules

from .models import Reply, Repository, Ticket

# Every staff access to a ticket is recorded for this purpose (4.1.3: support).
ACCESS_PURPOSE = audit.SUPPORT
# Erasure keeps the access records: they are the security record of who saw the data (Art. 5(1)(f), 32, 33).
KEPT_ACCESS_LOG = ("access_log", "kept as the record of who accessed the data (UK GDPR Art. 5(1)(f), 32, 33)")

STATUSES = ("open", "pending", "resolved", "closed")
STAFF_READERS = ("agent",)
MAX_SUBJECT = 200
MAX_BODY = 20_000


@dataclass(frozen=True)
class Page:
    items: list[Ticket]
    next_cursor: str


def _text(field: str, value: str, limit: int) -> str:
    cleaned = value.strip()
    if not cleaned:
        raise InvalidArgument(f"{field} is required", "missing_field")
    if len(cleaned) > limit:
        raise InvalidArgument(f"{field} must be at most {limit} characters", "too_long")
    return cleaned


class TicketsService(SubjectDataRules):
    def __init__(self, uow: UnitOfWorkFactory[Repository], region: str, page_size: int = 20) -> None:
        self.uow = uow
        self.region = region
        self.guard = RegionGuard(region)
        self.page_size = page_size

    def open(self, principal: Principal, subject: str, body: str, product: str) -> Ticket:
        if principal.role != "customer":
            raise PermissionDenied("only customers open tickets")
        self.guard.check(principal.region)
        now = utcnow()
        ticket = Ticket(id=new_id(), requester_id=principal.subject_id,
                        subject=_text("subject", subject, MAX_SUBJECT), body=_text("body", body, MAX_BODY),
                        product=product.strip()[:100], status="open", region=self.region,
                        created_at=now, updated_at=now)
        with self.uow() as uow:
            uow.repo.add(ticket)
            uow.events.publish("tickets.ticket.opened", principal.subject_id, ev.TicketOpened(
                ticket_id=ticket.id, requester_id=principal.subject_id, product=ticket.product))
            uow.commit()
        return ticket

    def page(self, principal: Principal, status: str, cursor: str, page_size: int) -> Page:
        self.guard.check(principal.region)
        if status and status not in STATUSES:
            raise InvalidArgument(f"status must be one of {', '.join(STATUSES)}", "invalid_status")
        if principal.role == "customer":
            requester: str | None = principal.subject_id
        elif principal.role in STAFF_READERS:
            requester = None
        else:
            raise PermissionDenied("not allowed to list tickets")
        size = page_size or self.page_size
        if not 1 <= size <= 100:
            raise InvalidArgument("page_size must be between 1 and 100", "invalid_page_size")
        with self.uow() as uow:
            items = uow.repo.page(requester_id=requester, region=self.region, status=status,
                                  after=cursors.decode(cursor), limit=size + 1)
            more = len(items) > size
            items = items[:size]
            if requester is None and items:
                # A queue page shows each ticket's requester and subject: one access per ticket.
                uow.repo.audit(principal, [audit.Access(t.requester_id, "ticket.listed", t.id) for t in items])
                uow.commit()
        next_cursor = cursors.encode(items[-1].created_at, items[-1].id) if more else ""
        return Page(items, next_cursor)

    def _visible(self, uow: UnitOfWork[Repository], principal: Principal, ticket_id: str) -> Ticket:
        self.guard.check(principal.region)
        ticket = uow.repo.ticket(ticket_id) if ticket_id else None
        # Absent and not-yours answer the same, so existence never leaks.
        if ticket is None or ticket.region != self.region:
            raise NotFound("ticket not found")
        if principal.role == "customer" and ticket.requester_id == principal.subject_id:
            return ticket
        if principal.role in STAFF_READERS:
            return ticket
        raise NotFound("ticket not found")

    def get(self, principal: Principal, ticket_id: str) -> tuple[Ticket, list[Reply]]:
        with self.uow() as uow:
            ticket = self._visible(uow, principal, ticket_id)
            replies = uow.repo.replies(ticket.id, include_internal=principal.role in STAFF_READERS)
            if principal.role != "customer":
                uow.repo.audit(principal, [audit.Access(ticket.requester_id, "ticket.read", ticket.id)])
                uow.commit()
            return ticket, replies

    def reply(self, principal: Principal, ticket_id: str, body: str, internal: bool) -> Reply:
        if internal and principal.role not in STAFF_READERS:
            raise PermissionDenied("only staff write internal notes")
        with self.uow() as uow:
            ticket = self._visible(uow, principal, ticket_id)
            if principal.role in STAFF_READERS and uow.repo.restricted(ticket.requester_id):
                raise PermissionDenied("processing of this customer's data is restricted")
            now = utcnow()
            reply = Reply(id=new_id(), ticket_id=ticket.id, author_id=principal.subject_id,
                          body=_text("body", body, MAX_BODY), internal=internal, created_at=now)
            uow.repo.add(reply)
            ticket.updated_at = now
            if principal.role != "customer":
                uow.repo.audit(principal, [audit.Access(ticket.requester_id, "ticket.replied", ticket.id)])
            uow.events.publish("tickets.ticket.replied", ticket.requester_id, ev.TicketReplied(
                ticket_id=ticket.id, reply_id=reply.id, author_id=principal.subject_id,
                internal=internal, requester_id=ticket.requester_id))
            uow.commit()
            return reply

    # --- the personal-data contract ---------------------------------------------------
    def export(self, subject_id: str) -> Export:
        with self.uow() as uow:
            return Export([
                table_of("tickets", "ticket_content", Ticket, uow.repo.tickets_of(subject_id)),
                table_of("replies", "ticket_content", Reply, uow.repo.replies_for_export(subject_id)),
                uow.repo.access_log_of(subject_id),
            ])

    def erase(self, subject_id: str) -> Erasure:
        """Everything of the subject, except what a legal hold covers (reported as kept, with why)."""
        with self.uow() as uow:
            on_subject = uow.repo.subject_holds(subject_id)
            if on_subject:
                return Erasure(0, [("tickets and replies", _held(h)) for h in on_subject] + [KEPT_ACCESS_LOG])
            on_tickets = uow.repo.ticket_holds_of(subject_id)
            count = uow.repo.erase(subject_id, keep_ticket_ids={h.target_id for h in on_tickets})
            uow.commit()
            return Erasure(count, [(f"ticket {h.target_id} and its replies", _held(h)) for h in on_tickets]
                           + [KEPT_ACCESS_LOG])

    def set_restricted(self, subject_id: str, restricted: bool) -> bool:
        with self.uow() as uow:
            uow.repo.set_restricted(subject_id, restricted)
            uow.commit()
            return restricted


def _held(hold: LegalHoldMixin) -> str:
    return (f"legal hold {hold.hold_id} ({hold.reason_code}; UK GDPR Art. 17(3)(e)), review on "
            f"{hold.review_at:%Y-%m-%d}")
