"""Statuses, priority and assignment: open → pending → resolved → closed, with reopen; every change an event."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from kaseum.events.v1 import envelope_pb2
from kaseum.events.v1 import tickets_events_pb2 as ev
from servicekit.errors import InvalidArgument, NotFound, PermissionDenied
from sqlalchemy import select
from tickets.models import Outbox
from tickets.service import Change, TicketsService

from .conftest import ACME, AGENT, ALICE, BOB, CAROL, who

pytestmark = pytest.mark.notice("1.2")


def status_events(service: TicketsService) -> list[tuple[str, str, str]]:
    found = []
    with service.uow() as uow:
        for row in uow.session.scalars(select(Outbox).order_by(Outbox.created_at)):
            env = envelope_pb2.Envelope.FromString(row.data)
            if env.type == "tickets.ticket.status_changed":
                event = ev.TicketStatusChanged()
                env.payload.Unpack(event)
                assert event.requester_id == ALICE  # so the requester can be told (section 8.2)
                found.append((event.from_status, event.to_status, event.changed_by))
    return found


def test_an_agent_works_a_ticket_and_the_customer_closes_and_reopens_it(service: TicketsService) -> None:
    alice, agent = who(ALICE, organisation=ACME), who(AGENT, "agent")
    ticket = service.open(alice, "Broken", "It is broken", "portal", "high")
    assert (ticket.status, ticket.priority, ticket.organisation_id) == ("open", "high", ACME)
    service.update(agent, ticket.id, Change(status="pending", assignee_id=AGENT, priority="urgent"))
    # The customer answering a ticket that waits on them reopens it.
    service.reply(alice, ticket.id, "Here are the details", False)
    assert service.get(alice, ticket.id)[0].status == "open"
    service.update(agent, ticket.id, Change(status="resolved"))
    closed = service.update(alice, ticket.id, Change(status="closed"))
    assert closed.status == "closed" and closed.closed_at is not None
    reopened = service.update(alice, ticket.id, Change(status="open"))
    assert reopened.closed_at is None and reopened.assignee_id == AGENT and reopened.priority == "urgent"
    assert status_events(service) == [("open", "pending", AGENT), ("pending", "open", ALICE),
                                      ("open", "resolved", AGENT), ("resolved", "closed", ALICE),
                                      ("closed", "open", ALICE)]
    with service.uow() as uow:
        types = [envelope_pb2.Envelope.FromString(r.data).type for r in uow.session.scalars(select(Outbox))]
    assert types.count("tickets.ticket.assigned") == 1 and types.count("tickets.ticket.closed") == 1


def test_customers_only_close_or_reopen_their_own(service: TicketsService) -> None:
    alice = who(ALICE, organisation=ACME)
    ticket = service.open(alice, "Broken", "It is broken", "")
    with pytest.raises(InvalidArgument):
        service.update(alice, ticket.id, Change(status="pending"))  # that is the agent's call
    with pytest.raises(PermissionDenied):
        service.update(alice, ticket.id, Change(priority="urgent"))
    with pytest.raises(PermissionDenied):
        service.update(alice, ticket.id, Change(assignee_id=ALICE))
    with pytest.raises(NotFound):
        service.update(who(BOB), ticket.id, Change(status="closed"))
    with service.uow() as uow:
        service.apply_sharing(uow, ACME, True, datetime.now(UTC))
        uow.commit()
    colleague = who(CAROL, organisation=ACME)
    with pytest.raises(PermissionDenied):
        service.update(colleague, ticket.id, Change(status="closed"))  # sees it, does not own it
    with pytest.raises(PermissionDenied):
        service.reply(colleague, ticket.id, "me too", False)


@pytest.mark.parametrize("change", [Change(status="lost"), Change(priority="whenever"),
                                    Change(assignee_id="x" * 40)])
def test_invalid_changes_are_refused(service: TicketsService, change: Change) -> None:
    ticket = service.open(who(ALICE), "Broken", "It is broken", "")
    with pytest.raises(InvalidArgument):
        service.update(who(AGENT, "agent"), ticket.id, change)


def test_the_agent_queue_filters_by_status_priority_product_assignee_and_organisation(
        service: TicketsService) -> None:
    agent = who(AGENT, "agent")
    a = service.open(who(ALICE, organisation=ACME), "A", "a", "portal", "urgent")
    b = service.open(who(BOB, organisation="g" * 32), "B", "b", "billing", "low")
    service.update(agent, b.id, Change(status="pending", assignee_id=AGENT))

    def ids(**filters: str) -> list[str]:
        return [t.id for t in service.page(agent, filters, "", 0).items]

    assert ids() == [b.id, a.id]
    assert ids(status="pending") == [b.id] and ids(priority="urgent") == [a.id]
    assert ids(product="portal") == [a.id] and ids(assignee_id=AGENT) == [b.id]
    assert ids(organisation_id=ACME) == [a.id]
    with pytest.raises(InvalidArgument):
        service.page(agent, {"requester_id": ALICE}, "", 0)
    with pytest.raises(InvalidArgument):
        service.page(agent, {"priority": "whenever"}, "", 0)


def event_types(service: TicketsService) -> list[str]:
    with service.uow() as uow:
        return [envelope_pb2.Envelope.FromString(r.data).type
                for r in uow.session.scalars(select(Outbox).order_by(Outbox.created_at))]


def test_every_priority_change_is_an_event(service: TicketsService) -> None:
    agent = who(AGENT, "agent")
    ticket = service.open(who(ALICE), "Broken", "It is broken", "")
    service.update(agent, ticket.id, Change(priority="high"))
    unchanged = service.update(agent, ticket.id, Change(priority="high"))  # no change, no event
    service.update(agent, ticket.id, Change(priority="urgent", status="pending"))
    found = []
    with service.uow() as uow:
        for row in uow.session.scalars(select(Outbox).order_by(Outbox.created_at)):
            env = envelope_pb2.Envelope.FromString(row.data)
            if env.type == "tickets.ticket.priority_changed":
                event = ev.TicketPriorityChanged()
                env.payload.Unpack(event)
                found.append((event.ticket_id, event.requester_id, event.from_priority, event.to_priority,
                              event.changed_by))
    assert found == [(ticket.id, ALICE, "normal", "high", AGENT), (ticket.id, ALICE, "high", "urgent", AGENT)]
    assert unchanged.priority == "high"
    assert service.get(who(ALICE), ticket.id)[0].priority == "urgent"


def test_a_customer_answering_a_closed_ticket_reopens_it(service: TicketsService) -> None:
    # Decided: reopen (the customer may reopen by hand anyway), rather than refuse the answer.
    alice, agent = who(ALICE), who(AGENT, "agent")
    ticket = service.open(alice, "Broken", "It is broken", "")
    service.update(alice, ticket.id, Change(status="closed"))
    service.reply(agent, ticket.id, "For the record: fixed in 2.1", False)  # staff answering does not reopen
    assert service.get(alice, ticket.id)[0].status == "closed"
    service.reply(alice, ticket.id, "It is broken again", False)
    reopened = service.get(alice, ticket.id)[0]
    assert (reopened.status, reopened.closed_at) == ("open", None)  # retention no longer runs
    assert status_events(service) == [("open", "closed", ALICE), ("closed", "open", ALICE)]
    assert event_types(service)[-2:] == ["tickets.ticket.replied", "tickets.ticket.status_changed"]
