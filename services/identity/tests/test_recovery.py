"""Refresh tokens, e-mail verification and password reset: single use, expiring, no enumeration."""

from __future__ import annotations

from datetime import timedelta

import pytest
from identity.models import AccountToken
from identity.passwords import Passwords
from identity.recovery import CHANGE, RESET, VERIFY
from identity.service import IdentityService
from servicekit.db import utcnow
from servicekit.errors import Conflict, InvalidArgument, Throttled, Unauthenticated
from sqlalchemy import update

from .conftest import rectified, requested, signup


@pytest.mark.rule("R-SEC-2")
def test_refresh_rotates_and_a_replayed_refresh_token_ends_the_session(service: IdentityService) -> None:
    service.sign_up(signup())
    first = service.login("ada", "correct horse battery", "", "")
    second = service.refresh(first.refresh)
    assert second.refresh != first.refresh and service.authenticate(second.access)
    with pytest.raises(Unauthenticated):
        service.refresh(first.refresh)  # used twice: stolen, so the session ends
    with pytest.raises(Unauthenticated):
        service.refresh(second.refresh)
    with pytest.raises(Unauthenticated):
        service.authenticate(second.access)


@pytest.mark.rule("R-SEC-2")
@pytest.mark.parametrize("forged", ["", "nope", "abc.def", "0" * 32 + ".x"])
def test_forged_refresh_tokens_are_refused(service: IdentityService, forged: str) -> None:
    with pytest.raises(Unauthenticated):
        service.refresh(forged)


@pytest.mark.notice("3.2.2")
def test_sign_up_asks_for_a_verification_message_and_the_token_works_once(service: IdentityService) -> None:
    account = service.sign_up(signup())
    [message] = requested(service, VERIFY)
    assert message.account_id == account.id and message.token_id
    claimed = service.recovery.claim(message.token_id)
    token = claimed.token
    assert claimed.purpose == VERIFY and message.token_id in token and claimed.email == ""
    with pytest.raises(Conflict):
        service.recovery.claim(message.token_id)  # the secret is shown once
    with service.uow() as uow:
        stored = uow.repo.token(message.token_id)
        assert stored is not None and stored.secret_hash and token.split(".")[1] not in stored.secret_hash
    service.recovery.confirm_email(token)
    with pytest.raises(InvalidArgument):
        service.recovery.confirm_email(token)
    with service.uow() as uow:
        verified = uow.repo.account(account.id)
        assert verified is not None and verified.email_verified_at is not None


@pytest.mark.notice("3.2.2")
@pytest.mark.rule("R-RECT-1")
def test_a_changed_address_is_verified_again(service: IdentityService) -> None:
    account = service.sign_up(signup())
    service.rectify(account.id, {"email": "ada@lovelace.example"})
    assert len(requested(service, VERIFY)) == 2


@pytest.mark.notice("3.2.2")
def test_a_new_address_is_applied_only_when_the_link_sent_to_it_is_used(service: IdentityService) -> None:
    ada = service.sign_up(signup())
    old = service.recovery.claim(requested(service, VERIFY)[0].token_id).token
    me = service.authenticate(service.login("ada", "correct horse battery", "", "").access)
    service.update_me(me, {"email": "ada@lovelace.example"})
    assert (service.get_me(me).email, service.get_me(me).pending_email) == ("ada@example.com", "ada@lovelace.example")
    message = requested(service, VERIFY)[-1]
    claimed = service.recovery.claim(message.token_id)
    # Sent to the new address (the event names no account, so the sender writes to the one claimed).
    assert (message.account_id, claimed.purpose, claimed.email) == ("", CHANGE, "ada@lovelace.example")
    assert rectified(service) == []  # nothing applied yet, nothing published
    service.recovery.confirm_email(claimed.token)
    account = service.get_me(me)
    assert (account.email, account.pending_email) == ("ada@lovelace.example", "")
    assert account.email_verified_at is not None
    assert [(e.account_id, list(e.fields)) for e in rectified(service)] == [(ada.id, ["email"])]
    assert service.login("ada@lovelace.example", "correct horse battery", "", "").access
    for used in (claimed.token, old):  # single use; and a link sent to the old address verifies nothing now
        with pytest.raises(InvalidArgument):
            service.recovery.confirm_email(used)


@pytest.mark.notice("3.2.2")
def test_a_pending_address_taken_meanwhile_is_refused_at_verification(service: IdentityService) -> None:
    service.sign_up(signup())
    me = service.authenticate(service.login("ada", "correct horse battery", "", "").access)
    service.update_me(me, {"email": "ada@lovelace.example"})
    link = service.recovery.claim(requested(service, VERIFY)[-1].token_id).token
    service.sign_up(signup(username="bob", email="Ada@Lovelace.example"))
    with pytest.raises(InvalidArgument) as refused:
        service.recovery.confirm_email(link)
    assert refused.value.code == "invalid_token"  # the answer to an expired link
    account = service.get_me(me)
    assert (account.email, account.email_verified_at) == ("ada@example.com", None)
    assert rectified(service) == []


@pytest.mark.rule("R-SEC-2")
def test_password_reset_sets_a_new_password_and_revokes_every_session(service: IdentityService) -> None:
    service.sign_up(signup())
    session = service.login("ada", "correct horse battery", "", "")
    service.recovery.request_reset("ADA@example.com", "198.51.100.7")
    [message] = requested(service, RESET)
    token = service.recovery.claim(message.token_id).token
    with pytest.raises(InvalidArgument):
        service.recovery.confirm_reset(token, "password1234")  # weak: refused, token still good
    assert service.recovery.confirm_reset(token, "a brand new passphrase")
    with pytest.raises(Unauthenticated):
        service.authenticate(session.access)
    with pytest.raises(InvalidArgument):
        service.recovery.confirm_reset(token, "yet another passphrase")  # single use
    assert service.login("ada", "a brand new passphrase", "", "").access


@pytest.mark.notice("11")
def test_reset_of_an_unknown_address_looks_the_same_and_sends_nothing(service: IdentityService) -> None:
    service.sign_up(signup())
    assert service.recovery.request_reset("nobody@example.com", "") is None
    assert service.recovery.request_reset("not an address", "") is None
    assert requested(service, RESET) == []


@pytest.mark.rule("R-SEC-2")
def test_reset_tokens_expire_and_cannot_serve_as_verification(service: IdentityService) -> None:
    service.sign_up(signup())
    service.recovery.request_reset("ada@example.com", "")
    [message] = requested(service, RESET)
    token = service.recovery.claim(message.token_id).token
    with pytest.raises(InvalidArgument):
        service.recovery.confirm_email(token)  # wrong purpose
    with service.uow() as uow:
        uow.session.execute(update(AccountToken).where(AccountToken.id == message.token_id)
                            .values(expires_at=utcnow() - timedelta(seconds=1)))
        uow.commit()
    with pytest.raises(InvalidArgument) as expired:
        service.recovery.confirm_reset(token, "a brand new passphrase")
    assert expired.value.code == "invalid_token"


@pytest.mark.notice("11")
def test_reset_requests_are_capped_per_address_known_or_not(service: IdentityService) -> None:
    service.sign_up(signup())
    for address in ("ada@example.com", "nobody@example.com"):
        for _ in range(3):
            service.recovery.request_reset(address, "")
        with pytest.raises(Throttled):
            service.recovery.request_reset(address, "")


@pytest.mark.notice("4.1.1", "11")
def test_sign_ups_are_capped_per_address(service: IdentityService) -> None:
    for n in range(20):
        service.sign_up(signup(username=f"user{n}", email=f"u{n}@example.com", ip_address="198.51.100.9"))
    with pytest.raises(Throttled):
        service.sign_up(signup(username="user99", email="u99@example.com", ip_address="198.51.100.9"))
    assert service.sign_up(signup(username="user98", email="u98@example.com", ip_address="198.51.100.10"))


@pytest.mark.rule("R-SEC-2")
def test_a_hash_made_with_weaker_parameters_is_upgraded_at_login(service: IdentityService) -> None:
    weak = Passwords(512, 1, 1).hash("correct horse battery")
    account = service.sign_up(signup())
    with service.uow() as uow:
        stored = uow.repo.account(account.id)
        assert stored is not None
        stored.password_hash = weak
        uow.commit()
    service.login("ada", "correct horse battery", "", "")
    with service.uow() as uow:
        upgraded = uow.repo.account(account.id)
        assert upgraded is not None and upgraded.password_hash != weak and "m=1024" in upgraded.password_hash


@pytest.mark.notice("3.2.3")
def test_the_browser_time_zone_is_recorded_and_validated(service: IdentityService) -> None:
    account = service.sign_up(signup())
    service.login("ada", "correct horse battery", "", "", time_zone="Europe/London")
    tables = {name: (cols, rows) for name, _, cols, rows in service.export(account.id).tables}
    cols, rows = tables["sign_ins"]
    assert dict(zip(cols, rows[0], strict=True))["time_zone"] == "Europe/London"
    with pytest.raises(InvalidArgument):
        service.login("ada", "correct horse battery", "", "", time_zone="Mars/Olympus")
