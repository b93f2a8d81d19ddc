"""Consent's batch erasure (PersonalData.EraseMany): every subject's addresses read from identity by one
call, each subject then erased on its own exactly as Erase does, over a real database."""

from __future__ import annotations

import pytest
from consent.directory import Contact
from consent.models import SuppressionEntry
from consent.service import ConsentService
from servicekit.errors import Unavailable
from servicekit.subject_data import Erasure
from sqlalchemy import select

from .conftest import World
from .test_consent_governance import hold
from .test_rules import BOB, CAROL
from .test_sending import ADA, sign_up

EVE, NOBODY = "e" * 32, "0" * 32  # EVE: an account at identity, no preferences here; NOBODY: neither
BATCH = [ADA, BOB, CAROL, EVE, NOBODY]


def scene(world: World) -> None:
    """Ada opted in; Bob under a legal hold; Carol's account already gone at identity; Eve known only there."""
    sign_up(world, email=True, telephone=True)
    sign_up(world, BOB, "bob@example.com", email=True)
    world.directory.people[BOB] = Contact("bob@example.com", "+442079460999", False)  # his own phone
    hold(world, "h1", BOB)
    sign_up(world, CAROL, "carol@example.com")
    del world.directory.people[CAROL]
    world.directory.people[EVE] = Contact("eve@example.com", "+442079460777", False)
    world.clock.advance(minutes=5)


def suppression_list(world: World) -> set[tuple[str, str, str, object]]:
    with world.uow() as uow:
        return {(e.hash, e.kind, e.reason, e.created_at) for e in uow.session.scalars(select(SuppressionEntry))}


def left(consent: ConsentService, subject: str) -> dict[str, int]:
    """Rows of each table the subject's export still shows."""
    return {name: len(list(rows)) for name, _, _, rows in consent.export(subject).tables}


@pytest.mark.notice("12.1", "13.1.3")
@pytest.mark.rule("R-ERASE-1", "R-MKT-6", "R-RET-2")
def test_a_batch_erases_and_suppresses_exactly_as_erasing_one_by_one_with_one_read_of_identity(
        world: World, twin: World) -> None:
    scene(world)
    scene(twin)
    world.directory.calls.clear()
    twin.directory.calls.clear()
    one_by_one: list[Erasure | Exception] = [world.consent.erase(s) for s in BATCH]
    batched = twin.consent.erase_many(BATCH)
    assert batched == one_by_one
    assert suppression_list(twin) == suppression_list(world)
    assert len(suppression_list(twin)) == 6  # Ada's, Bob's and Eve's address and phone; not Carol's
    assert [left(twin.consent, s) for s in BATCH] == [left(world.consent, s) for s in BATCH]
    assert left(twin.consent, BOB)["preferences"] == 1 and left(twin.consent, ADA)["preferences"] == 0  # the hold
    assert twin.consent.can_contact(BOB, "email", "marketing").reason == "restricted"
    assert world.directory.calls == ["contact"] * len(BATCH) and twin.directory.calls == ["contacts"]
    # Idempotent: the batch again changes nothing, as a second Erase does not.
    twin.clock.advance(minutes=1)
    again = twin.consent.erase_many(BATCH)
    assert [a.erased for a in again if isinstance(a, Erasure)] == [0] * len(BATCH)


@pytest.mark.notice("13.1.3")
@pytest.mark.rule("R-ERASE-1", "R-MKT-6")
def test_identity_away_leaves_every_subject_of_the_batch_unerased_and_unavailable(world: World) -> None:
    scene(world)
    world.directory.down = True
    answers = world.consent.erase_many(BATCH)
    with pytest.raises(Unavailable) as alone:
        world.consent.erase(ADA)
    # What Erase raises, for each (the orchestrator retries them); nothing erased without its addresses listed.
    assert [(type(a), str(a)) for a in answers] == [(Unavailable, str(alone.value))] * len(BATCH)
    assert left(world.consent, ADA)["preferences"] == 1 and suppression_list(world) == set()
    world.directory.down = False
    assert all(isinstance(a, Erasure) for a in world.consent.erase_many(BATCH))
    assert left(world.consent, ADA)["preferences"] == 0 and len(suppression_list(world)) == 6


@pytest.mark.notice("13.1.3")
@pytest.mark.rule("R-ERASE-1", "R-MKT-6", "R-XFER-2")
def test_a_subject_identity_refuses_alone_is_unavailable_the_others_erased(world: World) -> None:
    scene(world)
    world.directory.elsewhere.add(BOB)
    answers = world.consent.erase_many([ADA, BOB])
    with pytest.raises(Unavailable):
        world.consent.erase(BOB)
    assert isinstance(answers[0], Erasure) and answers[0].erased > 0
    assert isinstance(answers[1], Unavailable) and left(world.consent, BOB)["preferences"] == 1
