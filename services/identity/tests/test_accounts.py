"""Identity's rules against a real, migrated database (SQLite here; the system tests use PostgreSQL in CI)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import suppress
from datetime import UTC, datetime, timedelta

import pytest
from identity.__main__ import MIGRATIONS
from identity.governance import DECLARATION
from identity.models import Account, LegalHold, LoginThrottle, Outbox, PurgeRun
from identity.passwords import Passwords
from identity.recovery import ADDRESS_LIFETIME, EMAIL_CHANGE_EXISTING, USERNAME_TAKEN, VERIFY
from identity.service import IdentityService, NewStaff
from kaseum.events.v1 import envelope_pb2, identity_events_pb2
from servicekit import migrations
from servicekit.db import make_engine, utcnow
from servicekit.errors import (
    Conflict,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Throttled,
    Unauthenticated,
    WrongRegion,
)
from servicekit.holds import placed, released
from servicekit.retention import Purger
from servicekit.testing import Clock, eventually
from sqlalchemy import insert, select

from .conftest import outbox_events, rectified, requested, signup


@pytest.mark.notice("4.1.1")
@pytest.mark.rule("R-SEC-2")
def test_sign_up_hashes_with_argon2id_and_writes_the_event_in_the_same_transaction(service: IdentityService) -> None:
    account = service.sign_up(signup())
    assert account.password_hash.startswith("$argon2id$")
    assert "correct horse battery" not in account.password_hash
    with service.uow() as uow:
        rows = uow.session.scalars(select(Outbox)).all()
        assert [r.subject for r in rows] == ["uk.identity.account.created", "uk.identity.message.requested"]
        assert b"ada@example.com" not in rows[0].data and b"Lovelace" not in rows[0].data  # ids, not copies


@pytest.mark.notice("3.2.1")
def test_a_taken_address_answers_like_a_sign_up_and_tells_its_owner(service: IdentityService) -> None:
    first = service.sign_up(signup())
    decoy = service.sign_up(signup(username="ada2", email="ADA@EXAMPLE.COM"))
    assert decoy.id != first.id and decoy.username == "ada2"
    with service.uow() as uow:
        assert uow.repo.account(decoy.id) is None
        assert uow.repo.account_by_login("ada2") is None
    owner_told = requested(service)[-1]
    assert (owner_told.kind, owner_told.account_id, owner_told.token_id) == ("signup_existing", first.id, "")


@pytest.mark.notice("3.2.1", "11")
def test_a_taken_username_answers_like_a_sign_up_and_tells_the_address_once(service: IdentityService) -> None:
    first = service.sign_up(signup())
    decoy = service.sign_up(signup(username="ADA", email="someone@example.com"))
    assert decoy.id != first.id and decoy.region == first.region
    with service.uow() as uow:
        assert uow.repo.account(decoy.id) is None
        assert uow.repo.account_by_login("someone@example.com") is None
    told = requested(service)[-1]
    assert told.kind == USERNAME_TAKEN and told.account_id == "" and told.token_id
    claimed = service.recovery.claim(told.token_id)
    assert (claimed.email, claimed.purpose, claimed.token) == ("someone@example.com", USERNAME_TAKEN, "")
    with pytest.raises(NotFound):
        service.recovery.claim(told.token_id)  # given once, then forgotten


@pytest.mark.notice("12.1")
@pytest.mark.rule("R-RET-1")
def test_an_unclaimed_address_is_purged_when_it_expires(service: IdentityService) -> None:
    service.sign_up(signup())
    service.sign_up(signup(username="ada", email="someone@example.com"))
    told = requested(service)[-1]
    purge(service, utcnow() + ADDRESS_LIFETIME + timedelta(minutes=1))
    with service.uow() as uow:
        assert uow.repo.address_message(told.token_id) is None


@pytest.mark.notice("3.2.1")
def test_an_admin_making_staff_is_told_plainly_of_a_taken_username(service: IdentityService) -> None:
    service.sign_up(signup())
    with pytest.raises(Conflict):
        service.create_user(NewStaff(role="agent", username="Ada", email="agent@example.com",
                                     password="correct horse battery staple"))


@pytest.mark.rule("R-XFER-2")
def test_subjects_of_another_region_are_refused(service: IdentityService) -> None:
    with pytest.raises(WrongRegion):
        service.sign_up(signup(country="DE"))


@pytest.mark.notice("4.1.1")
@pytest.mark.rule("R-SEC-2")
def test_login_by_username_or_email_and_logout_revokes(service: IdentityService) -> None:
    service.sign_up(signup())
    token = service.login("ADA@example.com", "correct horse battery", "203.0.113.9",
                             "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0")
    principal = service.authenticate(token.access)
    assert principal.role == "customer" and principal.region == "uk"
    # The token names the customer's organisation and country (ids and codes, never names).
    account = service.get_me(principal)
    assert principal.organisation_id == account.organisation_id and principal.country == "GB"
    service.logout(principal)
    with pytest.raises(Unauthenticated):
        service.authenticate(token.access)


@pytest.mark.notice("11")
def test_bad_login_is_the_same_error_whether_or_not_the_account_exists(service: IdentityService) -> None:
    service.sign_up(signup())
    with pytest.raises(Unauthenticated) as wrong:
        service.login("ada", "wrong password!!", "", "")
    with pytest.raises(Unauthenticated) as unknown:
        service.login("nobody", "wrong password!!", "", "")
    assert (wrong.value.code, wrong.value.message) == (unknown.value.code, unknown.value.message)


@pytest.mark.notice("3.2.3")
def test_sign_in_records_technical_data_in_the_export(service: IdentityService) -> None:
    account = service.sign_up(signup())
    service.login("ada", "correct horse battery", "203.0.113.9",
                  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/120.0.0.0 Safari/537.36")
    tables = {name: (cols, rows) for name, _, cols, rows in service.export(account.id).tables}
    cols, rows = tables["sign_ins"]
    row = dict(zip(cols, rows[0], strict=True))
    assert row["ip_address"] == "203.0.113.9" and row["browser"] == "Chrome" and row["os"] == "Windows"
    assert "password_hash" not in tables["accounts"][0]


@pytest.mark.notice("12.1", "13.1.3")
@pytest.mark.rule("R-RET-2", "R-ERASE-1")
def test_a_subject_under_a_legal_hold_is_not_erased_and_the_hold_is_reported(service: IdentityService) -> None:
    account = service.sign_up(signup())
    token = service.login("ada", "correct horse battery", "203.0.113.9", "curl/8")
    with service.uow() as uow:
        placed(uow.session, LegalHold, "h1", "subject", account.id, "complaint", datetime(2031, 5, 1, tzinfo=UTC))
        placed(uow.session, LegalHold, "h2", "ticket", account.id, "claim", datetime(2031, 5, 1, tzinfo=UTC))
        uow.commit()
    erasure = service.erase(account.id)
    assert erasure.erased == 0
    kept = dict(erasure.kept)
    assert "legal hold h1 (complaint; UK GDPR Art. 17(3)(e)), review on 2031-05-01" in kept.values()
    assert "h2" not in " ".join(kept.values())  # a ticket hold is not a hold on the person
    tables = {name: rows for name, _, _, rows in service.export(account.id).tables}
    assert tables["accounts"] and tables["sessions"] and tables["sign_ins"]
    assert service.authenticate(token.access).subject_id == account.id
    with service.uow() as uow:
        assert not [r for r in uow.session.scalars(select(Outbox)) if r.subject.endswith("account.erased")]
    # Released, the next request erases.
    with service.uow() as uow:
        released(uow.session, LegalHold, "h1", "subject", account.id)
        uow.commit()
    assert service.erase(account.id).erased > 0
    assert not {name: rows for name, _, _, rows in service.export(account.id).tables}["accounts"]


@pytest.mark.notice("13.1.3")
@pytest.mark.rule("R-ERASE-1")
def test_erase_removes_the_account_sessions_and_technical_data(service: IdentityService) -> None:
    account = service.sign_up(signup())
    token = service.login("ada", "correct horse battery", "203.0.113.9", "curl/8")
    session_id = service.authenticate(token.access).session_id
    announced: list[str] = []
    service.announce = announced.extend  # what the gateways are told (the region's revocation bucket)
    assert service.erase(account.id).erased == 4  # account, session, sign-in, verification token
    assert all(not rows for _, _, _, rows in service.export(account.id).tables)
    assert announced == [session_id]
    with pytest.raises(Unauthenticated):
        service.authenticate(token.access)
    with pytest.raises(Unauthenticated):
        service.refresh(token.refresh)
    with service.uow() as uow:
        erased = [envelope_pb2.Envelope.FromString(r.data) for r in uow.session.scalars(select(Outbox))
                  if r.subject == "uk.identity.account.erased"]
    assert len(erased) == 1
    event = identity_events_pb2.AccountErased()
    assert erased[0].payload.Unpack(event) and event.account_id == account.id


@pytest.mark.notice("13.1.3")
@pytest.mark.rule("R-ERASE-1")
def test_every_erased_session_is_revoked_and_a_second_erase_changes_nothing(service: IdentityService) -> None:
    account = service.sign_up(signup())
    tokens = [service.login("ada", "correct horse battery", "203.0.113.9", "curl/8") for _ in range(2)]
    sessions = sorted(service.authenticate(t.access).session_id for t in tokens)
    announced: list[str] = []
    service.announce = announced.extend
    assert service.erase(account.id).erased == 6  # account, two sessions, two sign-ins, verification token
    assert sorted(announced) == sessions
    announced.clear()
    again = service.erase(account.id)
    assert again.erased == 0 and announced == []
    with service.uow() as uow:
        assert len([r for r in uow.session.scalars(select(Outbox)) if r.subject == "uk.identity.account.erased"]) == 1


@pytest.mark.notice("13.1.2")
@pytest.mark.rule("R-RECT-1")
def test_rectify_applies_valid_corrections_and_reports_invalid_ones(service: IdentityService) -> None:
    account = service.sign_up(signup())
    result = service.rectify(account.id, {"last_name": "Byron", "email": "not-an-address"})
    assert result.applied == ["last_name"] and [f for f, _ in result.rejected] == ["email"]


@pytest.mark.rule("R-SEC-1")
def test_staff_need_a_known_staff_role(service: IdentityService) -> None:
    staff = service.create_user(NewStaff(role="agent", username="agent1", email="a1@kaseum.example",
                                         password="correct horse battery"))
    assert staff.role == "agent" and staff.region == "uk"
    for role in ("customer", "root", ""):
        with pytest.raises(InvalidArgument) as refused:
            service.create_user(NewStaff(role=role, username="someone", email="s@kaseum.example",
                                         password="correct horse battery"))
        assert refused.value.code == "invalid_role"


@pytest.mark.rule("R-SEC-2")
@pytest.mark.parametrize("weak", ["password1234", "qwertyuiop123", "Lovelace2024", "aaaaaaaaaaaa"])
def test_common_or_guessable_passwords_are_refused(service: IdentityService, weak: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        service.sign_up(signup(password=weak))
    assert refused.value.code == "weak_password" and weak not in refused.value.message


@pytest.mark.notice("11")
@pytest.mark.rule("R-SEC-2")
def test_failed_logins_back_off_exponentially_and_never_lock_for_good(service: IdentityService) -> None:
    service.sign_up(signup())
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            service.login("ada", "wrong password!!", "198.51.100.7", "")
    with pytest.raises(Throttled) as throttled:
        service.login("ada", "correct horse battery", "198.51.100.7", "")
    assert 1 <= throttled.value.retry_after <= 2
    # Back-off ends by itself: move the clock past it and the right password works again.
    with service.uow() as uow:
        for row in uow.session.scalars(select(LoginThrottle)):
            row.blocked_until = row.updated_at
        uow.commit()
    token = service.login("ada", "correct horse battery", "198.51.100.7", "")
    assert token.access


@pytest.mark.rule("R-SEC-2")
def test_the_back_off_is_per_account_whichever_login_is_typed(service: IdentityService) -> None:
    service.sign_up(signup())
    for login in ("ada", "ADA@example.com", "Ada", "ada@example.com", "ada"):
        with pytest.raises(Unauthenticated):
            service.login(login, "wrong password!!", "", "")
    for login in ("ada", "ada@example.com"):  # five failures in all: both forms wait
        with pytest.raises(Throttled):
            service.login(login, "correct horse battery", "", "")
    with service.uow() as uow:
        assert len(uow.session.scalars(select(LoginThrottle)).all()) == 1


@pytest.mark.rule("R-SEC-2")
def test_an_unknown_login_is_throttled_exactly_like_a_known_one(service: IdentityService) -> None:
    service.sign_up(signup())
    outcomes = []
    for login in ("ada", "nobody"):
        for _ in range(5):
            with pytest.raises(Unauthenticated):
                service.login(login, "wrong password!!", "", "")
        with pytest.raises(Throttled) as throttled:
            service.login(login, "wrong password!!", "", "")
        outcomes.append((throttled.value.code, throttled.value.retry_after))
    assert outcomes[0] == outcomes[1]


@pytest.mark.notice("3.2.3", "11")
def test_the_throttle_table_holds_no_login_or_address(service: IdentityService) -> None:
    with pytest.raises(Unauthenticated):
        service.login("ada@example.com", "wrong password!!", "198.51.100.7", "")
    with service.uow() as uow:
        keys = [row.key for row in uow.session.scalars(select(LoginThrottle))]
    # (Whole values: a hex digest may well contain "ada" by chance.)
    assert len(keys) == 2 and not any("ada@example.com" in k or "198.51.100.7" in k for k in keys)


@pytest.mark.notice("3.2.3", "13.1.1", "13.1.3")
@pytest.mark.rule("R-ERASE-1", "R-SEC-2")
def test_the_accounts_failed_sign_ins_are_exported_and_erased_with_it(service: IdentityService) -> None:
    account = service.sign_up(signup())
    other = service.sign_up(signup(username="grace", email="grace@example.com"))
    for login, who in (("ada", "203.0.113.9"), ("ada@example.com", "203.0.113.9"), ("grace", "198.51.100.7")):
        with pytest.raises(Unauthenticated):
            service.login(login, "wrong password!!", who, "")
    exported = {name: (columns, rows) for name, _, columns, rows in service.export(account.id).tables}
    columns, rows = exported["login_throttle"]
    assert [dict(zip(columns, row, strict=True))["failures"] for row in rows] == ["2"]
    assert service.erase(account.id).erased == 3  # account, its back-off, verification token
    with service.uow() as uow:
        left = {row.key: row.failures for row in uow.session.scalars(select(LoginThrottle))}
    # The other account's and the addresses' counts stay: they are not the erased subject's.
    assert sorted(left.values()) == [1, 1, 2] and not any(account.id in key for key in left)
    assert any(other.id in key for key in left)


@pytest.mark.notice("3.2.3")
@pytest.mark.rule("R-SEC-2")
def test_sessions_are_listed_and_signed_out_everywhere(service: IdentityService) -> None:
    service.sign_up(signup())
    first = service.login("ada", "correct horse battery", "", "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0")
    second = service.login("ada", "correct horse battery", "", "curl/8")
    me = service.authenticate(second.access)
    sessions = service.list_sessions(me)
    assert len(sessions) == 2 and {s.browser for s in sessions} == {"Firefox", "curl"}
    assert service.revoke_sessions(me) == 2
    for token in (first, second):
        with pytest.raises(Unauthenticated):
            service.authenticate(token.access)


@pytest.mark.rule("R-SEC-2")
def test_changing_the_password_revokes_every_other_session(service: IdentityService) -> None:
    service.sign_up(signup())
    other = service.login("ada", "correct horse battery", "", "")
    current = service.login("ada", "correct horse battery", "", "")
    me = service.authenticate(current.access)
    with pytest.raises(PermissionDenied):
        service.change_password(me, "not my password", "an entirely new passphrase")
    with pytest.raises(InvalidArgument):
        service.change_password(me, "correct horse battery", "password1234")
    service.change_password(me, "correct horse battery", "an entirely new passphrase")
    assert service.authenticate(current.access).session_id == me.session_id
    with pytest.raises(Unauthenticated):
        service.authenticate(other.access)
    with pytest.raises(Unauthenticated):
        service.login("ada", "correct horse battery", "", "")
    assert service.login("ada", "an entirely new passphrase", "", "")


@pytest.mark.notice("3.2.3", "12.1")
@pytest.mark.rule("R-RET-1")
def test_technical_data_is_purged_after_its_retention_period(service: IdentityService) -> None:
    account = service.sign_up(signup())
    service.login("ada", "correct horse battery", "203.0.113.9", "curl/8")
    assert purge(service, utcnow() + timedelta(days=89))["sign_ins"] == 0
    tables = {name: rows for name, _, _, rows in service.export(account.id).tables}
    assert tables["sign_ins"]
    assert purge(service, utcnow() + timedelta(days=91))["sign_ins"] == 1
    tables = {name: rows for name, _, _, rows in service.export(account.id).tables}
    assert not tables["sign_ins"] and tables["sessions"]
    # The session record goes 90 days after the session ended (30 days after its last refresh).
    assert purge(service, utcnow() + timedelta(days=121))["sessions"] == 1
    tables = {name: rows for name, _, _, rows in service.export(account.id).tables}
    assert not tables["sessions"] and tables["accounts"]


@pytest.mark.notice("12.1")
@pytest.mark.rule("R-RET-2")
def test_a_legal_hold_on_the_subject_keeps_their_technical_data(service: IdentityService) -> None:
    account = service.sign_up(signup())
    service.login("ada", "correct horse battery", "203.0.113.9", "curl/8")
    with service.uow() as uow:
        placed(uow.session, LegalHold, "h1", "subject", account.id, "complaint", utcnow() + timedelta(days=400))
        uow.commit()
    assert purge(service, utcnow() + timedelta(days=200))["sign_ins"] == 0
    assert {name: rows for name, _, _, rows in service.export(account.id).tables}["sign_ins"]


@pytest.mark.notice("13.1.5")
@pytest.mark.rule("R-RESTRICT-1")
def test_restriction_is_published_for_other_services(service: IdentityService) -> None:
    account = service.sign_up(signup())
    service.set_restricted(account.id, True)
    service.set_restricted(account.id, True)  # no second event for no change
    service.set_restricted(account.id, False)
    with service.uow() as uow:
        subjects = [r.subject for r in uow.session.scalars(select(Outbox).order_by(Outbox.created_at))]
    assert subjects.count("uk.identity.account.restricted") == 2


def purge(service: IdentityService, now: datetime) -> dict[str, int]:
    """One run of identity's retention purge (the schedule in identity/governance.py) at `now`."""
    purger = Purger(DECLARATION.retention, service.uow.session_factory, PurgeRun, Clock(now),
                    sleep=lambda _s: None)
    return {result.rule: result.purged for result in purger.run_once()}


class CountingPasswords(Passwords):
    """The real hasher, counting verifications: each login path must cost the same work."""

    def __init__(self) -> None:
        super().__init__(1024, 1, 1)
        self.verified = 0
        self.hashed = 0

    def verify(self, stored: str | None, password: str) -> bool:
        self.verified += 1
        return super().verify(stored, password)

    def hash(self, password: str) -> str:
        self.hashed += 1
        return super().hash(password)


@pytest.mark.notice("11")
def test_unknown_login_costs_one_hash_like_a_wrong_password(service: IdentityService) -> None:
    service.sign_up(signup())
    counting = CountingPasswords()
    service.passwords = counting
    for login in ("ada", "nobody"):
        before = counting.verified
        with pytest.raises(Unauthenticated):
            service.login(login, "wrong password!!", "", "")
        assert counting.verified - before == 1, login


@pytest.mark.rule("R-SEC-2")
def test_a_password_changed_while_a_login_verifies_the_old_one_signs_nobody_in(service: IdentityService) -> None:
    account = service.sign_up(signup())
    me = service.authenticate(service.login("ada", "correct horse battery", "", "").access)
    other_request = ThreadPoolExecutor(1)
    plain = service.passwords

    class ChangedMeanwhile(Passwords):
        """Verifies as ever, while another request changes the password."""

        def verify(self, stored: str | None, password: str) -> bool:
            ok = super().verify(stored, password)
            service.passwords = plain
            change = other_request.submit(service.change_password, me, "correct horse battery",
                                          "another fine passphrase")
            # On PostgreSQL the change waits for the row the login has written (uncommitted) meanwhile.
            with suppress(FutureTimeout):
                change.result(timeout=1)
            return ok

    service.passwords = ChangedMeanwhile(1024, 1, 1)
    if service.uow.concurrent_writers:
        # The login commits first; the change then ends its session with the others.
        tokens = service.login("ada", "correct horse battery", "", "")
        other_request.shutdown(wait=True)
        with pytest.raises(Unauthenticated):
            service.authenticate(tokens.access)
    else:
        # The change commits first; the login's write finds another password and is a failure.
        with pytest.raises(Unauthenticated):
            service.login("ada", "correct horse battery", "", "")
        other_request.shutdown(wait=True)
        with service.uow() as uow:
            assert {row.key.split(":")[0]: row.failures for row in uow.session.scalars(select(LoginThrottle))} == {
                "login": 1}
    with service.uow() as uow:
        assert [s.id for s in uow.repo.live_sessions(account.id, utcnow())] == [me.session_id]


@pytest.mark.rule("R-SEC-2")
def test_a_wrong_password_leaves_no_row_and_no_connection_behind(service: IdentityService) -> None:
    account = service.sign_up(signup())
    engine = service.uow.session_factory.kw["bind"]
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            service.login("ada", "wrong password!!", "", "")
    eventually(lambda: engine.pool.checkedout() == 0)  # a wrong password's draft is rolled back on the helper
    with service.uow() as uow:
        assert uow.repo.live_sessions(account.id, utcnow()) == []
    assert outbox_events(service, "identity.session.started", identity_events_pb2.SessionStarted) == []
    service.login("ada", "correct horse battery", "", "")
    assert engine.pool.checkedout() == 0
    assert len(outbox_events(service, "identity.session.started", identity_events_pb2.SessionStarted)) == 1


@pytest.mark.notice("3.2.1")
def test_a_sign_up_that_clashes_costs_one_hash_like_a_new_account(service: IdentityService) -> None:
    counting = CountingPasswords()
    service.passwords = counting
    for attempt in (signup(), signup(username="ada", email="new@example.com"),
                    signup(username="someone_new", email="ada@example.com")):
        before = counting.hashed
        service.sign_up(attempt)
        assert counting.hashed - before == 1, attempt.username


@pytest.mark.notice("11")
@pytest.mark.rule("R-SEC-2")
def test_concurrent_first_failures_on_one_key_all_count(service: IdentityService) -> None:

    def fail_once(_: int) -> str:
        try:
            service.login("someone", "wrong password!!", "203.0.113.50", "")
        except (Unauthenticated, Throttled) as exc:
            return type(exc).__name__
        return "ok"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(fail_once, range(8)))
    assert set(outcomes) <= {"Unauthenticated", "Throttled"}, outcomes
    with service.uow() as uow:
        rows = {row.key.split(":")[0]: row.failures for row in uow.session.scalars(select(LoginThrottle))}
    assert rows["login"] + outcomes.count("Throttled") >= 8


@pytest.mark.notice("12.1")
@pytest.mark.rule("R-RET-1")
def test_an_inactive_customer_is_warned_then_reported_dormant_unless_they_sign_in(service: IdentityService) -> None:
    sleeper = service.sign_up(signup())
    waker = service.sign_up(signup(username="bob", email="bob@example.com"))
    staff = service.create_user(NewStaff(role="agent", username="agent1", email="agent1@example.com",
                                         password="correct horse battery staple"))
    start = utcnow()
    assert service.review_inactive(start + timedelta(days=729)) == (0, 0)
    warned_at = start + timedelta(days=731)
    assert service.review_inactive(warned_at) == (2, 0)  # both customers; staff are not customers
    assert {m.account_id for m in requested(service, "inactivity_warning")} == {sleeper.id, waker.id}
    assert service.review_inactive(warned_at + timedelta(days=1)) == (0, 0)  # warned once
    service.login("bob", "correct horse battery", "", "")  # Bob answers the warning…
    with service.uow() as uow:  # …five days after it (the service reads the real clock)
        bob = uow.repo.account(waker.id)
        assert bob is not None and bob.inactivity_warned_at is None
        bob.last_active_at = warned_at + timedelta(days=5)
        uow.commit()
    assert service.review_inactive(warned_at + timedelta(days=31)) == (0, 1)
    with service.uow() as uow:
        subjects = [(r.subject, r.data) for r in uow.session.scalars(select(Outbox))
                    if r.subject.endswith("account.dormant")]
    assert len(subjects) == 1 and sleeper.id.encode() in subjects[0][1] and waker.id.encode() not in subjects[0][1]
    assert service.review_inactive(warned_at + timedelta(days=60)) == (0, 0)  # reported once
    assert staff.id not in {m.account_id for m in requested(service, "inactivity_warning")}


def shown(account: Account) -> dict[str, object]:
    """What the caller is shown of their account (grpc_api.account_message), less the pending address."""
    return {"email": account.email, "verified": account.email_verified_at is not None,
            "job_title": account.job_title, "pending": bool(account.pending_email)}


@pytest.mark.notice("3.2.2")
def test_changing_to_another_accounts_address_answers_like_a_free_one_and_changes_nothing(
        service: IdentityService) -> None:
    ada = service.sign_up(signup())
    bob = service.sign_up(signup(username="bob", email="bob@example.com"))
    cy = service.sign_up(signup(username="cyd", email="cy@example.com"))
    me = service.authenticate(service.login("ada", "correct horse battery", "", "").access)
    them = service.authenticate(service.login("cyd", "correct horse battery", "", "").access)
    free = service.update_me(me, {"email": "ada.new@example.com", "job_title": "Engineer"})
    taken = service.update_me(them, {"email": "BOB@example.com", "job_title": "Engineer"})
    # Both pending, neither applied: the answer and the account read later are alike.
    assert (free.pending_email, taken.pending_email) == ("ada.new@example.com", "BOB@example.com")
    assert shown(free) == shown(service.get_me(me)) == {"email": "ada@example.com", "verified": False,
                                                        "job_title": "Engineer", "pending": True}
    assert shown(taken) == shown(service.get_me(them)) == {"email": "cy@example.com", "verified": False,
                                                           "job_title": "Engineer", "pending": True}
    with service.uow() as uow:
        owner = uow.repo.account(bob.id)
        assert owner is not None and owner.email == "bob@example.com"
    # The free address gets a link (to it: the event names no account); the taken one's owner is told.
    links = [m for m in requested(service, VERIFY) if not m.account_id]
    assert len(links) == 1 and service.recovery.claim(links[0].token_id).email == "ada.new@example.com"
    assert [m.account_id for m in requested(service, EMAIL_CHANGE_EXISTING)] == [bob.id]
    assert [m.account_id for m in requested(service, VERIFY) if m.account_id] == [ada.id, bob.id, cy.id]
    # Only the address changes wait for the link: the rest was applied and published at once.
    assert [list(e.fields) for e in rectified(service)] == [["job_title"], ["job_title"]]


@pytest.mark.notice("3.2.2")
def test_a_later_change_voids_the_earlier_link_and_the_own_address_clears_the_pending_one(
        service: IdentityService) -> None:
    ada = service.sign_up(signup())
    me = service.authenticate(service.login("ada", "correct horse battery", "", "").access)
    service.update_me(me, {"email": "first@example.com"})
    first = service.recovery.claim(requested(service, VERIFY)[-1].token_id).token
    assert service.update_me(me, {"email": "second@example.com"}).pending_email == "second@example.com"
    with pytest.raises(InvalidArgument):
        service.recovery.confirm_email(first)  # the earlier link is void
    second = requested(service, VERIFY)[-1].token_id
    assert service.update_me(me, {"email": "ADA@example.com"}).pending_email == ""
    with pytest.raises(Conflict):
        service.recovery.claim(second)  # voided before it was sent: never sent
    account = service.get_me(me)
    assert (account.id, account.email, account.pending_email) == (ada.id, "ada@example.com", "")


@pytest.mark.notice("3.2.2", "13.1.1")
def test_the_pending_address_is_exported(service: IdentityService) -> None:
    ada = service.sign_up(signup())
    me = service.authenticate(service.login("ada", "correct horse battery", "", "").access)
    service.update_me(me, {"email": "ada.new@example.com"})
    tables = {name: (cols, rows) for name, _, cols, rows in service.export(ada.id).tables}
    cols, rows = tables["accounts"]
    assert [dict(zip(cols, row, strict=True))["pending_email"] for row in rows] == ["ada.new@example.com"]


@pytest.mark.notice("13.1.2")
@pytest.mark.rule("R-RECT-1")
def test_a_correction_applies_at_once_and_supersedes_a_pending_change(service: IdentityService) -> None:
    ada = service.sign_up(signup())
    me = service.authenticate(service.login("ada", "correct horse battery", "", "").access)
    service.update_me(me, {"email": "ada.new@example.com"})
    link = service.recovery.claim(requested(service, VERIFY)[-1].token_id).token
    assert service.rectify(ada.id, {"email": "ada@lovelace.example"}).applied == ["email"]
    account = service.get_me(me)
    assert (account.email, account.pending_email, account.email_verified_at) == ("ada@lovelace.example", "", None)
    with pytest.raises(InvalidArgument):
        service.recovery.confirm_email(link)
    assert service.get_me(me).email == "ada@lovelace.example"


@pytest.mark.notice("13.1.2")
@pytest.mark.rule("R-RECT-1")
def test_rectifying_to_another_accounts_address_reports_like_a_free_one_and_changes_nothing(
        service: IdentityService) -> None:
    ada = service.sign_up(signup())
    service.sign_up(signup(username="bob", email="bob@example.com"))
    free = service.rectify(ada.id, {"email": "ada.new@example.com"})
    taken = service.rectify(ada.id, {"email": "bob@example.com", "last_name": "Byron"})
    assert (free.applied, free.rejected) == (["email"], [])
    assert (sorted(taken.applied), taken.rejected) == (["email", "last_name"], [])
    with service.uow() as uow:
        stored = uow.repo.account(ada.id)
        assert stored is not None and (stored.email, stored.last_name) == ("ada.new@example.com", "Byron")


@pytest.mark.notice("3.2.2", "11")
def test_address_changes_are_capped_whether_or_not_the_address_is_free(service: IdentityService) -> None:
    service.sign_up(signup())
    service.sign_up(signup(username="bob", email="bob@example.com"))
    me = service.authenticate(service.login("ada", "correct horse battery", "", "").access)
    for n in range(4):
        service.update_me(me, {"email": f"ada{n}@example.com"})
    service.update_me(me, {"email": "bob@example.com"})
    with pytest.raises(Throttled):
        service.update_me(me, {"email": "free@example.com"})
    service.update_me(me, {"job_title": "Engineer"})  # other fields are not capped


@pytest.mark.rule("R-XFER-2")
def test_a_country_of_the_same_region_may_be_set_but_not_one_of_another(service: IdentityService) -> None:
    ada = service.sign_up(signup())
    me = service.authenticate(service.login("ada", "correct horse battery", "", "").access)
    with pytest.raises(WrongRegion):
        service.update_me(me, {"country": "DE", "job_title": "Engineer"})
    with pytest.raises(InvalidArgument):
        service.update_me(me, {"country": "XX"})
    moved = service.update_me(me, {"country": "je", "phone": "07797 123456"})  # read as a Jersey number
    assert (moved.country, moved.region, moved.phone, moved.job_title) == ("JE", "uk", "+447797123456", "Analyst")
    result = service.rectify(ada.id, {"country": "FR"})
    assert result.applied == [] and [f for f, _ in result.rejected] == ["country"]
    with pytest.raises(InvalidArgument):
        service.update_me(me, {"username": "ada2"})


@pytest.mark.notice("13.1.3")
@pytest.mark.rule("R-ERASE-1")
def test_the_upgrade_drops_the_back_off_rows_no_account_could_be_found_by(database_url: str) -> None:
    """Rows of the old shape ('login:' + a keyed hash, for accounts and unknown logins alike) cannot be tied to
    an account, so an erasure could not find them: the migration drops them, and keeps the other kinds."""
    migrations.upgrade(MIGRATIONS, database_url, "f3b8c2d41a6e")
    engine = make_engine(database_url)
    rows = {"login:" + "a" * 64: 3, "ip:" + "b" * 64: 4, "reset:" + "c" * 64: 1}
    try:
        with engine.begin() as conn:
            for key, failures in rows.items():
                conn.execute(insert(LoginThrottle).values(key=key, failures=failures, updated_at=utcnow()))
        migrations.upgrade(MIGRATIONS, database_url)
        with engine.connect() as conn:
            left = {row.key: row.failures for row in conn.execute(select(LoginThrottle.key, LoginThrottle.failures))}
    finally:
        engine.dispose()
    assert left == {"ip:" + "b" * 64: 4, "reset:" + "c" * 64: 1}
