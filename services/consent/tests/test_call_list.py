"""The telephone call list (R-MKT-7): only people CanContact allows on the telephone, each with the consent
that lets them be called, numbers from identity now, a TPS/CTPS-listed number marked, every export audited."""

from __future__ import annotations

import pytest
from consent.calls import CallLists
from consent.directory import Contact
from servicekit.errors import InvalidArgument, PermissionDenied
from servicekit.testing import person

from .conftest import World
from .test_consent_governance import audit_rows
from .test_rules import ADMIN, CLI, DPO
from .test_sending import NO

ADA, BOB, CAROL, DAN, EVE, FAY, GUS, HAL, IVY = (c * 32 for c in "abcdefghi")
PHONES = {s: f"+4420794600{n:02d}" for n, s in enumerate((ADA, BOB, CAROL, DAN, EVE, FAY, GUS, IVY))}


def customer(world: World, subject: str, **choices: bool) -> None:
    world.directory.people[subject] = Contact(f"{subject[0]}@example.com", PHONES.get(subject, ""), False)
    with world.uow() as uow:
        world.consent.create_defaults(uow, subject, "uk", {**NO, **choices}, "2024-01")
        uow.commit()


def calls(world: World) -> CallLists:
    return CallLists(world.uow, world.consent, world.directory, clock=world.clock)


@pytest.mark.notice("6.1", "8.1")
@pytest.mark.rule("R-MKT-7", "R-MKT-6", "R-SEC-1")
def test_the_call_list_holds_only_people_who_consented_to_calls_and_marks_a_tps_listed_number(world: World) -> None:
    customer(world, ADA, email=True, telephone=True)
    customer(world, BOB)
    customer(world, CAROL, email=True)  # e-mail only
    for subject in (DAN, EVE, FAY, GUS, HAL, IVY):
        customer(world, subject, telephone=True)
    world.clock.advance(days=1)
    world.consent.update(person(BOB), {"telephone": True}, "preference_page")  # consented a day later
    world.consent.update(person(DAN), {"telephone": False}, "preference_page")  # withdrawn
    world.consent.record_opt_out(DPO, EVE, [], True, "dpo_email")  # objected
    world.consent.set_restricted(FAY, True)  # restricted
    with world.uow() as uow:  # erasure requested: the number is on the suppression list
        world.consent.on_rights_request(uow, GUS, "erasure")
        uow.commit()
    world.directory.people[IVY] = Contact("i@example.com", PHONES[IVY], True)  # restricted at identity
    before = len(audit_rows(world))

    # The register extract as the operator gives it: BOB's number, written with a space, and a stranger's.
    exported = calls(world).export(ADMIN, "marketing", ["+44 20 7946 0001", "+447700900123"])

    assert [(r.subject_id, r.phone, r.on_tps, r.basis) for r in exported.rows] == [
        (ADA, PHONES[ADA], False,
         "consented to marketing calls on 2025-03-01 (ledger seq 2): TPS/CTPS screening not required"),
        (BOB, PHONES[BOB], True,
         "consented to marketing calls on 2025-03-02 (ledger seq 4): on TPS/CTPS; consented: may be called "
         "despite TPS"),
    ]
    assert (exported.screened, exported.tps_numbers, exported.without_phone) == (True, 2, 1)  # HAL has no phone
    # Each exported number is staff access to contact data: who, whose, why (4.1.5, marketing).
    assert audit_rows(world)[before:] == [
        ("person", "admin", ADA, "consent.phone_exported", "4.1.5"),
        ("person", "admin", BOB, "consent.phone_exported", "4.1.5"),
    ]

    unscreened = calls(world).export(CLI, "", None)
    assert [(r.subject_id, r.on_tps) for r in unscreened.rows] == [(ADA, False), (BOB, False)]
    assert unscreened.rows[1].basis.endswith("TPS/CTPS screening not required")
    assert not unscreened.screened
    assert len(audit_rows(world)) == before + 4


@pytest.mark.notice("6.1")
@pytest.mark.rule("R-MKT-7", "R-SEC-1")
def test_only_admins_and_the_cli_export_the_call_list_and_only_for_marketing(world: World) -> None:
    customer(world, ADA, telephone=True)
    for who in (person(ADA), DPO):
        with pytest.raises(PermissionDenied):
            calls(world).export(who, "marketing", None)
    with pytest.raises(InvalidArgument):
        calls(world).export(ADMIN, "third_party_marketing", None)
    assert audit_rows(world) == []
