"""Service messages about rights requests (section 13): what the subject is told, once, with facts only.

A real database and a real SMTP server; identity and rights are fakes (unit tests of the sender's rules).
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from consent import events
from consent.codes import ClaimedCode
from consent.directory import Contact
from consent.models import Inbox, OutgoingMessage
from google.protobuf.timestamp_pb2 import Timestamp
from kaseum.events.v1 import rights_events_pb2 as rev
from servicekit.bus import Subscription, apply_once
from servicekit.outbox import envelope
from sqlalchemy import select

from .conftest import World

ADA = "a" * 32
BOB = "b" * 32
REQUEST = "r" * 32
ADDRESS = "ada@example.com"
NO = {"email": False, "telephone": False, "third_party": False}
EXPIRES = datetime(2025, 3, 8, 12, 0, tzinfo=UTC)


def sign_up(world: World, subject: str = ADA, address: str = ADDRESS) -> None:
    """A customer who refused all marketing: service messages reach them all the same (8.2)."""
    world.directory.people[subject] = Contact(address, "", False)
    with world.uow() as uow:
        world.consent.create_defaults(uow, subject, "uk", NO, "2024-01")
        uow.commit()


def deliver(world: World, event_type: str, subject_id: str, payload: rev.RequestStatusChanged |
            rev.VerificationRequested) -> None:
    """The event as the consumer hands it over (in its transaction)."""
    env = envelope(event_type, "uk", subject_id, payload)
    with world.uow() as uow:
        events.handlers(world.consent)[event_type](uow, env)
        uow.commit()


def changed(world: World, change: str, kind: str = "access", due_at: datetime | None = None,
            subject_id: str = ADA, lift_at: datetime | None = None) -> None:
    event = rev.RequestStatusChanged(request_id=REQUEST, kind=kind, status=change, change=change)
    for moment, field in ((due_at, event.due_at), (lift_at, event.lift_at)):
        if moment is not None:
            stamp = Timestamp()
            stamp.FromDatetime(moment)
            field.CopyFrom(stamp)
    deliver(world, "rights.request.status_changed", subject_id, event)


def verification_requested(world: World, subject_id: str = ADA) -> None:
    deliver(world, "rights.verification.requested", subject_id,
            rev.VerificationRequested(request_id=REQUEST, kind="erasure"))


def rows(world: World) -> list[OutgoingMessage]:
    with world.uow() as uow:
        return list(uow.session.scalars(select(OutgoingMessage)))


def one_mail(world: World) -> EmailMessage:
    world.sender.drain()
    [mail] = world.mailbox.to(ADDRESS)
    assert "List-Unsubscribe" not in mail and mail["Auto-Submitted"] == "auto-generated"  # a service message
    return mail


# --- the one-time code of a request the DPO filed on the subject's behalf -------------------------------------
@pytest.mark.notice("13.2")
@pytest.mark.rule("R-RIGHTS-1")
def test_the_verification_code_is_claimed_from_rights_at_send_time_and_sent_once(world: World) -> None:
    sign_up(world)
    world.codes.codes[REQUEST] = ClaimedCode(ADA, "492817", EXPIRES)
    verification_requested(world)
    assert world.codes.claimed == []  # not claimed when queued: only by the sender, after the lease
    mail = one_mail(world)
    body = mail.get_content()
    assert mail["Subject"] == "Confirm your request"
    assert "492817" in body and "08 March 2025 at 12:00 UTC" in body and REQUEST in body
    assert "Data Protection Officer" in body
    assert world.sender.drain() == 0 and world.codes.claimed == [REQUEST]  # claimed once, sent once
    [row] = rows(world)
    assert (row.state, row.token_sealed) == ("sent", None)  # the code is not kept once sent


@pytest.mark.notice("13.2")
@pytest.mark.rule("R-RIGHTS-1")
def test_a_relay_outage_keeps_the_code_sealed_never_in_clear_and_sends_it_later(world: World) -> None:
    sign_up(world)
    world.codes.codes[REQUEST] = ClaimedCode(ADA, "731904", EXPIRES)
    verification_requested(world)
    good = world.sender.mailer.port
    world.sender.mailer.port = 1  # nothing listens there: the relay refuses
    world.sender.drain()
    [row] = rows(world)
    assert row.state == "pending" and row.token_sealed and b"731904" not in row.token_sealed
    assert "731904" not in row.facts
    world.sender.mailer.port = good
    world.clock.advance(minutes=1)
    assert "731904" in one_mail(world).get_content()
    assert world.codes.claimed == [REQUEST]


@pytest.mark.notice("13.2")
def test_a_code_claimed_by_an_attempt_that_died_is_marked_lost_not_dropped(world: World) -> None:
    sign_up(world)
    world.codes.codes[REQUEST] = ClaimedCode(ADA, "111222", EXPIRES)
    verification_requested(world)
    world.codes.claim_code(REQUEST)  # a worker claimed it and died before sealing it on the row
    world.sender.drain()
    [row] = rows(world)
    assert (row.state, row.reason) == ("failed", "token_lost")
    assert world.mailbox.messages() == []


@pytest.mark.notice("13.2")
def test_rights_away_delays_the_code_message(world: World) -> None:
    sign_up(world)
    world.codes.codes[REQUEST] = ClaimedCode(ADA, "333444", EXPIRES)
    verification_requested(world)
    world.codes.down = True
    world.sender.drain()
    assert (rows(world)[0].state, rows(world)[0].attempts) == ("pending", 0)
    world.codes.down = False
    world.clock.advance(minutes=1)
    assert "333444" in one_mail(world).get_content()


@pytest.mark.notice("13.2")
def test_a_code_rights_says_is_someone_elses_is_never_sent(world: World) -> None:
    sign_up(world)
    world.codes.codes[REQUEST] = ClaimedCode(BOB, "555666", EXPIRES)
    verification_requested(world)
    world.sender.drain()
    assert (rows(world)[0].state, rows(world)[0].reason) == ("failed", "wrong_subject")
    assert world.mailbox.messages() == []


@pytest.mark.notice("13.1.3")
@pytest.mark.rule("R-ERASE-1")
def test_an_erased_subject_gets_no_code_and_none_is_claimed(world: World) -> None:
    sign_up(world)
    world.codes.codes[REQUEST] = ClaimedCode(ADA, "777888", EXPIRES)
    verification_requested(world)
    del world.directory.people[ADA]  # identity answers NOT_FOUND at send time
    world.sender.drain()
    assert (rows(world)[0].state, rows(world)[0].reason) == ("failed", "no_recipient")
    assert world.codes.claimed == [] and world.mailbox.messages() == []
    verification_requested(world, BOB)  # no preferences here (erased, or never a customer): nothing queued
    changed(world, "completed", subject_id=BOB)
    assert len(rows(world)) == 1


# --- changes of a request the subject is told of ------------------------------------------------------------
@pytest.mark.notice("8.2")
@pytest.mark.rule("R-RIGHTS-2")
def test_an_extension_tells_the_new_due_date_and_where_the_reason_is(world: World) -> None:
    sign_up(world)
    changed(world, "extended", kind="erasure", due_at=datetime(2025, 5, 31, 23, 59, tzinfo=UTC))
    mail = one_mail(world)
    body = mail.get_content()
    assert mail["Subject"] == "We need more time for your request"
    assert "31 May 2025" in body and "erasure of your personal data" in body
    assert f"https://portal.example/api/v1/rights-requests/{REQUEST}" in body


@pytest.mark.notice("13.3")
@pytest.mark.rule("R-RIGHTS-3")
def test_a_refusal_tells_where_the_reason_is_and_the_right_to_complain_to_the_ico(world: World) -> None:
    sign_up(world)
    changed(world, "refused", kind="access")
    mail = one_mail(world)
    body = mail.get_content()
    assert mail["Subject"] == "Your request was refused"
    assert "https://ico.org.uk/make-a-complaint/" in body and "0303 123 1113" in body
    assert "judicial remedy" in body
    assert f"https://portal.example/api/v1/rights-requests/{REQUEST}" in body


@pytest.mark.notice("13.1.1")
@pytest.mark.notice("13.1.6")
def test_a_completed_access_request_points_to_the_download_for_7_days(world: World) -> None:
    sign_up(world)
    changed(world, "completed", kind="portability")
    body = one_mail(world).get_content()
    assert f"https://portal.example/api/v1/rights-requests/{REQUEST}/export" in body and "7 days" in body


@pytest.mark.notice("13.1.2")
def test_a_completed_rectification_mentions_no_download(world: World) -> None:
    sign_up(world)
    changed(world, "completed", kind="rectification")
    mail = one_mail(world)
    assert mail["Subject"] == "Your request is complete"
    assert "/export" not in mail.get_content() and "correction of your personal data" in mail.get_content()


@pytest.mark.notice("13.1.5")
@pytest.mark.rule("R-RESTRICT-1")
def test_a_restricted_subject_is_told_before_the_restriction_is_lifted(world: World) -> None:
    sign_up(world)
    world.consent.set_restricted(ADA, True)  # restriction stops marketing, never this message
    changed(world, "lift_announced", kind="restriction", lift_at=datetime(2025, 3, 2, 9, 30, tzinfo=UTC))
    mail = one_mail(world)
    body = mail.get_content()
    assert mail["Subject"] == "We will lift the restriction of your data"
    assert "02 March 2025 at 09:30 UTC" in body and "object" in body


@pytest.mark.notice("8.2")
def test_other_changes_send_nothing_and_each_event_sends_one_message(world: World) -> None:
    sign_up(world)
    for change in ("filed", "step_done", "step_failed", "retried", "verified", "clock_stopped",
                   "clock_restarted", "lifted", "due_soon"):
        changed(world, change)
    assert rows(world) == []
    env = envelope("rights.request.status_changed", "uk", ADA,
                   rev.RequestStatusChanged(request_id=REQUEST, kind="access", status="refused", change="refused"))
    sub = Subscription("consent", [], events.handlers(world.consent), world.uow, Inbox)
    assert apply_once(sub, env) is True
    assert apply_once(sub, env) is False  # redelivered: no second message
    world.sender.drain()
    assert len(world.mailbox.to(ADDRESS)) == 1
    assert [r.dedup_key for r in rows(world)] == [f"e:{env.id}"]
