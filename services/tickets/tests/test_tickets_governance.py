"""Tickets' governance: staff access is audited, legal holds survive erasure and purge, closed tickets
are purged 6 years after closure (time injected)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from servicekit import chain, holds
from servicekit.db import UnitOfWorkFactory
from servicekit.retention import Purger
from servicekit.testing import Clock, migrated_uow, person
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from tickets.__main__ import MIGRATIONS
from tickets.governance import DECLARATION, RETENTION
from tickets.models import AuditLog, ChainHead, LegalHold, Outbox, PurgeRun, Reply, Repository, Ticket
from tickets.service import TicketsService

ALICE, BOB, AGENT = "a" * 32, "b" * 32, "c" * 32
NOW = datetime(2032, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def uow(tmp_path: Path) -> UnitOfWorkFactory[Repository]:
    return migrated_uow(MIGRATIONS, f"sqlite:///{tmp_path}/t.db", Outbox, Repository)


@pytest.fixture
def service(uow: UnitOfWorkFactory[Repository]) -> TicketsService:
    return TicketsService(uow, "uk")


def audit_rows(uow: UnitOfWorkFactory[Repository]) -> list[tuple[str, str, str, str]]:
    with uow() as u:
        return [(r.actor_id, r.subject_id, r.action, r.resource_id)
                for r in u.session.scalars(select(AuditLog).order_by(AuditLog.seq))]


def hold(uow: UnitOfWorkFactory[Repository], hold_id: str, scope: str, target: str) -> None:
    with uow() as u:
        holds.placed(u.session, LegalHold, hold_id, scope, target, "litigation", NOW + timedelta(days=90))
        u.commit()


def close(uow: UnitOfWorkFactory[Repository], ticket_id: str, at: datetime) -> None:
    with uow() as u:
        ticket = u.session.get(Ticket, ticket_id)
        assert ticket is not None
        ticket.status, ticket.closed_at = "closed", at
        u.commit()


@pytest.mark.notice("11")
@pytest.mark.rule("R-SEC-1")
def test_every_staff_access_to_a_ticket_is_audited_and_the_customers_own_are_not(
        service: TicketsService, uow: UnitOfWorkFactory[Repository]) -> None:
    ticket = service.open(person(ALICE), "Help", "text", "")
    service.get(person(ALICE), ticket.id)
    service.page(person(ALICE), "", "", 0)
    assert audit_rows(uow) == []
    service.page(person(AGENT, "agent"), "", "", 0)
    service.get(person(AGENT, "agent"), ticket.id)
    service.reply(person(AGENT, "agent"), ticket.id, "on it", False)
    assert audit_rows(uow) == [(AGENT, ALICE, "ticket.listed", ticket.id), (AGENT, ALICE, "ticket.read", ticket.id),
                               (AGENT, ALICE, "ticket.replied", ticket.id)]
    with uow() as u:
        assert chain.verify(u.session, AuditLog, ChainHead).intact
    exported = {name: (columns, rows) for name, _, columns, rows in service.export(ALICE).tables}
    columns, rows = exported["access_log"]
    assert [dict(zip(columns, row, strict=True))["actor_role"] for row in rows] == ["agent"] * 3
    assert AGENT not in str(rows)


@pytest.mark.rule("R-SEC-1")
def test_the_tickets_audit_log_is_append_only_in_the_database(service: TicketsService,
                                                             uow: UnitOfWorkFactory[Repository]) -> None:
    ticket = service.open(person(ALICE), "Help", "text", "")
    service.get(person(AGENT, "agent"), ticket.id)
    with uow() as u, pytest.raises(DBAPIError, match="append-only"):
        u.session.execute(text("DELETE FROM audit_log"))


@pytest.mark.notice("12.1")
@pytest.mark.rule("R-RET-2")
@pytest.mark.rule("R-ERASE-1")
def test_erasure_keeps_a_held_ticket_and_says_why(service: TicketsService, uow: UnitOfWorkFactory[Repository]
                                                 ) -> None:
    held = service.open(person(ALICE), "Dispute", "text", "")
    free = service.open(person(ALICE), "Other", "text", "")
    service.reply(person(AGENT, "agent"), held.id, "answer", False)
    hold(uow, "h1", "ticket", held.id)
    erasure = service.erase(ALICE)
    assert erasure.erased == 1  # the free ticket; the held one and its reply stay
    assert any(held.id in what and "legal hold h1 (litigation" in why for what, why in erasure.kept)
    assert service.get(person(AGENT, "agent"), held.id)[1][0].body == "answer"
    with pytest.raises(Exception, match="not found"):
        service.get(person(AGENT, "agent"), free.id)


@pytest.mark.notice("12.1")
@pytest.mark.rule("R-RET-2")
def test_a_hold_on_the_subject_keeps_everything_until_released(service: TicketsService,
                                                               uow: UnitOfWorkFactory[Repository]) -> None:
    ticket = service.open(person(ALICE), "Complaint", "text", "")
    hold(uow, "h2", "subject", ALICE)
    erasure = service.erase(ALICE)
    assert erasure.erased == 0 and "legal hold h2" in erasure.kept[0][1]
    with uow() as u:
        holds.released(u.session, LegalHold, "h2", "subject", ALICE)
        u.commit()
    assert service.erase(ALICE).erased == 1
    with pytest.raises(Exception, match="not found"):
        service.get(person(AGENT, "agent"), ticket.id)


def test_a_release_that_overtakes_its_placement_still_wins(uow: UnitOfWorkFactory[Repository]) -> None:
    with uow() as u:
        holds.released(u.session, LegalHold, "h3", "subject", ALICE)
        holds.placed(u.session, LegalHold, "h3", "subject", ALICE, "complaint", NOW)
        u.commit()
    with uow() as u:
        assert holds.active_holds(u.session, LegalHold, [ALICE]) == []


@pytest.mark.notice("12")
@pytest.mark.rule("R-RET-1")
@pytest.mark.rule("R-RET-2")
def test_purge_removes_exactly_the_closed_tickets_past_six_years_and_nothing_held(
        service: TicketsService, uow: UnitOfWorkFactory[Repository]) -> None:
    six_years_ago = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    due = [service.open(person(ALICE), f"old {i}", "text", "").id for i in range(5)]
    for tid in due:
        service.reply(person(AGENT, "agent"), tid, "answer", False)
        close(uow, tid, six_years_ago - timedelta(seconds=1))
    not_yet = service.open(person(ALICE), "recent", "text", "").id
    close(uow, not_yet, six_years_ago + timedelta(seconds=1))
    still_open = service.open(person(ALICE), "open", "text", "").id
    held_ticket = service.open(person(ALICE), "held", "text", "").id
    held_subject = service.open(person(BOB), "bob's", "text", "").id
    for tid in (held_ticket, held_subject):
        close(uow, tid, six_years_ago - timedelta(days=400))
    hold(uow, "h4", "ticket", held_ticket)
    hold(uow, "h5", "subject", BOB)

    clock = Clock(NOW)
    purger = Purger(RETENTION, uow.session_factory, PurgeRun, clock, batch_size=2)
    results = purger.run_once()
    assert [(r.rule, r.purged, r.batches) for r in results] == [("closed_tickets", 10, 3)]
    with uow() as u:
        left = set(u.session.scalars(select(Ticket.id)))
        assert left == {not_yet, still_open, held_ticket, held_subject}
        assert u.session.scalar(select(func.count()).select_from(Reply)) == 0
        runs = list(u.session.scalars(select(PurgeRun)))
        assert [(r.rule, r.purged, r.batches) for r in runs] == [("closed_tickets", 10, 3)]
    # Nothing more is due until time moves on: no empty run is recorded.
    assert purger.run_once()[0].purged == 0
    clock.advance(seconds=2)
    assert purger.run_once()[0].purged == 1


def test_every_column_of_tickets_declares_its_category() -> None:
    assert DECLARATION.problems() == []
