"""Consent's rules against a real, migrated database."""

from __future__ import annotations

from pathlib import Path

import pytest
from consent.__main__ import MIGRATIONS
from consent.models import LedgerEntry, Outbox, Repository
from consent.service import ConsentService
from servicekit import append_only
from servicekit.errors import Conflict, WrongRegion
from servicekit.testing import migrated_uow, person
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError

SUBJECT = "a" * 32
NO = {"email": False, "telephone": False, "third_party": False}


@pytest.fixture
def service(tmp_path: Path) -> ConsentService:
    return ConsentService(migrated_uow(MIGRATIONS, f"sqlite:///{tmp_path}/c.db", Outbox, Repository), "uk", "2024-01")


def new_subject(service: ConsentService, subject: str = SUBJECT, **choices: bool) -> None:
    with service.uow() as uow:
        service.create_defaults(uow, subject, "uk", {**NO, **choices}, "2024-01")
        uow.commit()


@pytest.mark.notice("1.3", "6.1", "7")  # 1.3: the notice version each answer was given under
@pytest.mark.rule("R-MKT-1", "R-MKT-3")
def test_everything_is_off_until_opted_in_and_each_answer_is_on_the_ledger(service: ConsentService) -> None:
    new_subject(service)
    prefs = service.get(person(SUBJECT)).prefs
    assert not (prefs.marketing_email or prefs.marketing_telephone or prefs.third_party_marketing)
    assert not (prefs.cookies_analytics or prefs.cookies_marketing)
    with service.uow() as uow:
        ledger = uow.repo.ledger(SUBJECT)
    assert [(e.channel, e.granted, e.source, e.notice_version) for e in ledger] == [
        ("email", False, "signup_form", "2024-01"), ("telephone", False, "signup_form", "2024-01"),
        ("third_party", False, "signup_form", "2024-01")]


def test_defaults_are_created_once(service: ConsentService) -> None:
    new_subject(service, email=True)
    new_subject(service)  # a replayed event must not reset the choices
    assert service.get(person(SUBJECT)).prefs.marketing_email is True


def test_preferences_before_the_event_are_not_ready(service: ConsentService) -> None:
    with pytest.raises(Conflict):
        service.get(person(SUBJECT))


@pytest.mark.rule("R-XFER-2")
def test_a_subject_of_another_region_is_refused(service: ConsentService) -> None:
    with pytest.raises(WrongRegion), service.uow() as uow:
        service.create_defaults(uow, SUBJECT, "eu", NO, "2024-01")


@pytest.mark.notice("8.1")
@pytest.mark.rule("R-MKT-4", "R-WITHDRAW-1")
def test_opt_out_on_the_preference_page_stops_marketing(service: ConsentService) -> None:
    new_subject(service, email=True)
    assert service.can_contact(SUBJECT, "email", "marketing").allowed
    service.update(person(SUBJECT), {"email": False}, "preference_page")
    decision = service.can_contact(SUBJECT, "email", "marketing")
    assert (decision.allowed, decision.reason) == (False, "no_consent")


@pytest.mark.notice("8.2")
@pytest.mark.rule("R-MKT-5", "R-RESTRICT-1")
@pytest.mark.parametrize(("consented", "restricted", "purpose", "allowed"), [
    (False, False, "marketing", False),
    (True, False, "marketing", True),
    (True, True, "marketing", False),
    (False, False, "service", True),
    (False, True, "service", True),
])
def test_can_contact_truth_table(service: ConsentService, consented: bool, restricted: bool, purpose: str,
                                 allowed: bool) -> None:
    new_subject(service, email=consented)
    service.set_restricted(SUBJECT, restricted)
    assert service.can_contact(SUBJECT, "email", purpose).allowed is allowed


def test_an_unknown_subject_is_never_contacted(service: ConsentService) -> None:
    assert service.can_contact("b" * 32, "email", "service").allowed is False


@pytest.mark.rule("R-MKT-1")
def test_the_ledger_hash_chain_detects_an_edited_row(service: ConsentService) -> None:
    new_subject(service, email=True)
    service.update(person(SUBJECT), {"telephone": True}, "preference_page")
    assert service.verify_ledger(SUBJECT)[0] is None
    edit = update(LedgerEntry).where(LedgerEntry.seq == 2).values(granted=True)
    with service.uow() as uow, pytest.raises(DBAPIError, match="append-only"):
        uow.session.execute(edit)
    with service.uow() as uow:
        # Someone who drops the triggers first: the chain still exposes the edit.
        append_only.uninstall(uow.session.connection(), "consent_ledger")
        uow.session.execute(edit)
        uow.commit()
    assert service.verify_ledger(SUBJECT)[0] == 2


@pytest.mark.notice("13.1.3")
@pytest.mark.rule("R-ERASE-1")
def test_erase_removes_preferences_and_ledger(service: ConsentService) -> None:
    new_subject(service)
    assert service.erase(SUBJECT).erased > 0
    assert all(not rows for _, _, _, rows in service.export(SUBJECT).tables)
