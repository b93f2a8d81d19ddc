"""Need to know, one table: who sees a ticket, by reading it and by listing or searching (R-SEC-1, R-SHARE-1)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from kaseum.events.v1 import envelope_pb2
from kaseum.tickets.v1.tickets_pb2 import ListTicketsResponse
from servicekit.caller import Principal
from servicekit.errors import NotFound, PermissionDenied
from sqlalchemy import select
from tickets.grpc_api import ticket_message
from tickets.models import Outbox
from tickets.service import Change, TicketsService
from tickets.visibility import Scope

from .conftest import ACME, AGENT, ALICE, BOB, CAROL, GLOBEX, RESELLER, FakeIdentity, who

pytestmark = [pytest.mark.notice("11"), pytest.mark.rule("R-SEC-1")]

# (label, caller, sharing on for ACME, reseller scope, sees Alice's ACME/GB ticket)
CASES: list[tuple[str, Principal, bool, Scope, bool]] = [
    ("requester", who(ALICE, organisation=ACME), False, Scope(), True),
    ("another customer", who(BOB, organisation=GLOBEX), True, Scope(), False),
    ("colleague, sharing off", who(CAROL, organisation=ACME), False, Scope(), False),
    ("colleague, sharing on", who(CAROL, organisation=ACME), True, Scope(), True),
    ("customer without an organisation", who(BOB), True, Scope(), False),
    ("agent", who(AGENT, "agent"), False, Scope(), True),
    ("reseller that sold to ACME", who(RESELLER, "reseller"), False, Scope("r", frozenset({ACME})), True),
    ("reseller operating in GB", who(RESELLER, "reseller"), False, Scope("r", countries=frozenset({"GB"})), True),
    ("reseller elsewhere", who(RESELLER, "reseller"), False,
     Scope("r", frozenset({GLOBEX}), frozenset({"FR"})), False),
    ("reseller without relationships", who(RESELLER, "reseller"), False, Scope(), False),
    ("dpo", who(AGENT, "dpo"), True, Scope(), False),
    ("analyst", who(AGENT, "analyst"), True, Scope(), False),
    ("admin", who(AGENT, "admin"), True, Scope(), False),
]


@pytest.mark.parametrize(("label", "caller", "sharing", "scope", "sees"), CASES, ids=[c[0] for c in CASES])
def test_reading_and_listing_agree_with_the_table(service: TicketsService, identity: FakeIdentity, label: str,
                                                  caller: Principal, sharing: bool, scope: Scope, sees: bool) -> None:
    ticket = service.open(who(ALICE, organisation=ACME, country="GB"), "Printer on fire", "smoke", "")
    service.open(who(BOB, organisation=GLOBEX, country="FR"), "Bob's own", "text", "")
    with service.uow() as uow:
        service.apply_sharing(uow, ACME, sharing, datetime.now(UTC))
        uow.commit()
    identity.scopes[RESELLER] = scope
    if sees:
        assert service.get(caller, ticket.id)[0].id == ticket.id
    else:
        with pytest.raises(NotFound):
            service.get(caller, ticket.id)
    try:
        listed = [t.id for t in service.page(caller, {}, "", 0).items]
        found = [t.id for t in service.page(caller, {}, "", 0, query="printer").items]
    except PermissionDenied:
        listed = found = []
    assert (ticket.id in listed, ticket.id in found) == (sees, sees), label


@pytest.mark.notice("5.1.1")
@pytest.mark.rule("R-SHARE-1")
def test_internal_notes_reach_no_customer_colleague_or_reseller(service: TicketsService,
                                                                identity: FakeIdentity) -> None:
    ticket = service.open(who(ALICE, organisation=ACME), "Help", "text", "")
    service.reply(who(AGENT, "agent"), ticket.id, "secret internal remark", True)
    with service.uow() as uow:
        service.apply_sharing(uow, ACME, True, datetime.now(UTC))
        uow.commit()
    identity.scopes[RESELLER] = Scope("r", frozenset({ACME}))
    for caller in (who(ALICE, organisation=ACME), who(CAROL, organisation=ACME), who(RESELLER, "reseller")):
        assert [r.internal for r in service.get(caller, ticket.id)[1]] == []
        assert service.page(caller, {}, "", 0, query="secret").items == []
        with pytest.raises(PermissionDenied):
            service.reply(caller, ticket.id, "a note", True)
    assert service.page(who(AGENT, "agent"), {}, "", 0, query="secret").items == []  # notes are never indexed


def test_a_later_sharing_event_wins_over_a_late_redelivery(service: TicketsService) -> None:
    ticket = service.open(who(ALICE, organisation=ACME), "Help", "text", "")
    with service.uow() as uow:
        service.apply_sharing(uow, ACME, False, datetime(2026, 2, 1, tzinfo=UTC))
        service.apply_sharing(uow, ACME, True, datetime(2026, 1, 1, tzinfo=UTC))  # older, arriving late
        uow.commit()
    with pytest.raises(NotFound):
        service.get(who(CAROL, organisation=ACME), ticket.id)


@pytest.mark.notice("5.1.1")
def test_resellers_answer_publicly_but_do_not_change_tickets(service: TicketsService, identity: FakeIdentity) -> None:
    ticket = service.open(who(ALICE, organisation=ACME), "Help", "text", "")
    identity.scopes[RESELLER] = Scope("r", frozenset({ACME}))
    reseller = who(RESELLER, "reseller")
    assert service.reply(reseller, ticket.id, "We sold you this; here is how.", False).internal is False
    with pytest.raises(PermissionDenied):
        service.update(reseller, ticket.id, Change(status="resolved"))
    service.set_restricted(ALICE, True)
    with pytest.raises(PermissionDenied):
        service.reply(reseller, ticket.id, "more", False)


def customer_view(service: TicketsService, customer: Principal, ticket_id: str) -> tuple[bytes, bytes, list[
        tuple[str, str, list[str], list[list[str]]]]]:
    """Everything a customer can get: the listing, the ticket with its replies (all fields as the API
    sends them), and their access export."""
    listed = ListTicketsResponse(items=[ticket_message(t) for t in service.page(customer, {}, "", 0).items])
    ticket, replies = service.get(customer, ticket_id)
    return (listed.SerializeToString(), ticket_message(ticket, replies).SerializeToString(),
            # Read whole here: the export's tickets and replies are read lazily, as they are sent.
            [(n, c, cols, list(rows)) for n, c, cols, rows in service.export(customer.subject_id).tables])


@pytest.mark.notice("13.1.1")
def test_an_internal_note_reaches_the_customer_by_no_path(service: TicketsService) -> None:
    alice, agent = who(ALICE, organisation=ACME), who(AGENT, "agent")
    ticket = service.open(alice, "Help", "text", "")
    service.reply(agent, ticket.id, "first public answer", False)
    service.get(agent, ticket.id)
    listing, reading, export = customer_view(service, alice, ticket.id)

    note = service.reply(agent, ticket.id, "zanzibar: customer is difficult", True)

    after_listing, after_reading, after_export = customer_view(service, alice, ticket.id)
    # List and read, every field (updated_at included): byte for byte what they were before the note.
    assert (after_listing, after_reading) == (listing, reading)
    # Export, every table and field: only the access log grew, by a plain read of the ticket.
    before, after = {t[0]: t for t in export}, {t[0]: t for t in after_export}
    assert {n: t for n, t in after.items() if n != "access_log"} == {
        n: t for n, t in before.items() if n != "access_log"}
    columns, rows = after["access_log"][2], after["access_log"][3]
    assert [dict(zip(columns, r, strict=True))["action"] for r in rows[len(before["access_log"][3]):]] == [
        "ticket.read"]
    cells = [cell for _, _, _, table_rows in after_export for row in table_rows for cell in row]
    assert not any("zanzibar" in cell or note.id in cell for cell in cells)
    # Search: a note's words find nothing.
    assert service.page(alice, {}, "", 0, query="zanzibar").items == []
    # Events: the note's own type, which no customer-facing consumer subscribes to; its text in none.
    with service.uow() as uow:
        envelopes = [envelope_pb2.Envelope.FromString(row.data) for row in uow.session.scalars(select(Outbox))]
    assert all(b"zanzibar" not in e.SerializeToString() for e in envelopes)
    about_note = [e.type for e in envelopes if note.id.encode() in e.payload.value]
    assert about_note == ["tickets.ticket.noted"]
