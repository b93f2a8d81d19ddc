"""The sender against a real SMTP server and a real database: identity's messages, exactly once."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from consent import events
from consent.directory import ClaimedToken, Contact
from consent.mailer import OutcomeUnknown, SmtpConnection
from consent.models import OutgoingMessage, Repository
from kaseum.events.v1 import identity_events_pb2 as ev
from servicekit.outbox import envelope
from sqlalchemy import select
from structlog.testing import capture_logs

from .conftest import World

ADA = "a" * 32
BEA = "f" * 32
NO = {"email": False, "telephone": False, "third_party": False}


def sign_up(world: World, subject: str = ADA, address: str = "ada@example.com", **choices: bool) -> None:
    world.directory.people[subject] = Contact(address, "+442079460018", False)
    with world.uow() as uow:
        world.consent.create_defaults(uow, subject, "uk", {**NO, **choices}, "2024-01")
        uow.commit()


def request_message(world: World, account_id: str, kind: str, token_id: str = "") -> str:
    """identity.message.requested, handled as the consumer would (in its transaction)."""
    env = envelope("identity.message.requested", "uk", account_id,
                   ev.MessageRequested(account_id=account_id, kind=kind, token_id=token_id))
    with world.uow() as uow:
        events.handlers(world.consent)["identity.message.requested"](uow, env)
        uow.commit()
    return env.id


def rows(world: World) -> list[OutgoingMessage]:
    with world.uow() as uow:
        return list(uow.session.scalars(select(OutgoingMessage)))


def link_token(body: str) -> str:
    url = next(w for w in body.split() if w.startswith("https://portal.example/"))
    return parse_qs(urlsplit(url).query)["token"][0]


@pytest.mark.notice("8.2")
@pytest.mark.rule("R-MKT-5")
def test_a_verification_message_is_sent_once_with_its_claimed_link(world: World) -> None:
    sign_up(world)
    world.directory.tokens["t1"] = ClaimedToken("t1.secret", "verify_email", "")
    request_message(world, ADA, "verify_email", "t1")
    assert world.sender.drain() == 1
    assert world.sender.drain() == 0  # nothing left: no second copy
    [mail] = world.mailbox.to("ada@example.com")
    assert mail["Subject"] == "Confirm your e-mail address"
    assert link_token(mail.get_content()) == "t1.secret"
    assert "List-Unsubscribe" not in mail  # a service message, not marketing
    assert world.directory.claimed == ["t1"]
    [row] = rows(world)
    assert (row.state, row.token_sealed) == ("sent", None)  # no token kept once sent


def test_a_redelivered_event_queues_nothing_twice(world: World) -> None:
    sign_up(world)
    env = envelope("identity.message.requested", "uk", ADA, ev.MessageRequested(account_id=ADA, kind="signup_existing"))
    from consent.models import Inbox
    from servicekit.bus import Subscription, apply_once

    sub = Subscription("consent", [], events.handlers(world.consent), world.uow, Inbox)
    assert apply_once(sub, env) is True
    assert apply_once(sub, env) is False
    world.sender.drain()
    assert len(world.mailbox.to("ada@example.com")) == 1


def test_an_address_only_message_goes_to_the_claimed_address(world: World) -> None:
    world.directory.tokens["t2"] = ClaimedToken("t2.s", "signup_username_taken", "newcomer@example.com")
    request_message(world, "", "signup_username_taken", "t2")
    world.sender.drain()
    [mail] = world.mailbox.to("newcomer@example.com")
    assert link_token(mail.get_content()) == "t2.s"


@pytest.mark.notice("3.2.2", "8.2")
def test_the_owner_of_an_address_asked_for_by_another_account_is_told_nothing_changed(world: World) -> None:
    sign_up(world)
    request_message(world, ADA, "email_change_existing")
    world.sender.drain()
    [mail] = world.mailbox.to("ada@example.com")
    body = mail.get_content()
    assert mail["Subject"] == "Someone tried to use your address for another account"
    assert "Nothing was changed" in body and "token=" not in body  # no link that could change anything
    assert world.directory.claimed == []


@pytest.mark.notice("3.2.2")
def test_the_link_confirming_a_new_address_goes_to_that_address_only(world: World) -> None:
    sign_up(world)  # the account's current address is ada@example.com
    world.directory.tokens["t4"] = ClaimedToken("t4.s", "change_email", "ada.new@example.com")
    request_message(world, "", "verify_email", "t4")  # identity names no account for this link
    world.sender.drain()
    [mail] = world.mailbox.to("ada.new@example.com")
    assert mail["Subject"] == "Confirm your e-mail address" and link_token(mail.get_content()) == "t4.s"
    assert world.mailbox.to("ada@example.com") == []


def test_a_relay_outage_keeps_the_claimed_token_sealed_and_sends_once_later(world: World) -> None:
    sign_up(world)
    world.directory.tokens["t3"] = ClaimedToken("t3.secret", "reset_password", "")
    request_message(world, ADA, "reset_password", "t3")
    good = world.sender.mailer.port
    world.sender.mailer.port = 1  # nothing listens there: the relay refuses
    world.sender.drain()
    [row] = rows(world)
    assert row.state == "pending" and row.token_sealed and b"t3.secret" not in row.token_sealed
    world.sender.mailer.port = good
    world.clock.advance(minutes=1)
    world.sender.drain()
    [mail] = world.mailbox.to("ada@example.com")
    assert link_token(mail.get_content()) == "t3.secret"
    assert world.directory.claimed == ["t3"]  # claimed once, sent once


def test_a_token_claimed_by_an_attempt_that_died_is_marked_lost_not_dropped(world: World) -> None:
    sign_up(world)
    world.directory.tokens["t4"] = ClaimedToken("t4.s", "verify_email", "")
    request_message(world, ADA, "verify_email", "t4")
    world.directory.claim_token("t4")  # a worker claimed it and died before recording it
    world.sender.drain()
    [row] = rows(world)
    assert (row.state, row.reason) == ("failed", "token_lost")
    assert world.mailbox.messages() == []


def test_identity_away_delays_the_message(world: World) -> None:
    sign_up(world)
    request_message(world, ADA, "signup_existing")
    world.directory.down = True
    world.sender.drain()
    assert rows(world)[0].state == "pending"
    world.directory.down = False
    world.clock.advance(minutes=1)
    world.sender.drain()
    assert len(world.mailbox.to("ada@example.com")) == 1


def test_a_send_whose_outcome_is_unknown_is_never_repeated(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    sign_up(world)
    request_message(world, ADA, "signup_existing")

    def drop(self: SmtpConnection, message: object) -> None:
        raise OutcomeUnknown("connection lost mid-transfer")

    monkeypatch.setattr(SmtpConnection, "send", drop)
    world.sender.drain()
    monkeypatch.undo()
    world.clock.advance(hours=1)
    world.sender.drain()
    assert rows(world)[0].state == "interrupted"
    assert world.mailbox.messages() == []


def test_a_worker_that_died_mid_send_leaves_an_interrupted_row(world: World) -> None:
    sign_up(world)
    request_message(world, ADA, "signup_existing")
    with world.uow() as uow:
        [row] = uow.repo.claim_due(world.clock(), "dead-worker", world.clock(), 10)
        row.state = "sending"
        uow.commit()
    world.clock.advance(minutes=10)
    world.sender.drain()
    assert rows(world)[0].state == "interrupted"
    assert world.mailbox.messages() == []


def test_a_live_lease_keeps_other_workers_off(world: World) -> None:
    sign_up(world)
    request_message(world, ADA, "signup_existing")
    with world.uow() as uow:
        uow.repo.claim_due(world.clock(), "other-worker", world.clock().replace(year=2030), 10)
        uow.commit()
    assert world.sender.drain() == 0
    assert world.mailbox.messages() == []


@pytest.mark.notice("13.1.3")
@pytest.mark.rule("R-ERASE-1")
def test_an_erased_subject_gets_nothing(world: World) -> None:
    sign_up(world)
    request_message(world, ADA, "signup_existing")
    del world.directory.people[ADA]
    world.sender.drain()
    assert (rows(world)[0].state, rows(world)[0].reason) == ("failed", "no_recipient")


@pytest.mark.notice("13.1.3")
@pytest.mark.rule("R-ERASE-1")
def test_an_erasure_while_a_message_is_prepared_sends_nothing_and_is_no_error(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    sign_up(world)
    world.directory.tokens["t9"] = ClaimedToken("t9.secret", "verify_email", "")
    request_message(world, ADA, "verify_email", "t9")
    claim, read = world.directory.claim_token, Repository.message
    armed: list[str] = []

    def claimed(token_id: str) -> ClaimedToken:
        armed.append(token_id)
        return claim(token_id)

    def read_then_erased(repo: Repository, message_id: str) -> OutgoingMessage | None:
        found = read(repo, message_id)
        if armed and found is not None:  # the sender read the row to keep the claimed token with it…
            armed.clear()
            world.consent.erase(ADA)  # …and the subject's erasure commits before the sender does
        return found

    monkeypatch.setattr(world.directory, "claim_token", claimed)
    monkeypatch.setattr(Repository, "message", read_then_erased)
    with capture_logs() as logs:
        world.sender.drain()
    assert world.directory.claimed == ["t9"]  # the race happened
    assert world.mailbox.messages() == []
    assert rows(world) == []  # the message went with the erasure and nothing wrote it back
    assert [e for e in logs if e["log_level"] in ("error", "critical")] == []


@pytest.mark.notice("8.2")
@pytest.mark.rule("R-MKT-5")
def test_the_subjects_of_one_round_are_asked_of_identity_in_one_call(world: World,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    sign_up(world)
    sign_up(world, BEA, "bea@example.com")
    for subject in (ADA, BEA, ADA):
        request_message(world, subject, "signup_existing")
    asked: list[list[str]] = []
    contacts = world.directory.contacts
    monkeypatch.setattr(world.directory, "contacts", lambda s: asked.append(list(s)) or contacts(s))
    world.directory.calls.clear()
    assert world.sender.drain() == 3
    # One GetContacts for the round's two subjects: every read is an audited one in identity.
    assert asked == [[ADA, BEA]] and "contact" not in world.directory.calls
    assert [len(world.mailbox.to(a)) for a in ("ada@example.com", "bea@example.com")] == [2, 1]
