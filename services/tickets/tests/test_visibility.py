"""Need to know, one table: who sees a ticket, by reading it and by listing or searching (R-SEC-1, R-SHARE-1)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from servicekit.caller import Principal
from servicekit.errors import NotFound, PermissionDenied
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
