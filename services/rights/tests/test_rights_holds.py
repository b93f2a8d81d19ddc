"""Legal holds: the DPO places and releases them, each change is audited and announced (ids only),
other services' projections follow the events, and rights' own purge honours them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from kaseum.events.v1 import envelope_pb2
from kaseum.events.v1 import rights_events_pb2 as ev
from rights.governance import DECLARATION, RETENTION
from rights.holds import HoldRules
from rights.models import AuditLog, ChainHead, Outbox, PurgeRun, Repository, RightsRequest
from rights.service import RightsService
from servicekit import chain
from servicekit.caller import Principal
from servicekit.db import UnitOfWorkFactory, as_utc
from servicekit.errors import InvalidArgument, NotFound, PermissionDenied, WrongRegion
from servicekit.holds import handlers, subject_holds
from servicekit.retention import Purger
from servicekit.testing import Clock, migrated_uow
from sqlalchemy import select
from tickets.__main__ import MIGRATIONS as TICKETS_MIGRATIONS
from tickets.models import LegalHold as TicketsHold
from tickets.models import Outbox as TicketsOutbox
from tickets.models import Repository as TicketsRepository

SUBJECT = "5" * 32
CLI = Principal("service", "cli", "service")


@pytest.fixture
def holds(uow: UnitOfWorkFactory[Repository], clock: Clock) -> HoldRules:
    return HoldRules(uow, "uk", clock)


def events(uow: UnitOfWorkFactory[Repository]) -> list[envelope_pb2.Envelope]:
    with uow() as u:
        rows = u.session.scalars(select(Outbox).order_by(Outbox.created_at))
        return [envelope_pb2.Envelope.FromString(r.data) for r in rows]


@pytest.mark.notice("12.1")
@pytest.mark.rule("R-RET-2")
def test_the_dpo_places_and_releases_a_hold_and_each_change_is_audited_and_announced(
        holds: HoldRules, uow: UnitOfWorkFactory[Repository], clock: Clock, person: Callable[..., Principal]) -> None:
    dpo = person("dpo")
    hold = holds.place(dpo, "subject", SUBJECT, "complaint", "ICO complaint ref 123", clock.now + timedelta(days=90))
    assert [h.hold_id for h in holds.list(dpo, False, "")] == [hold.hold_id]
    released = holds.release(dpo, hold.hold_id)
    assert released.released_at is not None and released.released_by == dpo.subject_id
    again = holds.release(dpo, hold.hold_id).released_at  # twice: no change
    assert again is not None and as_utc(again) == as_utc(released.released_at)
    assert holds.list(dpo, False, "") == [] and len(holds.list(dpo, True, SUBJECT)) == 1
    published = events(uow)
    assert [e.type for e in published] == ["rights.hold.placed", "rights.hold.released"]
    placed = ev.HoldPlaced()
    published[0].payload.Unpack(placed)
    assert (placed.scope, placed.target_id, placed.reason_code) == ("subject", SUBJECT, "complaint")
    assert "ICO" not in str(published)  # the note stays in rights
    with uow() as u:
        actions = [(r.action, r.subject_id) for r in u.session.scalars(select(AuditLog).order_by(AuditLog.seq))]
        assert chain.verify(u.session, AuditLog, ChainHead).intact
    assert actions == [("hold.placed", SUBJECT), ("holds.listed", ""), ("hold.released", SUBJECT),
                       ("holds.listed", ""), ("holds.listed", SUBJECT)]


@pytest.mark.rule("R-SEC-1")
@pytest.mark.parametrize("role", ["customer", "agent", "reseller", "analyst", "admin"])
def test_only_the_dpo_or_the_operator_cli_manages_holds(holds: HoldRules, clock: Clock, role: str,
                                                       person: Callable[..., Principal]) -> None:
    review = clock.now + timedelta(days=30)
    with pytest.raises(PermissionDenied):
        holds.place(person(role), "subject", SUBJECT, "complaint", "", review)
    with pytest.raises(PermissionDenied):
        holds.list(person(role), True, "")
    with pytest.raises(PermissionDenied):
        holds.place(Principal("service", "tickets", "service"), "subject", SUBJECT, "complaint", "", review)
    with pytest.raises(WrongRegion):
        holds.place(person("dpo", region="eu"), "subject", SUBJECT, "complaint", "", review)
    assert holds.place(CLI, "ticket", "t" * 32, "litigation", "", review).placed_by == "cli"


@pytest.mark.parametrize(("scope", "target", "reason", "days"), [
    ("account", SUBJECT, "complaint", 30), ("subject", "", "complaint", 30), ("subject", "x" * 40, "complaint", 30),
    ("subject", "a b", "complaint", 30), ("subject", "é" * 4, "complaint", 30), ("subject", SUBJECT, "because", 30),
    ("subject", SUBJECT, "complaint", 0),
])
def test_bad_holds_are_refused(holds: HoldRules, clock: Clock, person: Callable[..., Principal], scope: str,
                               target: str, reason: str, days: int) -> None:
    with pytest.raises(InvalidArgument):
        holds.place(person("dpo"), scope, target, reason, "", clock.now + timedelta(days=days))


def test_releasing_an_unknown_hold_is_not_found(holds: HoldRules, person: Callable[..., Principal]) -> None:
    with pytest.raises(NotFound):
        holds.release(person("dpo"), "0" * 32)


@pytest.mark.notice("12.1")
@pytest.mark.rule("R-RET-2")
def test_another_services_projection_follows_the_published_events(
        holds: HoldRules, uow: UnitOfWorkFactory[Repository], clock: Clock, tmp_path: Path,
        person: Callable[..., Principal]) -> None:
    tickets = migrated_uow(TICKETS_MIGRATIONS, f"sqlite:///{tmp_path}/tickets.db", TicketsOutbox, TicketsRepository)
    dpo = person("dpo")
    hold = holds.place(dpo, "subject", SUBJECT, "litigation", "", clock.now + timedelta(days=90))
    apply = handlers(TicketsHold)
    for env in events(uow) * 2:  # a redelivery changes nothing
        with tickets() as t:
            apply[env.type](t, env)
            t.commit()
    with tickets() as t:
        assert [h.hold_id for h in subject_holds(t.session, TicketsHold, SUBJECT)] == [hold.hold_id]
    holds.release(dpo, hold.hold_id)
    for env in events(uow)[1:]:
        with tickets() as t:
            apply[env.type](t, env)
            t.commit()
    with tickets() as t:
        assert subject_holds(t.session, TicketsHold, SUBJECT) == []


@pytest.mark.notice("12.1")
@pytest.mark.notice("12.2")
@pytest.mark.rule("R-RET-1")
@pytest.mark.rule("R-RET-2")
def test_completed_requests_are_purged_six_years_after_completion_unless_held(
        service: RightsService, holds: HoldRules, uow: UnitOfWorkFactory[Repository], clock: Clock,
        person: Callable[..., Principal]) -> None:
    customers = [person() for _ in range(4)]
    filed = [service.file_request(c, "access", "") for c in customers]
    with uow() as u:
        for i, request in enumerate(filed):
            row = u.session.get(RightsRequest, request.id)
            assert row is not None
            row.status = "completed"
            row.completed_at = clock.now + timedelta(days=i)  # completed on days 0, 1, 2, 3
        u.commit()
    holds.place(person("dpo"), "subject", customers[0].subject_id, "litigation", "", clock.now + timedelta(days=9999))
    clock.advance(days=365 * 6 + 2 + 1)  # six years (two leap days) and a day: days 0 and 1 are due
    purger = Purger(RETENTION, uow.session_factory, PurgeRun, clock)
    assert {r.rule: r.purged for r in purger.run_once() if r.purged} == {"completed_requests": 1}
    with uow() as u:
        left = set(u.session.scalars(select(RightsRequest.id)))
    assert left == {filed[0].id, filed[2].id, filed[3].id}  # filed[0] is held; 2 and 3 are not yet due


def test_every_column_of_rights_declares_its_category() -> None:
    assert DECLARATION.problems() == []
