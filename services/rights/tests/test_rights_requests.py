"""Filing, listing and reading rights requests (N §13.1, §13.2; R-RIGHTS-1, R-RIGHTS-2)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from kaseum.events.v1 import envelope_pb2
from kaseum.events.v1 import rights_events_pb2 as ev
from rights.models import Outbox, Repository, RightsRequest
from rights.service import KINDS, MAX_DETAILS, RightsService
from servicekit.db import UnitOfWorkFactory
from servicekit.errors import InvalidArgument, NotFound, PermissionDenied, WrongRegion
from sqlalchemy import select

STAFF_BUT_DPO = ("agent", "analyst", "reseller", "admin")


def outbox_events(uow: UnitOfWorkFactory[Repository]) -> list[envelope_pb2.Envelope]:
    with uow() as u:
        rows = u.session.scalars(select(Outbox).order_by(Outbox.created_at)).all()
    envelopes = []
    for row in rows:
        env = envelope_pb2.Envelope()
        env.ParseFromString(row.data)
        envelopes.append(env)
    return envelopes


def close(uow: UnitOfWorkFactory[Repository], request_id: str, status: str = "completed") -> None:
    with uow() as u:
        row = u.repo.request(request_id)
        assert row is not None
        row.status = status
        u.commit()


# --- filing ------------------------------------------------------------------------

@pytest.mark.rule("R-RIGHTS-1")
@pytest.mark.notice("13.2")
@pytest.mark.parametrize("kind", [
    pytest.param("access", marks=pytest.mark.notice("13.1.1")),
    pytest.param("rectification", marks=pytest.mark.notice("13.1.2")),
    pytest.param("erasure", marks=pytest.mark.notice("13.1.3")),
    pytest.param("objection", marks=pytest.mark.notice("13.1.4")),
    pytest.param("restriction", marks=pytest.mark.notice("13.1.5")),
    pytest.param("portability", marks=pytest.mark.notice("13.1.6")),
    pytest.param("withdraw_consent", marks=pytest.mark.notice("13.1.7")),
])
def test_a_customer_can_file_every_kind_of_request(
        person: Any, service: RightsService, uow: UnitOfWorkFactory[Repository],
        kind: str) -> None:
    customer = person()
    fixes = {"last_name": "Byron"} if kind == "rectification" else None
    filed = service.file_request(customer, kind, "please", corrections=fixes)
    # Filed from a signed-in session: verified by it, so the work starts at once (R-RIGHTS-1).
    assert (filed.kind, filed.status, filed.subject_id, filed.region) == (kind, "in_progress",
                                                                         customer.subject_id, "uk")
    stored = service.get_request(customer, filed.id)
    assert stored.details == "please"
    assert stored.steps and all(s.status == "pending" for s in stored.steps)
    received, changed = outbox_events(uow)
    assert (received.type, received.subject_id, received.region) == ("rights.request.received",
                                                                     customer.subject_id, "uk")
    assert changed.type == "rights.request.status_changed"
    event = ev.RequestReceived()
    assert received.payload.Unpack(event)
    assert (event.request_id, event.kind, event.subject_id) == (filed.id, kind, customer.subject_id)
    assert event.due_at.ToDatetime(tzinfo=UTC) == datetime(2025, 2, 28, 9, 30, tzinfo=UTC)


@pytest.mark.rule("R-RIGHTS-2")
def test_the_clock_starts_on_receipt(person: Any, service: RightsService) -> None:
    filed = service.file_request(person(), "access", "")
    assert filed.received_at == datetime(2025, 1, 31, 9, 30, tzinfo=UTC)
    assert filed.due_at == datetime(2025, 2, 28, 9, 30, tzinfo=UTC)


def test_the_seven_kinds_are_those_of_the_notice() -> None:
    assert set(KINDS) == {"access", "rectification", "erasure", "objection", "restriction", "portability",
                          "withdraw_consent"}


@pytest.mark.parametrize("kind", ["", "delete", "ACCESS", "complaint"])
def test_an_unknown_kind_is_refused(person: Any, service: RightsService, kind: str) -> None:
    with pytest.raises(InvalidArgument):
        service.file_request(person(), kind, "")


def test_details_are_limited_to_5000_characters(person: Any, service: RightsService) -> None:
    assert len(service.file_request(person(), "access", "x" * MAX_DETAILS).details) == MAX_DETAILS
    with pytest.raises(InvalidArgument):
        service.file_request(person(), "access", "x" * (MAX_DETAILS + 1))


@pytest.mark.parametrize("role", ["dpo", *STAFF_BUT_DPO])
def test_only_customers_file_requests(person: Any, service: RightsService, role: str) -> None:
    with pytest.raises(PermissionDenied):
        service.file_request(person(role), "access", "")


def test_a_second_open_request_of_the_same_kind_is_the_same_request(
        person: Any, service: RightsService, uow: UnitOfWorkFactory[Repository], clock: Any) -> None:
    customer = person()
    first = service.file_request(customer, "erasure", "all of it")
    clock.advance(days=3)
    again = service.file_request(customer, "erasure", "really, all of it")
    assert again.id == first.id
    assert again.due_at == first.due_at  # asking again does not move the deadline
    other_kind = service.file_request(customer, "access", "")
    assert other_kind.id != first.id
    assert [e.type for e in outbox_events(uow)].count("rights.request.received") == 2
    assert len(service.list_requests(customer).items) == 2


def test_once_closed_the_same_kind_can_be_filed_again(person: Any, service: RightsService,
                                                       uow: UnitOfWorkFactory[Repository]) -> None:
    customer = person()
    first = service.file_request(customer, "access", "")
    close(uow, first.id)
    assert service.file_request(customer, "access", "").id != first.id


def test_the_database_refuses_a_duplicate_that_slips_past_the_check(uow: UnitOfWorkFactory[Repository]) -> None:
    # Two racing filings both pass the open-request check; the partial unique index stops the second.
    def row(request_id: str) -> RightsRequest:
        now = datetime(2025, 1, 1, tzinfo=UTC)
        return RightsRequest(id=request_id, subject_id="s1", kind="access", details="", status="received",
                             received_at=now, due_at=now, completed_at=None, region="uk")

    with uow() as u:
        assert u.repo.insert_unless_duplicate(row("a"))
        u.commit()
    with uow() as u:
        assert not u.repo.insert_unless_duplicate(row("b"))


# --- reading -------------------------------------------------------------------------

def test_a_customer_sees_only_their_own_requests(person: Any, service: RightsService) -> None:
    alice, bob = person(), person()
    mine = service.file_request(alice, "access", "")
    service.file_request(bob, "access", "")
    assert [r.id for r in service.list_requests(alice).items] == [mine.id]


def test_another_customer_gets_not_found_for_someone_elses_request(person: Any, service: RightsService) -> None:
    filed = service.file_request(person(), "erasure", "")
    with pytest.raises(NotFound) as theirs:
        service.get_request(person(), filed.id)
    with pytest.raises(NotFound) as missing:
        service.get_request(person(), "0" * 32)
    assert theirs.value.message == missing.value.message  # existence is not revealed


def test_the_dpo_sees_every_request(person: Any, service: RightsService) -> None:
    filed = [service.file_request(person(), "access", "") for _ in range(3)]
    dpo = person("dpo")
    assert {r.id for r in service.list_requests(dpo).items} == {r.id for r in filed}
    assert service.get_request(dpo, filed[0].id).id == filed[0].id


@pytest.mark.rule("R-SEC-1")
@pytest.mark.parametrize("role", STAFF_BUT_DPO)
def test_other_staff_are_denied(person: Any, service: RightsService, role: str) -> None:
    filed = service.file_request(person(), "access", "")
    with pytest.raises(PermissionDenied):
        service.list_requests(person(role))
    with pytest.raises((PermissionDenied, NotFound)):
        service.get_request(person(role), filed.id)


@pytest.mark.rule("R-XFER-2")
def test_a_caller_from_another_region_is_refused(person: Any, service: RightsService) -> None:
    with pytest.raises(WrongRegion):
        service.file_request(person(region="eu"), "access", "")
    with pytest.raises(WrongRegion):
        service.list_requests(person("dpo", region="eu"))


def test_pages_follow_due_date_then_id_without_gaps_or_repeats(person: Any, service: RightsService, clock: Any) -> None:
    customers = [person() for _ in range(7)]
    for i, customer in enumerate(customers):
        if i % 2:
            clock.advance(days=1)  # pairs share a due date, so the id breaks the tie
        service.file_request(customer, "access", "")
    dpo = person("dpo")
    seen: list[RightsRequest] = []
    cursor = ""
    while True:
        page = service.list_requests(dpo, cursor=cursor, page_size=3)
        assert len(page.items) <= 3
        seen += page.items
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert len(seen) == 7 and len({r.id for r in seen}) == 7
    keys = [(r.due_at, r.id) for r in seen]
    assert keys == sorted(keys)


@pytest.mark.parametrize("cursor", ["not-a-cursor", "W10", "eyJhIjogMX0"])
def test_a_forged_cursor_is_refused(person: Any, service: RightsService, cursor: str) -> None:
    with pytest.raises(InvalidArgument):
        service.list_requests(person("dpo"), cursor=cursor)


@pytest.mark.parametrize("size", [-1, 101])
def test_page_size_is_bounded(person: Any, service: RightsService, size: int) -> None:
    with pytest.raises(InvalidArgument):
        service.list_requests(person("dpo"), page_size=size)


@pytest.mark.rule("R-RIGHTS-2")
def test_overdue_lists_open_requests_past_their_due_date(person: Any, service: RightsService, clock: Any,
                                                         uow: UnitOfWorkFactory[Repository]) -> None:
    late = service.file_request(person(), "access", "")
    done = service.file_request(person(), "access", "")
    close(uow, done.id)
    clock.advance(days=20)
    recent = service.file_request(person(), "access", "")
    dpo = person("dpo")
    assert service.list_requests(dpo, overdue=True).items == []
    clock.advance(days=10)  # now past the first two deadlines, not the third
    assert [r.id for r in service.list_requests(dpo, overdue=True).items] == [late.id]
    assert recent.id in {r.id for r in service.list_requests(dpo).items}


def test_status_filter(person: Any, service: RightsService, uow: UnitOfWorkFactory[Repository]) -> None:
    open_one = service.file_request(person(), "access", "")
    done = service.file_request(person(), "access", "")
    close(uow, done.id)
    dpo = person("dpo")
    assert [r.id for r in service.list_requests(dpo, status="completed").items] == [done.id]
    assert [r.id for r in service.list_requests(dpo, status="in_progress").items] == [open_one.id]
    with pytest.raises(InvalidArgument):
        service.list_requests(dpo, status="lost")
