"""Recipients are told (Art. 19; N §5.1.1): a completed erasure, rectification or restriction of a customer
gives each reseller organisation whose members saw their tickets one notice, from tickets' own access log
(which erasure keeps), once per request however often the event arrives; resellers read and acknowledge
their own organisation's notices only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from kaseum.events.v1 import envelope_pb2
from kaseum.events.v1 import rights_events_pb2 as rev
from servicekit.bus import Subscription, apply_once
from servicekit.caller import Principal
from servicekit.errors import NotFound, PermissionDenied
from servicekit.outbox import envelope
from servicekit.retention import Purger
from servicekit.testing import Clock
from sqlalchemy import select
from tickets.events import handlers
from tickets.governance import RETENTION
from tickets.models import AuditLog, Inbox, PurgeRun, RecipientNotice, Ticket
from tickets.scopes import ResellerScopes
from tickets.service import TicketsService, notice_message
from tickets.visibility import Scope

from .conftest import ACME, AGENT, ALICE, BOB, RESELLER, FakeIdentity, who

CHANNEL, ELSEWHERE = "r" * 32, "s" * 32  # two reseller organisations
OTHER_RESELLER = "f" * 32  # a member of ELSEWHERE, which never read ALICE's tickets


def reseller(account: str = RESELLER, organisation: str = CHANNEL) -> Principal:
    return who(account, "reseller", organisation=organisation)


def deliver(service: TicketsService) -> Subscription:
    return Subscription("tickets", [], handlers(service, ResellerScopes(lambda _a: Scope(), ttl=0)), service.uow,
                        Inbox)


def completed(subject: str, kind: str = "erasure", status: str = "completed",
              request_id: str = "") -> envelope_pb2.Envelope:
    return envelope("rights.request.completed", "uk", subject, rev.RequestCompleted(
        request_id=request_id or uuid.uuid4().hex, status=status, kind=kind))


def notices(service: TicketsService) -> list[tuple[str, str, str]]:
    with service.uow() as u:
        return [(n.organisation_id, n.subject_id, n.kind) for n in u.session.scalars(
            select(RecipientNotice).order_by(RecipientNotice.organisation_id))]


@pytest.fixture
def seen(service: TicketsService, identity: FakeIdentity) -> str:
    """ALICE (of ACME) opened a ticket; CHANNEL's reseller, which sold to ACME, read and answered it; BOB's
    ticket was read by ELSEWHERE's reseller. Returns ALICE's ticket id."""
    identity.scopes[RESELLER] = Scope(CHANNEL, frozenset({ACME}))
    identity.scopes[OTHER_RESELLER] = Scope(ELSEWHERE, countries=frozenset({"FR"}))
    ticket = service.open(who(ALICE, organisation=ACME), "Printer", "On fire", "")
    service.get(reseller(), ticket.id)
    service.reply(reseller(), ticket.id, "Replacing it", False)
    service.get(who(AGENT, "agent"), ticket.id)  # staff of our own: not a recipient
    bob = service.open(who(BOB, organisation="x" * 32, country="FR"), "Fax", "Jammed", "")
    service.get(reseller(OTHER_RESELLER, ELSEWHERE), bob.id)
    return ticket.id


@pytest.mark.notice("5.1.1", "13.1.3")
@pytest.mark.rule("R-ERASE-1")
def test_an_erasure_tells_the_reseller_that_read_the_tickets_and_no_other(service: TicketsService, seen: str) -> None:
    service.erase(ALICE)  # the rights service erases first, then publishes the completion
    with service.uow() as u:
        assert u.session.get(Ticket, seen) is None
    request_id = uuid.uuid4().hex
    assert apply_once(deliver(service), completed(ALICE, request_id=request_id))
    assert notices(service) == [(CHANNEL, ALICE, "erasure")]
    page = service.notices(reseller(), "", 0)
    assert [(n.subject_id, n.request_id, n.acknowledged_at) for n in page.items] == [(ALICE, request_id, None)]
    assert service.notices(reseller(OTHER_RESELLER, ELSEWHERE), "", 0).items == []
    with service.uow() as u:  # showing the notice is an access to the subject id it names
        shown = u.session.scalars(select(AuditLog.action).where(AuditLog.subject_id == ALICE,
                                                                AuditLog.actor_organisation_id == CHANNEL))
        assert "recipient_notice.read" in list(shown)


@pytest.mark.notice("5.1.1")
@pytest.mark.rule("R-RECT-1")
def test_the_notice_says_what_to_do_and_carries_no_ticket_text(service: TicketsService, seen: str) -> None:
    kinds = {"erasure": "erased", "rectification": "rectified", "restriction": "restricted"}
    for kind in kinds:
        assert apply_once(deliver(service), completed(ALICE, kind))
    page = service.notices(reseller(), "", 2)
    rest = service.notices(reseller(), page.next_cursor, 2)
    assert len(page.items) == 2 and len(rest.items) == 1 and rest.next_cursor == ""
    for notice in page.items + rest.items:
        text = notice_message(notice)
        assert ALICE in text and kinds.pop(notice.kind) in text and "Art. 19" in text
        assert "Printer" not in text and "fire" not in text and "Replacing" not in text
    assert kinds == {}


@pytest.mark.notice("5.1.1")
@pytest.mark.rule("R-ERASE-1")
def test_a_redelivered_or_republished_completion_writes_no_second_notice(service: TicketsService, seen: str) -> None:
    sub = deliver(service)
    event = completed(ALICE, request_id="q" * 32)
    assert apply_once(sub, event) is True
    assert apply_once(sub, event) is False  # redelivery: the inbox knows it
    # The same request published again under a new event id: still one notice per organisation.
    assert apply_once(sub, completed(ALICE, request_id="q" * 32)) is True
    assert notices(service) == [(CHANNEL, ALICE, "erasure")]


@pytest.mark.notice("5.1.1")
@pytest.mark.rule("R-RECT-1")
def test_refused_requests_and_other_kinds_tell_no_one(service: TicketsService, seen: str) -> None:
    sub = deliver(service)
    for event in (completed(ALICE, "erasure", "refused"), completed(ALICE, "rectification", "refused"),
                  completed(ALICE, "access"), completed(ALICE, "portability"), completed(ALICE, "objection"),
                  completed("z" * 32)):  # someone no reseller ever saw
        assert apply_once(sub, event) is True
    assert notices(service) == []


@pytest.mark.notice("5.1.1")
@pytest.mark.rule("R-SEC-1")
def test_only_the_organisations_resellers_see_or_acknowledge_its_notices(service: TicketsService, seen: str) -> None:
    assert apply_once(deliver(service), completed(ALICE, "restriction"))
    notice_id = service.notices(reseller(), "", 0).items[0].id
    for outsider in (who(ALICE, organisation=ACME), who(AGENT, "agent"), who(AGENT, "dpo"), who(AGENT, "admin")):
        with pytest.raises(PermissionDenied):
            service.notices(outsider, "", 0)
        with pytest.raises(PermissionDenied):
            service.acknowledge(outsider, notice_id)
    with pytest.raises(NotFound):
        service.acknowledge(reseller(OTHER_RESELLER, ELSEWHERE), notice_id)
    with pytest.raises(NotFound):
        service.acknowledge(reseller(), "n" * 32)
    first = datetime(2031, 1, 2, 3, 4, tzinfo=UTC)
    assert service.acknowledge(reseller(), notice_id, now=first).acknowledged_at is not None
    colleague = reseller("k" * 32)  # another member of CHANNEL
    again = service.acknowledge(colleague, notice_id, now=first + timedelta(days=1))
    assert again.acknowledged_at is not None and again.acknowledged_at.replace(tzinfo=UTC) == first


@pytest.mark.notice("12.1")
@pytest.mark.notice("12.2")
@pytest.mark.rule("R-RET-1")
def test_notices_are_purged_six_years_after_they_were_written(service: TicketsService, seen: str) -> None:
    with service.uow() as u:
        for n, created in enumerate((datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))):
            service.notify_recipients(u, ALICE, f"{n}" * 32, "erasure", "completed", now=created)
        u.commit()
    purger = Purger(RETENTION, service.uow.session_factory, PurgeRun, Clock(datetime(2031, 3, 1, tzinfo=UTC)))
    results = {r.rule: r.purged for r in purger.run_once()}
    assert results["recipient_notices"] == 1
    with service.uow() as u:
        left = list(u.session.scalars(select(RecipientNotice.request_id)))
    assert left == ["1" * 32]
