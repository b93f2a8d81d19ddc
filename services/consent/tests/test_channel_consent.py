"""Consent is per channel (e-mail, telephone) and for third-party marketing, each specific and freshly given:
a fresh grant of one channel renews that channel alone, after a purpose change or after a suppression."""

from __future__ import annotations

import pytest
from consent import events
from consent.directory import Contact
from kaseum.events.v1 import identity_events_pb2 as ev
from servicekit.outbox import envelope
from servicekit.testing import person

from .conftest import World
from .test_call_list import calls
from .test_rules import ADMIN, BOB, DPO
from .test_sending import ADA, sign_up

REREQUIRED = (False, "reconsent_required")
CONSENTED = (True, "consented")
SUPPRESSED = (False, "suppressed")


def decisions(world: World) -> tuple[tuple[bool, str], ...]:
    """(e-mail, telephone, third-party) marketing decisions for ADA, one by one and batched alike."""
    found = []
    for channel, purpose in (("email", "marketing"), ("telephone", "marketing"), ("email", "third_party_marketing")):
        one = world.consent.can_contact(ADA, channel, purpose)
        [batched] = world.consent.can_contact_batch([ADA], channel, purpose)
        assert (one.allowed, one.reason) == (batched.allowed, batched.reason)
        found.append((one.allowed, one.reason))
    return tuple(found)


def called(world: World) -> list[str]:
    return [row.subject_id for row in calls(world).export(ADMIN, "marketing", None).rows]


@pytest.mark.notice("6.1", "7", "8.1")
@pytest.mark.rule("R-MKT-1", "R-MKT-3", "R-MKT-7")
def test_after_a_purpose_change_each_channel_needs_its_own_fresh_consent(world: World) -> None:
    sign_up(world, email=True, telephone=True, third_party=True)
    world.clock.advance(days=1)
    world.campaigns.publish_notice(ADMIN, "2025-04", "privacy", True, "A new purpose.")
    assert decisions(world) == (REREQUIRED, REREQUIRED, REREQUIRED)
    world.clock.advance(minutes=5)
    # Confirming e-mail marketing under the new notice says nothing about calls or sharing.
    view = world.consent.update(person(ADA), {"email": True}, "preference_page")
    assert view.reconsent_required
    assert decisions(world) == (CONSENTED, REREQUIRED, REREQUIRED)
    assert called(world) == []
    view = world.consent.update(person(ADA), {"telephone": True}, "preference_page")
    assert view.reconsent_required  # third-party sharing is still stale
    assert decisions(world) == (CONSENTED, CONSENTED, REREQUIRED)
    assert called(world) == [ADA]
    view = world.consent.update(person(ADA), {"third_party": True}, "preference_page")
    assert not view.reconsent_required and decisions(world) == (CONSENTED, CONSENTED, CONSENTED)
    with world.uow() as uow:
        renewed = [(e.channel, e.notice_version) for e in uow.repo.ledger(ADA)[-3:]]
    assert renewed == [("email", "2025-04"), ("telephone", "2025-04"), ("third_party", "2025-04")]


@pytest.mark.notice("8.1")
@pytest.mark.rule("R-MKT-6", "R-MKT-7")
def test_a_fresh_email_grant_after_a_suppression_does_not_revive_older_telephone_consent(world: World) -> None:
    """ADA consented to e-mail and calls; then her number changed to one that went on the suppression list
    (another customer's objection) after that consent. The list holds the number itself, so her old consent
    to calls is not to be used on it; a fresh e-mail opt-in afterwards renews e-mail alone."""
    sign_up(world, email=True, telephone=True)
    world.clock.advance(days=1)
    listed = "+442079460777"
    sign_up(world, BOB, "bob@example.com")
    world.directory.people[BOB] = Contact("bob@example.com", listed, False)
    world.consent.record_opt_out(DPO, BOB, [], True, "dpo_email")  # BOB's number goes on the list
    world.clock.advance(days=1)
    world.directory.people[ADA] = Contact("ada@example.com", listed, False)
    env = envelope("identity.account.rectified", "uk", ADA, ev.AccountRectified(account_id=ADA, fields=["phone"]))
    with world.uow() as uow:
        events.handlers(world.consent)["identity.account.rectified"](uow, env)
        uow.commit()
    assert decisions(world)[:2] == (SUPPRESSED, SUPPRESSED)
    world.clock.advance(minutes=5)
    world.consent.update(person(ADA), {"email": False}, "preference_page")
    world.consent.update(person(ADA), {"email": True}, "preference_page")
    assert decisions(world)[:2] == (CONSENTED, SUPPRESSED)
    assert called(world) == []
    # E-mail marketing reaches her (the sender's own check of both addresses agrees).
    world.campaigns.send(ADMIN, "Offer", "Buy", "email", "marketing", "")
    world.sender.drain()
    assert [m["Subject"] for m in world.mailbox.to("ada@example.com")] == ["Offer"]
    # Fresh consent to calls, given after the number went on the list: calls may resume.
    world.consent.update(person(ADA), {"telephone": False}, "preference_page")
    world.consent.update(person(ADA), {"telephone": True}, "preference_page")
    assert decisions(world)[:2] == (CONSENTED, CONSENTED)
    assert called(world) == [ADA]
