"""Keyset pagination stays stable while tickets are inserted concurrently: no ticket skipped or repeated,
ties on created_at broken by id, with the agent queue's filters (SQLite, and PostgreSQL with
KASEUM_TEST_POSTGRES)."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from tickets import service as service_module
from tickets.models import Ticket
from tickets.service import TicketsService

from .conftest import ACME, AGENT, ALICE, BOB, GLOBEX, who

pytestmark = [pytest.mark.notice("1.2"), pytest.mark.rule("R-SEC-1")]

T0 = datetime(2031, 3, 1, 9, 0, tzinfo=UTC)


class Clocks:
    """The service's clock, set per thread: a writer opens tickets at the instant it is told to."""

    def __init__(self) -> None:
        self.local = threading.local()

    def __call__(self) -> datetime:
        return getattr(self.local, "now", T0)

    def set(self, when: datetime) -> None:
        self.local.now = when


def key(t: Ticket) -> tuple[datetime, str]:
    return (t.created_at if t.created_at.tzinfo else t.created_at.replace(tzinfo=UTC), t.id)


def test_the_agent_queue_pages_stably_while_tickets_arrive(service: TicketsService,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    clocks = Clocks()
    monkeypatch.setattr(service_module, "utcnow", clocks)
    alice, bob, agent = who(ALICE, organisation=ACME), who(BOB, organisation=GLOBEX), who(AGENT, "agent")
    # Twelve urgent tickets share one instant (ties broken by id only), eight are older; low-priority
    # and other companies' tickets are interleaved for the filters to skip.
    expected = []
    for i, when in enumerate([T0] * 12 + [T0 - timedelta(seconds=s) for s in range(1, 9)]):
        clocks.set(when)
        expected.append(service.open(alice, f"urgent {i}", "b", "portal", "urgent").id)
        service.open(alice, f"low {i}", "b", "portal", "low")
        service.open(bob, f"other company {i}", "b", "portal", "urgent")
    clocks.set(T0)
    filters = {"priority": "urgent", "organisation_id": ACME, "status": "open"}

    def arrivals(page: int) -> list[threading.Thread]:
        # Writers open matching and non-matching tickets: newer ones, and ones at the very instant of the
        # tie group (which sort on either side of the cursor by their random id).
        def write(n: int, when: datetime) -> None:
            clocks.set(when)
            for j in range(3):
                service.open(alice, f"arrived {page}.{n}.{j}", "b", "portal", "urgent")
                service.open(alice, f"arrived low {page}.{n}.{j}", "b", "portal", "low")
        return [threading.Thread(target=write, args=(n, when))
                for n, when in enumerate([T0, T0 + timedelta(minutes=5), T0 - timedelta(seconds=4)])]

    seen: list[Ticket] = []
    cursor = ""
    for page_number in itertools.count():
        writers = arrivals(page_number)
        for w in writers:
            w.start()
        page = service.page(agent, filters, cursor, 4)  # while the writers write
        for w in writers:
            w.join()
        seen += page.items
        if not page.next_cursor:
            break
        cursor = page.next_cursor
        assert page_number < 50, "the cursor never ends"

    ids = [t.id for t in seen]
    assert len(ids) == len(set(ids)), "a ticket was shown twice"
    assert [key(t) for t in seen] == sorted((key(t) for t in seen), reverse=True), "out of order"
    # Every ticket there before the first page is shown once, in (created_at, id) order; an arrival only
    # where it sorts after what was already shown (the order above).
    with service.uow() as uow:
        before = sorted(uow.session.scalars(select(Ticket).where(Ticket.id.in_(expected))), key=key, reverse=True)
        newer = uow.session.scalar(select(func.count()).select_from(Ticket).where(
            Ticket.subject.like("arrived %"), Ticket.created_at > T0))
    assert [i for i in ids if i in set(expected)] == [t.id for t in before]
    assert all(t.priority == "urgent" and t.organisation_id == ACME for t in seen)
    # A newer arrival can only be on the first page (written while it was read), never behind a cursor.
    assert all(key(t)[0] <= T0 for t in seen[4:])
    assert newer  # the writers of newer tickets did write
