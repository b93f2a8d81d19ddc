"""Text search over the tickets a caller may see (SQLite FTS5; PostgreSQL tsvector too with KASEUM_TEST_POSTGRES)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from servicekit import holds
from servicekit.db import utcnow
from servicekit.errors import InvalidArgument
from servicekit.scrub import Scrubber
from servicekit.testing import migrated_uow
from sqlalchemy import event, text
from tickets.__main__ import MIGRATIONS
from tickets.models import LegalHold, Outbox, Reply, Repository, Ticket, merge_search_index
from tickets.scopes import ResellerScopes
from tickets.service import TicketsService

from .conftest import AGENT, ALICE, BOB, FakeIdentity, who


def found(service: TicketsService, caller_id: str, query: str, role: str = "customer") -> list[str]:
    return [t.subject for t in service.page(who(caller_id, role), {}, "", 0, query=query).items]


@pytest.mark.notice("1.2")
def test_words_in_subjects_bodies_and_public_replies_are_found(service: TicketsService) -> None:
    ticket = service.open(who(ALICE), "Invoice missing", "Where is my invoice for March?", "")
    service.open(who(ALICE), "Password", "I cannot sign in", "")
    service.reply(who(AGENT, "agent"), ticket.id, "Resent via the billing portal", False)
    assert found(service, ALICE, "INVOICE") == ["Invoice missing"]
    assert found(service, ALICE, "billing portal") == ["Invoice missing"]  # every word must match
    assert found(service, ALICE, "invoice password") == []
    assert found(service, AGENT, "march", "agent") == ["Invoice missing"]
    assert found(service, BOB, "invoice") == []  # not Bob's


@pytest.mark.notice("11")
@pytest.mark.rule("R-SEC-1")
@pytest.mark.parametrize("query", ['" OR 1=1 --', "NEAR(a b)", "subject:*", "a AND", "'; DROP TABLE tickets; --"])
def test_query_syntax_never_reaches_the_database(service: TicketsService, query: str) -> None:
    service.open(who(ALICE), "Plain", "text", "")
    assert service.page(who(ALICE), {}, "", 0, query=query).items == []


@pytest.mark.notice("1.2")
def test_an_empty_or_huge_search_is_refused(service: TicketsService) -> None:
    with pytest.raises(InvalidArgument):
        service.page(who(ALICE), {}, "", 0, query="!!! ???")
    with pytest.raises(InvalidArgument):
        service.page(who(ALICE), {}, "", 0, query="word " * 100)


@pytest.mark.notice("13.1.3")
@pytest.mark.rule("R-ERASE-1")
def test_erasure_removes_the_subjects_words_from_the_index(service: TicketsService) -> None:
    mine = service.open(who(ALICE), "Zanzibar holiday", "quokka", "")
    bobs = service.open(who(BOB), "Bob's ticket", "hello", "")
    service.reply(who(ALICE), mine.id, "axolotl", False)
    service.reply(who(AGENT, "agent"), bobs.id, "answer", False)
    # Replies on someone else's ticket (as a former reseller or agent account being erased would have).
    with service.uow() as uow:
        uow.repo.add(Reply(id="r1", ticket_id=bobs.id, author_id=ALICE, body="wombat", internal=False,
                           created_at=utcnow()))
        uow.repo.flush()
        ticket = uow.repo.ticket(bobs.id)
        assert ticket is not None
        uow.repo.index_text(ticket)
        uow.commit()
    assert found(service, BOB, "wombat") == ["Bob's ticket"]
    service.erase(ALICE)
    for word in ("zanzibar", "quokka", "axolotl", "wombat"):
        assert found(service, AGENT, word, "agent") == [], word
    assert found(service, BOB, "hello") == ["Bob's ticket"]
    # Not even the index's vocabulary keeps the words (FTS5 keeps deleted terms until merged).
    with service.uow() as uow:
        if uow.session.get_bind().dialect.name == "postgresql":
            terms = set(uow.session.scalars(text("SELECT word FROM ts_stat('SELECT tsv FROM ticket_search')")))
        else:
            uow.session.execute(text("CREATE VIRTUAL TABLE temp.vocabulary USING fts5vocab(main, 'ticket_search', "
                                     "'row')"))
            terms = {row[0] for row in uow.session.execute(text("SELECT term FROM temp.vocabulary"))}
    assert "hello" in terms and not terms & {"zanzibar", "quokka", "axolotl", "wombat"}


@pytest.mark.notice("13.1.3")
@pytest.mark.rule("R-ERASE-1")
def test_an_erased_subjects_words_leave_the_index_files_in_the_scrubbers_round(
        tmp_path: Path, identity: FakeIdentity) -> None:
    """The index merge runs once per scrub round, after erasures commit (not once per erasure): until then
    FTS5's old segments may keep the words; after it, no byte of them is left in the database's files."""
    uow = migrated_uow(MIGRATIONS, f"sqlite:///{tmp_path}/tickets.db", Outbox, Repository)
    service = TicketsService(uow, "uk", ResellerScopes(identity, ttl=0))
    engine = uow.session_factory.kw["bind"]
    scrubber = Scrubber(engine)
    scrubber.also(merge_search_index)
    word = b"Zanzibarquux"
    for n in range(3):  # several segments, as a busy index has
        service.open(who(ALICE), f"{word.decode()} lamp {n}", f"My {word.decode()} flickers", "")
        service.open(who(BOB), f"Bob's ticket {n}", "other words", "")
    service.erase(ALICE)
    assert found(service, ALICE, word.decode()) == []  # gone from every query at once
    scrubber.request()
    assert scrubber.run_once()
    engine.dispose()
    files = [p for p in tmp_path.iterdir() if p.name.startswith("tickets.db")]
    # FTS5 keeps terms lower-cased: both forms are looked for.
    assert files and not [p.name for p in files if word in p.read_bytes() or word.lower() in p.read_bytes()]
    assert b"Bob's ticket" in (tmp_path / "tickets.db").read_bytes()  # the scan can see what is there


def search_rows(service: TicketsService) -> int:
    with service.uow() as uow:
        return int(uow.session.scalar(text("SELECT count(*) FROM ticket_search")) or 0)


@pytest.mark.notice("12.1", "13.1.3")
@pytest.mark.rule("R-RET-2", "R-ERASE-1")
def test_erasure_keeps_held_tickets_searchable_and_takes_the_rest_out_of_the_index(service: TicketsService) -> None:
    held = service.open(who(ALICE), "Quokka dispute", "refund", "")
    service.open(who(ALICE), "Wombat lamp", "flickers", "")
    service.reply(who(ALICE), held.id, "axolotl", False)
    bobs_held = service.open(who(BOB), "Bob's claim", "hello", "")
    bobs_free = service.open(who(BOB), "Bob's question", "goodbye", "")
    # Replies on someone else's tickets (as a former reseller or agent account being erased would have).
    with service.uow() as uow:
        for reply_id, ticket, word in (("r1", bobs_held, "numbat"), ("r2", bobs_free, "dingo")):
            uow.repo.add(Reply(id=reply_id, ticket_id=ticket.id, author_id=ALICE, body=word, internal=False,
                               created_at=utcnow()))
        uow.repo.flush()
        for ticket in (bobs_held, bobs_free):
            uow.repo.index_text(ticket)
        for hold_id, ticket in (("h1", held), ("h2", bobs_held)):
            holds.placed(uow.session, LegalHold, hold_id, "ticket", ticket.id, "litigation",
                         utcnow() + timedelta(days=90))
        uow.commit()
    erasure = service.erase(ALICE)
    assert erasure.erased == 2  # the free ticket and the reply on Bob's free one
    assert {t for t in (held.id, bobs_held.id) if any(t in what for what, _ in erasure.kept)} == {held.id, bobs_held.id}
    for word, subjects in (("quokka", ["Quokka dispute"]), ("axolotl", ["Quokka dispute"]),
                           ("numbat", ["Bob's claim"]), ("wombat", []), ("dingo", []),
                           ("goodbye", ["Bob's question"])):
        assert found(service, AGENT, word, "agent") == subjects, word
    assert search_rows(service) == 3  # one per ticket left: none orphaned, none lost
    assert service.erase(ALICE).erased == 0  # a second erasure changes nothing


@pytest.mark.notice("13.1.3")
@pytest.mark.rule("R-ERASE-1")
def test_erasing_many_tickets_takes_each_out_of_the_index(service: TicketsService) -> None:
    """More tickets than any one batch of ids (the purge's, SQLite's bound parameters) would hold."""
    with service.uow() as uow:
        for n in range(1200):
            ticket = Ticket(id=f"{n:032x}", requester_id=ALICE, subject=f"Lamp {n}", body="Zanzibar flicker",
                            product="", status="open", region="uk", priority="normal", assignee_id="",
                            organisation_id="", requester_country="GB", created_at=utcnow(), updated_at=utcnow(),
                            closed_at=None)
            uow.repo.add(ticket)
            uow.repo.flush()
            uow.repo.add(Reply(id=f"r{n:031x}", ticket_id=ticket.id, author_id=AGENT, body="answer", internal=False,
                               created_at=utcnow()))
            uow.repo.index_text(ticket)
        uow.commit()
    service.open(who(BOB), "Bob's ticket", "Zanzibar too", "")
    assert service.erase(ALICE).erased == 2400
    assert found(service, AGENT, "zanzibar", "agent") == ["Bob's ticket"]
    assert search_rows(service) == 1


@pytest.mark.notice("13.1.3")
@pytest.mark.rule("R-ERASE-1")
def test_an_erasure_runs_the_same_statements_for_one_ticket_or_many(service: TicketsService) -> None:
    """Set-based: no statement per ticket or reply (issue 7: 200 erasures at once within 2 s)."""
    for subject_id, tickets in ((ALICE, 1), (BOB, 12)):
        for n in range(tickets):
            ticket = service.open(who(subject_id), f"Ticket {n}", "text", "")
            service.reply(who(subject_id), ticket.id, "more", False)
            service.reply(who(AGENT, "agent"), ticket.id, "answer", False)
    engine = service.uow.session_factory.kw["bind"]
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert service.erase(ALICE).erased == 3
        one = len(statements)
        assert service.erase(BOB).erased == 36
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 2 * one
