"""Rectification (Art. 16): a subject corrects the words they wrote on tickets; nothing else is touched,
and nothing asked for is dropped without a reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from kaseum.events.v1 import envelope_pb2
from kaseum.events.v1 import tickets_events_pb2 as ev
from servicekit import holds
from servicekit.testing import person
from sqlalchemy import select
from tickets.models import LegalHold, Outbox
from tickets.service import ACCESS_LOG_IS_FACT, NOT_RECTIFIABLE, NOT_THEIRS, TicketsService

from .conftest import AGENT, ALICE, BOB

pytestmark = [pytest.mark.notice("13.1.2"), pytest.mark.rule("R-RECT-1")]


def found(service: TicketsService, query: str) -> list[str]:
    return [t.id for t in service.page(person(AGENT, "agent"), {}, "", 0, query).items]


def rectified_events(service: TicketsService) -> list[ev.TicketRectified]:
    events = []
    with service.uow() as uow:
        for row in uow.session.scalars(select(Outbox).order_by(Outbox.created_at)):
            env = envelope_pb2.Envelope.FromString(row.data)
            if env.type == "tickets.ticket.rectified":
                event = ev.TicketRectified()
                env.payload.Unpack(event)
                events.append(event)
    return events


def test_the_author_corrects_a_tickets_subject_and_body_and_their_reply(service: TicketsService) -> None:
    ticket = service.open(person(ALICE), "Invoice for Smithe", "My name is Smithe", "")
    reply = service.reply(person(ALICE), ticket.id, "Smithe again", False)
    answer = service.reply(person(AGENT, "agent"), ticket.id, "Dear customer", False)
    before = service.get(person(ALICE), ticket.id)[0].updated_at

    result = service.rectify(ALICE, {f"ticket:{ticket.id}:subject": "Invoice for Smith",
                                     f"ticket:{ticket.id}:body": "My name is Smith",
                                     f"reply:{reply.id}:body": "Smith again"})

    assert sorted(result.applied) == sorted([f"ticket:{ticket.id}:subject", f"ticket:{ticket.id}:body",
                                             f"reply:{reply.id}:body"]) and result.rejected == []
    seen, replies = service.get(person(ALICE), ticket.id)
    assert (seen.subject, seen.body) == ("Invoice for Smith", "My name is Smith")
    # The agent's words are the agent's: the customer's rectification does not rewrite them.
    assert [r.body for r in replies] == ["Smith again", "Dear customer"] and replies[1].id == answer.id
    assert seen.updated_at > before
    # The old words leave the search index; the new ones are found.
    assert found(service, "smithe") == []
    assert found(service, "invoice smith") == [ticket.id] and found(service, "dear customer") == [ticket.id]
    # Recipients who saw the text are told which fields changed (Art. 19), never the text.
    [event] = rectified_events(service)
    assert (event.ticket_id, event.requester_id, event.author_id) == (ticket.id, ALICE, ALICE)
    assert sorted(event.fields) == ["body", "subject"] and list(event.reply_ids) == [reply.id]
    assert b"Smith" not in event.SerializeToString()


def test_an_agent_corrects_their_own_reply_but_no_one_elses_words(service: TicketsService) -> None:
    ticket = service.open(person(ALICE), "Help", "text", "")
    answer = service.reply(person(AGENT, "agent"), ticket.id, "Wrong advice", False)
    result = service.rectify(AGENT, {f"reply:{answer.id}:body": "Right advice",
                                     f"ticket:{ticket.id}:body": "not mine to change"})
    assert result.applied == [f"reply:{answer.id}:body"]
    assert result.rejected == [(f"ticket:{ticket.id}:body", NOT_THEIRS)]
    seen, replies = service.get(person(ALICE), ticket.id)
    assert seen.body == "text" and [r.body for r in replies] == ["Right advice"]


def test_anything_else_is_refused_with_its_reason(service: TicketsService) -> None:
    mine = service.open(person(ALICE), "Help", "text", "")
    bobs = service.open(person(BOB), "Bob's", "bob's text", "")
    bob_reply = service.reply(person(BOB), bobs.id, "bob's reply", False)
    service.get(person(AGENT, "agent"), mine.id)  # an access-log row about Alice
    result = service.rectify(ALICE, {
        f"ticket:{bobs.id}:subject": "taken over",      # someone else's ticket
        f"reply:{bob_reply.id}:body": "taken over",     # someone else's reply
        "ticket:nope:subject": "x",                     # no such ticket
        f"ticket:{mine.id}:status": "closed",           # not the author's words
        f"ticket:{mine.id}:subject": "   ",             # empty
        f"ticket:{mine.id}:body": "x" * 20_001,         # too long
        "email": "a@example.com",                       # identity's field
        "access_log": "I never read that",
        f"access_log:{mine.id}": "nor that",
    })
    assert result.applied == []
    assert dict(result.rejected) == {
        f"ticket:{bobs.id}:subject": NOT_THEIRS, f"reply:{bob_reply.id}:body": NOT_THEIRS,
        "ticket:nope:subject": NOT_THEIRS, f"ticket:{mine.id}:status": NOT_RECTIFIABLE,
        f"ticket:{mine.id}:subject": "subject is required",
        f"ticket:{mine.id}:body": "body must be at most 20000 characters",
        "email": NOT_RECTIFIABLE, "access_log": ACCESS_LOG_IS_FACT, f"access_log:{mine.id}": ACCESS_LOG_IS_FACT}
    assert len(result.rejected) == 9  # each refusal once, none silently dropped
    # Nothing changed: not Bob's words, not Alice's, not the access log.
    assert (service.get(person(BOB), bobs.id)[0].subject, service.get(person(BOB), bobs.id)[1][0].body) == (
        "Bob's", "bob's reply")
    assert service.get(person(ALICE), mine.id)[0].body == "text"
    log = {name: rows for name, _, _, rows in service.export(ALICE).tables}["access_log"]
    assert len(log) == 1
    assert rectified_events(service) == []


@pytest.mark.notice("12.1")
@pytest.mark.rule("R-RET-2")
def test_a_held_ticket_is_kept_as_it_was(service: TicketsService) -> None:
    held = service.open(person(ALICE), "Dispute", "what I said then", "")
    free = service.open(person(ALICE), "Other", "typo", "")
    with service.uow() as uow:
        holds.placed(uow.session, LegalHold, "h1", "ticket", held.id, "litigation",
                     datetime.now(UTC) + timedelta(days=30))
        uow.commit()
    result = service.rectify(ALICE, {f"ticket:{held.id}:body": "what I meant", f"ticket:{free.id}:body": "fixed"})
    assert result.applied == [f"ticket:{free.id}:body"]
    [(name, why)] = result.rejected
    assert name == f"ticket:{held.id}:body" and "legal hold" in why
    assert service.get(person(ALICE), held.id)[0].body == "what I said then"


@pytest.mark.rule("R-RESTRICT-1")
def test_a_restricted_subject_may_still_correct_their_words(service: TicketsService) -> None:
    # Contesting accuracy is a reason to restrict (Art. 18(1)(a)); the correction must still go through.
    ticket = service.open(person(ALICE), "Help", "wrong", "")
    service.set_restricted(ALICE, True)
    assert service.rectify(ALICE, {f"ticket:{ticket.id}:body": "right"}).applied == [f"ticket:{ticket.id}:body"]
    assert service.get(person(ALICE), ticket.id)[0].body == "right"


def test_correcting_an_internal_note_does_not_move_what_the_customer_sees(service: TicketsService) -> None:
    ticket = service.open(person(ALICE), "Help", "text", "")
    note = service.reply(person(AGENT, "agent"), ticket.id, "customer seems confused", True)
    before = service.get(person(ALICE), ticket.id)[0].updated_at
    assert service.rectify(AGENT, {f"reply:{note.id}:body": "clarify the invoice"}).applied
    assert service.get(person(ALICE), ticket.id)[0].updated_at == before
    assert found(service, "clarify") == []  # notes are never indexed
