"""Consent's rules over a real database (and, for sends, a real SMTP server): CanContact over every
state, the routes of opt-out, GPC, suppression, notice versions, campaigns and the data contract."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from consent import events, unsubscribe
from consent.directory import Contact
from consent.models import LedgerEntry, OutgoingMessage, SuppressionEntry
from kaseum.events.v1 import identity_events_pb2 as ev
from servicekit import append_only
from servicekit.caller import Principal
from servicekit.errors import Conflict, InvalidArgument, NotFound, PermissionDenied
from servicekit.outbox import envelope
from servicekit.testing import person
from sqlalchemy import select, update

from .conftest import World
from .test_sending import ADA, sign_up

BOB = "b" * 32
ADMIN = person("d" * 32, role="admin")
DPO = person("e" * 32, role="dpo")
CLI = Principal("service", "cli", "service")


def decision(world: World, subject: str = ADA, purpose: str = "marketing") -> tuple[bool, str]:
    d = world.consent.can_contact(subject, "email", purpose)
    return d.allowed, d.reason


def queued_for(world: World, subject: str) -> list[OutgoingMessage]:
    with world.uow() as uow:
        return list(uow.session.scalars(select(OutgoingMessage).where(OutgoingMessage.subject_id == subject)))


# --- CanContact over every state --------------------------------------------------------------


ALL = ("email", "telephone", "third_party")
CAROL = "c" * 32


def state_no_consent(world: World) -> None:
    sign_up(world)


def state_consented(world: World) -> None:
    sign_up(world, email=True, telephone=True, third_party=True)


def state_withdrawn(world: World) -> None:
    sign_up(world, email=True, telephone=True, third_party=True)
    world.consent.update(person(ADA), dict.fromkeys(ALL, False), "preference_page")


def state_objected(world: World) -> None:
    sign_up(world, email=True, telephone=True, third_party=True)
    world.consent.record_opt_out(DPO, ADA, [], True, "dpo_email")


def state_restricted(world: World) -> None:
    sign_up(world, email=True, telephone=True, third_party=True)
    world.consent.set_restricted(ADA, True)


def state_reconsent(world: World) -> None:
    sign_up(world, email=True, telephone=True, third_party=True)
    world.clock.advance(days=1)
    world.campaigns.publish_notice(ADMIN, "2025-04", "privacy", True, "A new purpose.")


def state_erased(world: World) -> None:
    sign_up(world, email=True, telephone=True, third_party=True)
    world.consent.erase(ADA)


def state_erasure_requested(world: World) -> None:
    """Between an erasure request's receipt (addresses suppressed) and the erasure itself."""
    sign_up(world, email=True, telephone=True, third_party=True)
    world.clock.advance(minutes=5)
    with world.uow() as uow:
        world.consent.on_rights_request(uow, ADA, "erasure")
        uow.commit()


def state_moved_to_a_suppressed_address(world: World) -> None:
    """Consent given, then the subject's address changed to one put on the list after that consent."""
    sign_up(world, email=True, telephone=True, third_party=True)
    world.clock.advance(days=1)
    sign_up(world, CAROL, "carol@example.com")
    world.consent.erase(CAROL)
    world.clock.advance(days=1)
    world.directory.people[ADA] = Contact("Carol@example.com", "+442079460999", False)
    env = envelope("identity.account.rectified", "uk", ADA, ev.AccountRectified(account_id=ADA, fields=["email"]))
    with world.uow() as uow:
        events.handlers(world.consent)["identity.account.rectified"](uow, env)
        uow.commit()


def state_third_party_consent_after_an_objection(world: World) -> None:
    """An objection (addresses suppressed), then fresh express consent to third-party sharing only."""
    sign_up(world, email=True, telephone=True, third_party=True)
    world.consent.record_opt_out(DPO, ADA, [], True, "dpo_email")
    world.clock.advance(days=1)
    world.consent.update(person(ADA), {"third_party": True}, "preference_page")


NO_CONSENT = (False, "no_consent")
CONSENTED = (True, "consented")
SUPPRESSED = (False, "suppressed")


@pytest.mark.notice("6.1", "7", "8.1", "8.2", "13.1.4", "13.1.5")
@pytest.mark.rule("R-MKT-3", "R-MKT-4", "R-MKT-5", "R-MKT-6", "R-RESTRICT-1", "R-ERASE-1")
@pytest.mark.parametrize(("state", "email", "telephone", "third_party", "service"), [
    (state_no_consent, NO_CONSENT, NO_CONSENT, NO_CONSENT, True),
    (state_consented, CONSENTED, CONSENTED, CONSENTED, True),
    (state_withdrawn, NO_CONSENT, NO_CONSENT, NO_CONSENT, True),
    (state_objected, (False, "objected"), (False, "objected"), (False, "objected"), True),
    (state_restricted, (False, "restricted"), (False, "restricted"), (False, "restricted"), True),
    (state_reconsent, *[(False, "reconsent_required")] * 3, True),
    (state_erased, *[(False, "unknown_subject")] * 3, False),
    (state_erasure_requested, SUPPRESSED, SUPPRESSED, SUPPRESSED, True),
    (state_moved_to_a_suppressed_address, SUPPRESSED, SUPPRESSED, SUPPRESSED, True),
    (state_third_party_consent_after_an_objection, NO_CONSENT, NO_CONSENT, CONSENTED, True),
])
def test_can_contact_over_every_state(world: World, state: object, email: tuple[bool, str],
                                      telephone: tuple[bool, str], third_party: tuple[bool, str],
                                      service: bool) -> None:
    state(world)  # type: ignore[operator]
    for channel, purpose, expected in (("email", "marketing", email), ("telephone", "marketing", telephone),
                                       ("email", "third_party_marketing", third_party)):
        one = world.consent.can_contact(ADA, channel, purpose)
        [batched] = world.consent.can_contact_batch([ADA], channel, purpose)
        assert (one.allowed, one.reason) == (batched.allowed, batched.reason) == expected, (channel, purpose)
    for channel in ("email", "telephone"):
        assert world.consent.can_contact(ADA, channel, "service").allowed is service


@pytest.mark.rule("R-MKT-6")
def test_a_suppressed_address_is_not_marketed_to_until_fresh_consent(world: World) -> None:
    """A re-import (old consent, same address) is blocked at send time; a new opt-in is not."""
    sign_up(world, email=True)
    world.consent.record_opt_out(DPO, ADA, [], True, "dpo_email")
    world.consent.erase(ADA)
    with world.uow() as uow:
        entries = list(uow.session.scalars(select(SuppressionEntry)))
    assert {e.kind for e in entries} == {"email", "phone"}
    unkeyed = hashlib.sha256(b"email:ada@example.com").hexdigest()
    assert all(len(e.hash) == 64 and e.hash != unkeyed for e in entries)  # keyed hashes, no address
    # Re-imported with the consent they once had (granted before the suppression).
    sign_up(world, BOB, "ADA@example.com ")
    with world.uow() as uow:
        prefs = uow.repo.preferences(BOB)
        assert prefs is not None
        prefs.marketing_email, prefs.email_granted_at = True, world.clock() - timedelta(days=400)
        uow.commit()
    world.clock.advance(minutes=1)
    # Known at sign-up (keyed hashes compared): the campaign does not count BOB, and nothing is queued.
    assert decision(world, BOB) == (False, "suppressed")
    result = world.campaigns.send(ADMIN, "Offer", "Buy", "email", "marketing", "")
    assert (result.audience, result.eligible, result.suppressed) == (1, 0, 1)
    world.sender.drain()
    assert world.mailbox.to("ADA@example.com ") == [] and world.mailbox.messages() == []
    assert queued_for(world, BOB) == []
    # Fresh consent on the preference page after the suppression: marketing may resume.
    world.clock.advance(minutes=1)
    world.consent.update(person(BOB), {"email": False}, "preference_page")
    world.consent.update(person(BOB), {"email": True}, "preference_page")
    world.campaigns.send(ADMIN, "Offer 2", "Buy", "email", "marketing", "")
    world.sender.drain()
    assert [m["Subject"] for m in world.mailbox.messages()] == ["Offer 2"]


@pytest.mark.rule("R-MKT-6")
def test_an_erasure_stamps_an_address_already_listed_anew(world: World) -> None:
    """The list says since when an address is suppressed: an erasure after an older objection moves that to
    the erasure, so a consent given between the two (e.g. after a re-sign-up) is not revived by a re-import."""
    sign_up(world, email=True)
    world.consent.record_opt_out(DPO, ADA, [], True, "dpo_email")
    between = world.clock() + timedelta(days=1)
    world.clock.advance(days=2)
    world.consent.erase(ADA)
    sign_up(world, BOB, "ada@example.com")
    with world.uow() as uow:
        prefs = uow.repo.preferences(BOB)
        assert prefs is not None
        prefs.marketing_email, prefs.email_granted_at = True, between
        uow.commit()
    assert decision(world, BOB) == (False, "suppressed")


@pytest.mark.notice("13.1.3")
@pytest.mark.rule("R-ERASE-1", "R-MKT-6")
def test_erase_keeps_only_the_hashed_suppression_entry(world: World) -> None:
    sign_up(world, email=True)
    world.campaigns.send(ADMIN, "Offer", "Buy", "email", "marketing", "")
    world.sender.drain()
    erasure = world.consent.erase(ADA)
    # Only the hashed suppression entry stays, and the record of who accessed the data (none here).
    assert erasure.erased > 0 and [k for k, _ in erasure.kept] == ["suppression_list", "access_log"]
    assert all(not rows for _, _, _, rows in world.consent.export(ADA).tables)
    with world.uow() as uow:
        assert len(list(uow.session.scalars(select(SuppressionEntry)))) == 2


@pytest.mark.notice("13.1.1")
@pytest.mark.rule("R-ACCESS-1", "R-PORT-1")
def test_the_export_has_preferences_ledger_and_communications(world: World) -> None:
    sign_up(world, email=True)
    world.campaigns.send(ADMIN, "Offer", "Buy", "email", "marketing", "")
    world.sender.drain()
    tables = {name: (columns, rows) for name, _, columns, rows in world.consent.export(ADA).tables}
    assert len(tables["consent_ledger"][1]) == 3 and "source" in tables["consent_ledger"][0]
    columns, rows = tables["communications"]
    assert len(rows) == 1 and "token_sealed" not in columns
    assert dict(zip(columns, rows[0], strict=True))["state"] == "sent"


# --- the routes of opt-out ----------------------------------------------------------------------


@pytest.mark.notice("8.1")
@pytest.mark.rule("R-MKT-4")
def test_unsubscribe_tokens_work_once_in_effect_and_refuse_forgery_and_expiry(world: World) -> None:
    sign_up(world, email=True)
    token = world.consent.unsubscribe_token(ADA, "email", "m1")
    assert world.consent.check_unsubscribe(token) == ("email", False)  # looking changes nothing
    assert decision(world)[0] is True
    assert world.consent.unsubscribe(token) == ("email", False)
    assert world.consent.unsubscribe(token) == ("email", True)  # idempotent
    assert decision(world) == (False, "no_consent")
    payload, _, mac = token.partition(".")
    with pytest.raises(InvalidArgument):
        world.consent.unsubscribe(payload + "." + mac[::-1])
    with pytest.raises(InvalidArgument):
        world.consent.unsubscribe("garbage")
    world.clock.advance(days=91)
    with pytest.raises(unsubscribe.TokenExpired):
        world.consent.unsubscribe(token)
    with world.uow() as uow:
        sources = [e.source for e in uow.repo.ledger(ADA)]
    assert sources[-1] == "unsubscribe_link"


@pytest.mark.notice("8.1")
@pytest.mark.rule("R-MKT-4", "R-SEC-1")
def test_staff_record_an_opt_out_by_email_with_who_recorded_it(world: World) -> None:
    sign_up(world, email=True, telephone=True)
    with pytest.raises(PermissionDenied):
        world.consent.record_opt_out(person(BOB), ADA, ["email"], False, "dpo_email")
    with pytest.raises(NotFound):
        world.consent.record_opt_out(DPO, BOB, ["email"], False, "dpo_email")
    view = world.consent.record_opt_out(DPO, ADA, ["email"], False, "dpo_email")
    assert (view.prefs.marketing_email, view.prefs.marketing_telephone) == (False, True)
    with world.uow() as uow:
        last = uow.repo.ledger(ADA)[-1]
    assert (last.channel, last.granted, last.source, last.recorded_by) == ("email", False, "dpo_email", "e" * 32)
    assert world.consent.verify_ledger(ADA)[0] is None


@pytest.mark.rule("R-WITHDRAW-1")
def test_a_withdraw_consent_request_takes_effect_when_received(world: World) -> None:
    sign_up(world, email=True, third_party=True)
    world.consent.update(person(ADA), {"cookies_analytics": True}, "preference_page")
    with world.uow() as uow:
        world.consent.on_rights_request(uow, ADA, "withdraw_consent")
        uow.commit()
    prefs = world.consent.get(person(ADA)).prefs
    assert not (prefs.marketing_email or prefs.third_party_marketing or prefs.cookies_analytics)


@pytest.mark.notice("7", "9")
@pytest.mark.rule("R-COOKIE-1", "R-MKT-3")
def test_gpc_opts_out_of_sharing_and_marketing_cookies_and_wins_over_the_same_request(world: World) -> None:
    sign_up(world, third_party=True)
    world.consent.update(person(ADA), {"cookies_marketing": True, "cookies_analytics": True}, "preference_page")
    prefs = world.consent.update(person(ADA), {"third_party": True}, "preference_page", gpc=True).prefs
    assert (prefs.third_party_marketing, prefs.cookies_marketing, prefs.cookies_analytics) == (False, False, True)
    with world.uow() as uow:
        gpc = [(e.channel, e.granted) for e in uow.repo.ledger(ADA) if e.source == "gpc"]
    assert sorted(gpc) == [("cookies_marketing", False), ("third_party", False)]


@pytest.mark.notice("6.1", "7", "9")
@pytest.mark.rule("R-COOKIE-1", "R-MKT-3")
def test_gpc_at_sign_up_wins_over_the_forms_third_party_opt_in(world: World) -> None:
    world.directory.people[ADA] = Contact("ada@example.com", "", False)
    env = envelope("identity.account.created", "uk", ADA, ev.AccountCreated(
        account_id=ADA, role="customer", home_region="uk", marketing_email=True, third_party_marketing=True,
        notice_version="2024-01", gpc=True))
    with world.uow() as uow:
        events.handlers(world.consent)["identity.account.created"](uow, env)
        uow.commit()
    prefs = world.consent.get(person(ADA)).prefs
    assert (prefs.marketing_email, prefs.third_party_marketing, prefs.cookies_marketing) == (True, False, False)
    with world.uow() as uow:
        ledger = [(e.channel, e.granted, e.source) for e in uow.repo.ledger(ADA)]
    assert ledger == [("third_party", False, "gpc"), ("cookies_marketing", False, "gpc"),
                      ("email", True, "signup_form"), ("telephone", False, "signup_form")]
    assert world.consent.can_contact(ADA, "email", "third_party_marketing").reason == "no_consent"
    assert world.consent.verify_ledger(ADA)[0] is None


@pytest.mark.notice("9")
@pytest.mark.rule("R-COOKIE-1")
def test_cookies_default_off_and_a_person_cannot_claim_another_source(world: World) -> None:
    sign_up(world)
    prefs = world.consent.get(person(ADA)).prefs
    assert not (prefs.cookies_analytics or prefs.cookies_marketing)
    with pytest.raises(InvalidArgument):
        world.consent.update(person(ADA), {"email": False}, "dpo_email")


# --- campaigns and notices ------------------------------------------------------------------------


@pytest.mark.notice("11")
@pytest.mark.rule("R-SEC-1")
@pytest.mark.parametrize("who", [person(ADA), person(BOB, role="agent"), DPO, person(BOB, role="reseller"),
                                 person(BOB, role="analyst"), Principal("service", "rights", "service"),
                                 Principal("service", "tickets", "service")])
def test_only_admins_and_the_cli_send_campaigns_publish_notices_or_record_holdings(world: World,
                                                                                  who: Principal) -> None:
    sign_up(world, email=True)
    with pytest.raises(PermissionDenied):
        world.campaigns.send(who, "Offer", "Buy", "email", "marketing", "")
    with pytest.raises(PermissionDenied):
        world.campaigns.publish_notice(who, "2025-09", "privacy", True, "x")
    with pytest.raises(PermissionDenied):
        world.campaigns.record_holding(who, ADA, "widget")
    assert queued_for(world, ADA) == []
    with world.uow() as uow:
        assert uow.repo.latest_notice() is None and uow.repo.holdings_of(ADA) == []
    assert world.campaigns.send(ADMIN, "Offer", "Buy", "email", "marketing", "").eligible == 1


@pytest.mark.notice("6.1", "8.1")
@pytest.mark.rule("R-MKT-4")
def test_a_campaign_enqueues_only_the_allowed_and_an_opt_out_before_the_send_still_counts(world: World) -> None:
    sign_up(world, email=True)
    sign_up(world, BOB, "bob@example.com")
    world.directory.people[BOB] = Contact("bob@example.com", "", False)
    result = world.campaigns.send(ADMIN, "Offer", "Buy", "email", "marketing", "")
    assert (result.audience, result.eligible, result.suppressed) == (2, 1, 1)
    world.consent.update(person(ADA), {"email": False}, "preference_page")  # after queueing, before sending
    world.sender.drain()
    assert world.mailbox.messages() == []
    assert [(m.state, m.reason) for m in queued_for(world, ADA)] == [("skipped", "no_consent")]
    with pytest.raises(PermissionDenied):
        world.campaigns.send(person(ADA), "x", "y", "email", "marketing", "")
    assert world.campaigns.send(CLI, "Svc", "Maintenance", "email", "service", "").eligible == 2


@pytest.mark.notice("4.1.5")
def test_an_update_notice_is_service_for_holders_marketing_for_others(world: World) -> None:
    sign_up(world)  # holds the product, no marketing consent
    sign_up(world, BOB, "bob@example.com", email=True)
    sign_up(world, "c" * 32, "carol@example.com")
    with world.uow() as uow:
        world.consent.record_product(uow, ADA, "widget")
        uow.commit()
    result = world.campaigns.send(ADMIN, "Widget 2", "Now faster.", "email", "marketing", "widget", "product_update")
    assert (result.audience, result.eligible) == (3, 2)
    world.sender.drain()
    [to_ada] = world.mailbox.to("ada@example.com")
    [to_bob] = world.mailbox.to("bob@example.com")
    assert "List-Unsubscribe" not in to_ada and to_bob["List-Unsubscribe"]


@pytest.mark.notice("4.1.2")
@pytest.mark.rule("R-MKT-1")
def test_a_new_notice_is_sent_to_everyone_and_recorded_as_seen(world: World) -> None:
    sign_up(world)
    world.consent.record_opt_out(DPO, ADA, [], True, "dpo_email")  # even after objecting: a service message
    version, recipients = world.campaigns.publish_notice(CLI, "2025-05", "terms", False, "Clearer wording.")
    assert recipients == 1
    world.sender.drain()
    [mail] = world.mailbox.to("ada@example.com")
    assert "terms of use" in mail["Subject"] and "Clearer wording." in mail.get_content()
    view = world.consent.get(person(ADA))
    assert view.prefs.last_notice_seen == version and not view.reconsent_required


@pytest.mark.rule("R-MKT-1")
def test_consent_given_under_an_older_notice_stays_valid_unless_the_purpose_changed(world: World) -> None:
    sign_up(world, email=True)
    world.campaigns.publish_notice(ADMIN, "2025-06", "privacy", False, "Typos.")
    assert decision(world) == (True, "consented")
    world.campaigns.publish_notice(ADMIN, "2025-07", "privacy", True, "New purpose.")
    assert world.consent.get(person(ADA)).reconsent_required
    world.consent.update(person(ADA), {"email": False}, "preference_page")
    world.consent.update(person(ADA), {"email": True}, "preference_page")
    assert decision(world) == (True, "consented")
    with world.uow() as uow:
        assert uow.repo.ledger(ADA)[-1].notice_version == "2025-07"


@pytest.mark.rule("R-MKT-1")
def test_the_chain_also_covers_who_recorded_an_entry(world: World) -> None:
    sign_up(world, email=True)
    world.consent.record_opt_out(DPO, ADA, ["email"], False, "dpo_email")
    with world.uow() as uow:
        append_only.uninstall(uow.session.connection(), "consent_ledger")  # as someone with the keys could
        uow.session.execute(update(LedgerEntry).where(LedgerEntry.seq == 4).values(recorded_by="f" * 32))
        uow.commit()
    assert world.consent.verify_ledger(ADA) == (4, 4)


@pytest.mark.notice("4.1.2", "6.1")
@pytest.mark.rule("R-MKT-1")
def test_the_ledger_records_the_privacy_notice_in_force_not_a_newer_terms_version(world: World) -> None:
    sign_up(world)
    world.campaigns.publish_notice(ADMIN, "2025-06", "privacy", False, "Typos.")
    world.campaigns.publish_notice(ADMIN, "T-2025-07", "terms", False, "New terms.")
    view = world.consent.update(person(ADA), {"email": True}, "preference_page")
    with world.uow() as uow:
        last = uow.repo.ledger(ADA)[-1]
    assert (last.channel, last.granted, last.notice_version) == ("email", True, "2025-06")
    assert view.prefs.notice_version == "2025-06"
    # A purpose change in the privacy notice, then terms published after it: a grant now is under both.
    world.campaigns.publish_notice(ADMIN, "2025-08", "privacy", True, "New purpose.")
    world.campaigns.publish_notice(ADMIN, "T-2025-09", "terms", False, "More terms.")
    assert world.consent.get(person(ADA)).reconsent_required
    view = world.consent.update(person(ADA), {"email": True}, "preference_page")
    assert not view.reconsent_required and decision(world) == (True, "consented")
    with world.uow() as uow:
        assert uow.repo.ledger(ADA)[-1].notice_version == "2025-08"


@pytest.mark.notice("4.1.2", "6.1")
@pytest.mark.rule("R-MKT-1")
def test_confirming_a_consent_after_a_purpose_change_is_one_fresh_grant_on_the_ledger(world: World) -> None:
    sign_up(world, email=True)
    world.clock.advance(days=1)
    world.campaigns.publish_notice(ADMIN, "2025-04", "privacy", True, "A new purpose.")
    assert world.consent.get(person(ADA)).reconsent_required
    assert decision(world) == (False, "reconsent_required")
    world.clock.advance(minutes=5)
    # PUT /api/v1/me/preferences {"marketing": {"email": true}} while it is already true.
    view = world.consent.update(person(ADA), {"email": True}, "preference_page")
    assert not view.reconsent_required and decision(world) == (True, "consented")
    with world.uow() as uow:
        entries = uow.repo.ledger(ADA)
    last = entries[-1]
    assert (len(entries), last.channel, last.granted, last.source, last.notice_version) == (
        4, "email", True, "preference_page", "2025-04")
    assert last.created_at.replace(tzinfo=None) == world.clock().replace(tzinfo=None)
    # Once renewed, saying yes again records nothing new.
    world.consent.update(person(ADA), {"email": True}, "preference_page")
    with world.uow() as uow:
        assert len(uow.repo.ledger(ADA)) == 4
    assert world.consent.verify_ledger(ADA) == (None, 4)


@pytest.mark.rule("R-MKT-6")
def test_the_sender_still_refuses_an_address_suppressed_through_someone_else(world: World) -> None:
    """Two accounts share a telephone number; one objects after a campaign was queued. The other's row
    cannot know (no addresses are kept), so the sender's check with the address at send time stops it."""
    sign_up(world, email=True)
    sign_up(world, BOB, "bob@example.com", email=True)
    result = world.campaigns.send(ADMIN, "Offer", "Buy", "email", "marketing", "")
    assert (result.eligible, result.suppressed) == (2, 0)
    world.clock.advance(minutes=1)
    world.consent.record_opt_out(DPO, BOB, [], True, "dpo_email")
    world.sender.drain()
    assert world.mailbox.messages() == []
    assert [(m.state, m.reason) for m in queued_for(world, ADA)] == [("skipped", "suppressed")]
    assert [(m.state, m.reason) for m in queued_for(world, BOB)] == [("skipped", "objected")]


@pytest.mark.notice("6.1", "8.1")
@pytest.mark.rule("R-MKT-4")
def test_a_retried_campaign_with_the_same_key_is_one_campaign(world: World) -> None:
    sign_up(world, email=True)
    first = world.campaigns.send(ADMIN, "Offer", "Buy", "email", "marketing", "", key="k-1")
    again = world.campaigns.send(ADMIN, "Offer", "Buy", "email", "marketing", "", key="k-1")
    assert again == first and (first.audience, first.eligible, first.suppressed) == (1, 1, 0)
    with pytest.raises(Conflict):
        world.campaigns.send(ADMIN, "Offer", "Buy now", "email", "marketing", "", key="k-1")
    with pytest.raises(InvalidArgument):
        world.campaigns.send(ADMIN, "Offer", "Buy", "email", "marketing", "", key="with space")
    # Another admin's key is their own; no key is a new campaign each time.
    other = world.campaigns.send(person("f" * 32, role="admin"), "Offer", "Buy", "email", "marketing", "", key="k-1")
    assert other.id != first.id
    assert world.campaigns.send(ADMIN, "Offer", "Buy", "email", "marketing", "").id != first.id
    assert len(queued_for(world, ADA)) == 3
    world.sender.drain()
    assert len(world.mailbox.to("ada@example.com")) == 3


@pytest.mark.notice("6.1")
def test_concurrent_calls_with_one_key_make_one_campaign(world: World) -> None:
    for n in range(50):
        sign_up(world, f"{n:032d}", f"p{n}@example.com", email=True)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: world.campaigns.send(ADMIN, "Offer", "Buy", "email", "marketing", "",
                                                               key="same"), range(4)))
    assert len({r.id for r in results}) == 1 and results[0].eligible == 50
    with world.uow() as uow:
        assert len(list(uow.session.scalars(select(OutgoingMessage)))) == 50


@pytest.mark.notice("4.1.2")
def test_publishing_the_same_notice_again_answers_the_first_publication(world: World) -> None:
    sign_up(world)
    assert world.campaigns.publish_notice(ADMIN, "2025-05", "terms", False, "Clearer.") == ("2025-05", 1)
    sign_up(world, BOB, "bob@example.com")  # joined since: the retry does not tell them twice or anew
    assert world.campaigns.publish_notice(ADMIN, "2025-05", "terms", False, "Clearer.") == ("2025-05", 1)
    with pytest.raises(Conflict):
        world.campaigns.publish_notice(ADMIN, "2025-05", "terms", True, "Clearer.")
    assert len(queued_for(world, ADA)) == 1 and queued_for(world, BOB) == []


@pytest.mark.notice("6.2")
@pytest.mark.rule("R-MKT-2")
def test_offers_chosen_from_product_holdings_reach_only_holders_who_have_not_objected(world: World) -> None:
    """Choosing an offer by what a customer holds is profiling (6.2): only those who have not objected."""
    sign_up(world, email=True)
    sign_up(world, BOB, "bob@example.com", email=True)
    sign_up(world, "c" * 32, "carol@example.com", email=True)  # does not hold the product
    world.directory.people[BOB] = Contact("bob@example.com", "+442079460999", False)  # his own phone
    with world.uow() as uow:
        for holder in (ADA, BOB):
            world.consent.record_product(uow, holder, "widget")
        uow.commit()
    world.consent.record_opt_out(DPO, BOB, [], True, "dpo_email")  # Bob objects to direct marketing
    result = world.campaigns.send(ADMIN, "Widget add-on", "Works with yours.", "email", "marketing", "widget")
    assert (result.audience, result.eligible) == (2, 1)
    world.sender.drain()
    assert world.mailbox.to("ada@example.com")
    assert not world.mailbox.to("bob@example.com") and not world.mailbox.to("carol@example.com")
