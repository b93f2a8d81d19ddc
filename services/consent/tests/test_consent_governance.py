"""Consent's governance: every column declared, the retention purge (time injected) removes exactly what
is due and nothing held, Erase honours legal holds, staff access is on the audit trail and in the export."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from consent.campaigns import queued
from consent.governance import DECLARATION, RETENTION
from consent.models import AuditLog, Base, Campaign, ChainHead, LegalHold, OutgoingMessage, PurgeRun
from dateutil.relativedelta import relativedelta
from servicekit import chain, holds
from servicekit.caller import Principal
from servicekit.declarations import undeclared
from servicekit.errors import PermissionDenied
from servicekit.retention import Purger
from servicekit.testing import Clock, person
from sqlalchemy import select

from .conftest import World
from .test_rules import ADMIN, BOB, DPO
from .test_sending import ADA, sign_up

CAROL = "c" * 32
RIGHTS = Principal("service", "rights", "service")


def hold(world: World, hold_id: str, subject: str) -> None:
    with world.uow() as uow:
        holds.placed(uow.session, LegalHold, hold_id, "subject", subject, "litigation",
                     world.clock() + timedelta(days=90))
        uow.commit()


def messages(world: World) -> set[tuple[str, str]]:
    """(subject, campaign id) of every message row left."""
    with world.uow() as uow:
        return {(m.subject_id, m.campaign_id) for m in uow.session.scalars(select(OutgoingMessage))}


def audit_rows(world: World) -> list[tuple[str, str, str, str, str]]:
    with world.uow() as uow:
        return [(r.actor_kind, r.actor_role, r.subject_id, r.action, r.purpose)
                for r in uow.session.scalars(select(AuditLog).order_by(AuditLog.seq))]


@pytest.mark.notice("3.2.1", "3.2.2", "3.2.4", "3.2.6", "12.1", "12.2")
@pytest.mark.rule("R-DATA-1", "R-PURPOSE-1", "R-RET-1")
def test_every_column_of_consent_declares_its_category_and_every_category_a_purpose_and_a_rule() -> None:
    assert undeclared(Base.metadata) == []
    assert DECLARATION.problems() == []
    rules = {r.name: r for r in RETENTION}
    assert rules["communications"].period == "2 years" and rules["communications"].purge is not None
    assert rules["consent_ledger_after_closure"].period == "6 years"
    # Kept indefinitely, on purpose: the suppression list is what stops marketing from resuming.
    assert rules["suppression_list"].purge is None and rules["suppression_list"].period == "while the trigger lasts"


@pytest.mark.notice("12.1", "12.2")
@pytest.mark.rule("R-RET-1", "R-RET-2")
def test_purge_removes_exactly_the_communications_past_two_years_and_nothing_held(world: World) -> None:
    start = world.clock()
    sign_up(world, email=True)
    sign_up(world, CAROL, "carol@example.com")
    first = world.campaigns.send(ADMIN, "A", "Buy", "email", "marketing", "").id  # to Ada only
    with world.uow() as uow:  # a message still being retried is never purged, however old
        uow.repo.enqueue_many([{**queued("p" * 32, "e:old", CAROL, "ticket_update", "service", "email", "", "t1",
                                         start), "next_attempt_at": start + relativedelta(years=5)}])
        uow.commit()
    world.sender.drain()
    world.clock.advance(minutes=1)
    sign_up(world, BOB, "bob@example.com", email=True)
    second = world.campaigns.send(ADMIN, "B", "Buy", "email", "marketing", "").id  # to Ada and Bob
    world.sender.drain()
    world.clock.now = start + relativedelta(months=23)
    third = world.campaigns.send(ADMIN, "C", "Buy", "email", "marketing", "").id
    world.sender.drain()
    hold(world, "h1", BOB)
    assert len(world.mailbox.messages()) == 5

    clock = Clock(start + relativedelta(months=24) + timedelta(minutes=2))
    purger = Purger(RETENTION, world.uow.session_factory, PurgeRun, clock, batch_size=1)
    results = {r.rule: r.purged for r in purger.run_once() if r.purged}
    assert results == {"communications": 2, "campaigns": 1}
    assert messages(world) == {(CAROL, ""), (BOB, second), (ADA, third), (BOB, third)}
    with world.uow() as uow:
        # The first campaign went with its last message; the second stays while Bob's (held) refers to it.
        assert set(uow.session.scalars(select(Campaign.id))) == {second, third}
        assert {(r.rule, r.purged) for r in uow.session.scalars(select(PurgeRun))} == {
            ("communications", 2), ("campaigns", 1)}
    # Nothing more is due until time moves on.
    assert sum(r.purged for r in purger.run_once()) == 0
    assert first not in {c for _, c in messages(world)}


@pytest.mark.notice("12.1", "13.1.3")
@pytest.mark.rule("R-RET-2", "R-ERASE-1", "R-MKT-6")
def test_erase_under_a_legal_hold_keeps_everything_says_why_and_stops_marketing(world: World) -> None:
    sign_up(world, email=True)
    hold(world, "h2", ADA)
    erasure = world.consent.erase(ADA)
    assert erasure.erased == 0
    kept = dict(erasure.kept)
    assert "legal hold h2 (litigation" in kept["preferences, consent ledger and communications"]
    assert "suppression_list" in kept and "access_log" in kept
    tables = {name: rows for name, _, _, rows in world.consent.export(ADA).tables}
    assert tables["preferences"] and len(tables["consent_ledger"]) == 3
    # Stored for the claim only: no marketing while it is kept.
    assert world.consent.can_contact(ADA, "email", "marketing").reason == "restricted"
    assert world.consent.verify_ledger(ADA) == (None, 3)
    with world.uow() as uow:
        holds.released(uow.session, LegalHold, "h2", "subject", ADA)
        uow.commit()
    assert world.consent.erase(ADA).erased > 0
    assert world.consent.can_contact(ADA, "email", "service").reason == "unknown_subject"


@pytest.mark.notice("11", "8.1")
@pytest.mark.rule("R-SEC-1", "R-ACCESS-1")
def test_staff_and_services_changing_or_checking_a_subjects_consent_are_audited_and_exported(world: World) -> None:
    sign_up(world, email=True, telephone=True)
    world.consent.update(person(ADA), {"third_party": True}, "preference_page")  # the subject's own: not audited
    world.consent.get(person(ADA))
    assert audit_rows(world) == []
    world.consent.record_opt_out(DPO, ADA, ["email"], False, "dpo_email")
    world.consent.record_opt_out(RIGHTS, ADA, [], True, "rights_request")
    with pytest.raises(PermissionDenied):
        world.consent.verify_ledger(ADA, person(BOB))
    assert world.consent.verify_ledger(ADA, DPO) == (None, 6)
    assert audit_rows(world) == [
        ("person", "dpo", ADA, "consent.opt_out_recorded", "4.1.5"),
        ("service", "service", ADA, "consent.objection_recorded", "4.1.5"),
        ("person", "dpo", ADA, "consent.ledger_verified", "4.1.3"),
    ]
    with world.uow() as uow:
        assert chain.verify(uow.session, AuditLog, ChainHead).intact
    exported = {name: (columns, rows) for name, _, columns, rows in world.consent.export(ADA).tables}
    columns, rows = exported["access_log"]
    assert [dict(zip(columns, row, strict=True))["action"] for row in rows] == [
        "consent.opt_out_recorded", "consent.objection_recorded", "consent.ledger_verified"]
    assert DPO.subject_id not in str(rows)  # the staff member's own id is theirs, not the subject's


def test_audit_times_come_from_the_injected_clock(world: World) -> None:
    sign_up(world, email=True)
    world.clock.now = datetime(2031, 1, 2, 3, 4, tzinfo=world.clock().tzinfo)
    world.consent.record_opt_out(DPO, ADA, ["email"], False, "dpo_email")
    with world.uow() as uow:
        [row] = uow.session.scalars(select(AuditLog))
        assert row.at.replace(tzinfo=None) == datetime(2031, 1, 2, 3, 4)
