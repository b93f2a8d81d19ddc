"""Tickets' governance: staff access is audited, legal holds survive erasure and purge, closed tickets
are purged 6 years after closure (time injected)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from servicekit import audit as audit_mod
from servicekit import chain, holds
from servicekit.db import UnitOfWorkFactory
from servicekit.errors import PermissionDenied
from servicekit.retention import Purger
from servicekit.testing import Clock, migrated_uow, person
from servicekit.transfers import TransferGate, TransferPolicy, parse_safeguards
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from tickets.__main__ import MIGRATIONS
from tickets.governance import DECLARATION, RETENTION
from tickets.models import (
    AuditLog,
    ChainHead,
    LegalHold,
    Outbox,
    PurgeRun,
    Reply,
    Repository,
    Ticket,
    TransferLog,
)
from tickets.scopes import ResellerScopes
from tickets.service import TicketsService
from tickets.visibility import Scope

from .conftest import ACME, RESELLER, FakeIdentity, who

ALICE, BOB, AGENT = "a" * 32, "b" * 32, "c" * 32
NOW = datetime(2032, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def uow(tmp_path: Path) -> UnitOfWorkFactory[Repository]:
    return migrated_uow(MIGRATIONS, f"sqlite:///{tmp_path}/t.db", Outbox, Repository)


@pytest.fixture
def service(uow: UnitOfWorkFactory[Repository], identity: FakeIdentity) -> TicketsService:
    return TicketsService(uow, "uk", ResellerScopes(identity, ttl=0))


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
    service.page(person(ALICE), {}, "", 0)
    assert audit_rows(uow) == []
    service.page(person(AGENT, "agent"), {}, "", 0)
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


@pytest.mark.notice("12.1")
@pytest.mark.rule("R-RET-2")
def test_a_release_that_overtakes_its_placement_still_wins(uow: UnitOfWorkFactory[Repository]) -> None:
    with uow() as u:
        holds.released(u.session, LegalHold, "h3", "subject", ALICE)
        holds.placed(u.session, LegalHold, "h3", "subject", ALICE, "complaint", NOW)
        u.commit()
    with uow() as u:
        assert holds.subject_holds(u.session, LegalHold, ALICE) == []


@pytest.mark.notice("12.1")
@pytest.mark.notice("12.2")
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
    # 5 tickets and their 5 replies (their search rows go with them).
    assert [(r.rule, r.purged, r.batches) for r in results if r.purged] == [("closed_tickets", 10, 3)]
    with uow() as u:
        left = set(u.session.scalars(select(Ticket.id)))
        assert left == {not_yet, still_open, held_ticket, held_subject}
        assert u.session.scalar(select(func.count()).select_from(Reply)) == 0
        assert set(u.session.scalars(text("SELECT ticket_id FROM ticket_search"))) == left
        runs = list(u.session.scalars(select(PurgeRun)))
        assert [(r.rule, r.purged) for r in runs] == [("closed_tickets", 10)]
    # Nothing more is due until time moves on: no empty run is recorded.
    assert purger.run_once()[0].purged == 0
    clock.advance(seconds=2)
    assert purger.run_once()[0].purged == 1


@pytest.mark.notice("3.2.1")
@pytest.mark.notice("3.2.2")
@pytest.mark.notice("3.2.3")
@pytest.mark.notice("3.2.4")
@pytest.mark.notice("3.2.5")
@pytest.mark.notice("3.2.6")
@pytest.mark.rule("R-RET-1")
def test_every_column_of_tickets_declares_its_category() -> None:
    assert DECLARATION.problems() == []


SAFEGUARDS = parse_safeguards({"safeguards": [{
    "reference": "IDTA-9", "type": "IDTA", "risk_assessment": "TRA-9", "recipient": "org-in", "country": "IN",
    "categories": ["ticket_content", "3.2.1", "3.2.5"], "expires": "2032-12-31"}]})


@pytest.mark.notice("5.1.1")
@pytest.mark.notice("11")
@pytest.mark.rule("R-SHARE-1")
@pytest.mark.rule("R-SEC-3")
def test_a_resellers_reads_are_audited_under_its_organisation_for_the_breach_query(
        service: TicketsService, uow: UnitOfWorkFactory[Repository], identity: FakeIdentity) -> None:
    ticket = service.open(who(ALICE, organisation=ACME), "Help", "text", "")
    identity.scopes[RESELLER] = Scope(customer_organisation_ids=frozenset({ACME}))
    reseller = who(RESELLER, "reseller", organisation="org-gb", country="GB")
    service.get(reseller, ticket.id)
    with uow() as u:
        found = audit_mod.accessed_subjects(u.session, AuditLog, audit_mod.AuditFilter(
            actor_organisation_id="org-gb", from_time=NOW - timedelta(days=3650), to_time=NOW))
    assert [a.subject_id for a in found] == [ALICE]


@pytest.mark.notice("10.1", "10.2.1", "10.2.2", "5.1.1")
@pytest.mark.rule("R-XFER-1")
def test_a_reseller_abroad_reads_only_under_a_safeguard_and_each_decision_is_logged(
        service: TicketsService, uow: UnitOfWorkFactory[Repository], identity: FakeIdentity) -> None:
    ticket = service.open(who(ALICE, organisation=ACME), "Help", "text", "")
    identity.scopes[RESELLER] = Scope(customer_organisation_ids=frozenset({ACME}))
    service.transfers = TransferGate(TransferPolicy(safeguards=SAFEGUARDS), uow.session_factory, TransferLog,
                                     ChainHead, Clock(NOW))
    with pytest.raises(PermissionDenied, match="transfer refused"):
        service.get(who(RESELLER, "reseller", organisation="org-cn", country="CN"), ticket.id)
    assert service.get(who(RESELLER, "reseller", organisation="org-in", country="IN"), ticket.id)[0].id == ticket.id
    with uow() as u:
        log = [(r.destination_country, r.recipient, r.allowed, r.subject_id)
               for r in u.session.scalars(select(TransferLog).order_by(TransferLog.seq))]
        reads = [r.actor_organisation_id for r in u.session.scalars(select(AuditLog))]
    assert log == [("CN", "org-cn", False, ALICE), ("IN", "org-in", True, ALICE)]
    assert reads == ["org-in"]  # the refused read never happened


@pytest.mark.notice("10.2.1")
@pytest.mark.notice("10.2.2")
@pytest.mark.rule("R-XFER-1")
def test_without_a_transfer_policy_a_reseller_abroad_is_refused(service: TicketsService,
                                                              identity: FakeIdentity) -> None:
    ticket = service.open(who(ALICE, organisation=ACME), "Help", "text", "")
    identity.scopes[RESELLER] = Scope(customer_organisation_ids=frozenset({ACME}))
    with pytest.raises(PermissionDenied, match="transfer refused"):
        service.get(who(RESELLER, "reseller", organisation="org-in", country="IN"), ticket.id)


@pytest.mark.notice("10.2.1")
@pytest.mark.notice("10.2.2")
@pytest.mark.rule("R-XFER-1")
def test_a_reseller_abroad_listing_logs_whose_data_crossed(
        service: TicketsService, uow: UnitOfWorkFactory[Repository], identity: FakeIdentity) -> None:
    service.open(who(ALICE, organisation=ACME), "Help", "text", "")
    service.open(who(BOB, organisation=ACME), "Also", "text", "")
    service.open(who(ALICE, organisation=ACME), "Again", "text", "")
    identity.scopes[RESELLER] = Scope(customer_organisation_ids=frozenset({ACME}))
    service.transfers = TransferGate(TransferPolicy(safeguards=SAFEGUARDS), uow.session_factory, TransferLog,
                                     ChainHead, Clock(NOW))
    with pytest.raises(PermissionDenied, match="transfer refused"):
        service.page(who(RESELLER, "reseller", organisation="org-cn", country="CN"), {}, "", 0)
    page = service.page(who(RESELLER, "reseller", organisation="org-in", country="IN"), {}, "", 2)
    assert [t.requester_id for t in page.items] == [ALICE, BOB]
    service.page(who(RESELLER, "reseller", organisation="org-in", country="IN"), {}, page.next_cursor, 2)
    with uow() as u:
        log = [(r.recipient, r.allowed, r.subject_id)
               for r in u.session.scalars(select(TransferLog).order_by(TransferLog.seq))]
        assert chain.verify(u.session, TransferLog, ChainHead).intact
    # One decision per page, logged for each subject on it (once, however many of their tickets), the
    # refused one too: the log names whose data crossed, or would have.
    assert log == [("org-cn", False, ALICE), ("org-cn", False, BOB), ("org-in", True, ALICE),
                   ("org-in", True, BOB), ("org-in", True, ALICE)]
