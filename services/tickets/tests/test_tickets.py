"""Tickets' rules: need-to-know access, internal notes, keyset pagination."""

from __future__ import annotations

import pytest
from kaseum.events.v1 import envelope_pb2
from servicekit.errors import InvalidArgument, NotFound, PermissionDenied, WrongRegion
from servicekit.testing import person
from sqlalchemy import select
from tickets.models import Outbox
from tickets.service import Change, TicketsService

from .conftest import AGENT, ALICE, BOB


@pytest.mark.rule("R-SEC-1")
def test_customers_see_only_their_own_tickets(service: TicketsService) -> None:
    mine = service.open(person(ALICE), "Mine", "text", "")
    service.open(person(BOB), "Bob's", "text", "")
    assert [t.id for t in service.page(person(ALICE), {}, "", 0).items] == [mine.id]
    with pytest.raises(NotFound):
        service.get(person(BOB), mine.id)
    with pytest.raises(NotFound):
        service.reply(person(BOB), mine.id, "hi", False)


@pytest.mark.rule("R-SEC-1")
@pytest.mark.parametrize("role", ["analyst", "dpo", "admin"])
def test_roles_without_a_need_to_know_are_denied(service: TicketsService, role: str) -> None:
    ticket = service.open(person(ALICE), "Mine", "text", "")
    with pytest.raises(PermissionDenied):
        service.page(person(AGENT, role), {}, "", 0)
    with pytest.raises(NotFound):
        service.get(person(AGENT, role), ticket.id)


@pytest.mark.notice("11")
@pytest.mark.rule("R-SEC-1")
def test_internal_notes_are_for_staff_only(service: TicketsService) -> None:
    ticket = service.open(person(ALICE), "Help", "text", "")
    with pytest.raises(PermissionDenied):
        service.reply(person(ALICE), ticket.id, "note", True)
    service.reply(person(AGENT, "agent"), ticket.id, "internal", True)
    service.reply(person(AGENT, "agent"), ticket.id, "public", False)
    assert [r.body for r in service.get(person(ALICE), ticket.id)[1]] == ["public"]
    assert [r.body for r in service.get(person(AGENT, "agent"), ticket.id)[1]] == ["internal", "public"]
    exported = {name: rows for name, _, _, rows in service.export(ALICE).tables}
    assert all("internal" not in row for row in exported["replies"])


@pytest.mark.rule("R-RESTRICT-1")
def test_a_restricted_customers_tickets_are_frozen_for_staff(service: TicketsService) -> None:
    ticket = service.open(person(ALICE), "Help", "text", "")
    service.set_restricted(ALICE, True)
    with pytest.raises(PermissionDenied):
        service.reply(person(AGENT, "agent"), ticket.id, "edit", False)
    assert service.reply(person(ALICE), ticket.id, "still mine", False)


@pytest.mark.rule("R-RESTRICT-1")
@pytest.mark.parametrize("change", [Change(status="pending"), Change(status="closed"), Change(priority="urgent"),
                                    Change(assignee_id=AGENT), Change(assignee_id="")],
                         ids=["status", "close", "priority", "assign", "unassign"])
def test_a_restricted_customers_ticket_cannot_be_changed_by_an_agent(service: TicketsService,
                                                                     change: Change) -> None:
    ticket = service.open(person(ALICE), "Help", "text", "", "high")
    service.update(person(AGENT, "agent"), ticket.id, Change(assignee_id=BOB))
    before = service.get(person(ALICE), ticket.id)[0]
    events = outbox_types(service)
    service.set_restricted(ALICE, True)
    with pytest.raises(PermissionDenied, match="restricted"):
        service.update(person(AGENT, "agent"), ticket.id, change)
    after = service.get(person(ALICE), ticket.id)[0]
    assert (after.status, after.priority, after.assignee_id, after.updated_at) == (
        "open", "high", BOB, before.updated_at)
    assert outbox_types(service) == events  # and nothing was announced
    # The subject's own use is not frozen: they may still close their ticket.
    assert service.update(person(ALICE), ticket.id, Change(status="closed")).status == "closed"


def outbox_types(service: TicketsService) -> list[str]:
    with service.uow() as uow:
        return [envelope_pb2.Envelope.FromString(r.data).type for r in uow.session.scalars(select(Outbox))]


@pytest.mark.notice("1.2")
def test_pages_follow_a_keyset_cursor_without_gaps_or_repeats(service: TicketsService) -> None:
    opened = [service.open(person(ALICE), f"t{i}", "b", "").id for i in range(7)]
    seen: list[str] = []
    cursor = ""
    while True:
        page = service.page(person(ALICE), {}, cursor, 3)
        seen += [t.id for t in page.items]
        service.open(person(ALICE), "inserted meanwhile", "b", "")  # newer: must not shift later pages
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert seen == list(reversed(opened))


@pytest.mark.notice("1.2")
@pytest.mark.rule("R-XFER-2")
def test_bad_arguments_are_refused(service: TicketsService) -> None:
    with pytest.raises(InvalidArgument):
        service.open(person(ALICE), "", "b", "")
    with pytest.raises(InvalidArgument):
        service.page(person(ALICE), {"status": "lost"}, "", 0)
    with pytest.raises(InvalidArgument):
        service.page(person(ALICE), {}, "!!", 0)
    with pytest.raises(WrongRegion):
        service.open(person(ALICE, region="eu"), "s", "b", "")


@pytest.mark.notice("13.1.3")
@pytest.mark.rule("R-ERASE-1")
def test_erase_removes_the_subjects_tickets_and_replies(service: TicketsService) -> None:
    ticket = service.open(person(ALICE), "Help", "text", "")
    service.reply(person(AGENT, "agent"), ticket.id, "answer", False)
    other = service.open(person(BOB), "Other", "text", "")
    assert service.erase(ALICE).erased == 2
    with pytest.raises(NotFound):
        service.get(person(ALICE), ticket.id)
    assert service.get(person(BOB), other.id)
