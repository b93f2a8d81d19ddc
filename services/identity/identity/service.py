"""Identity's rules. Knows nothing of gRPC, NATS or SQL: it works through a unit of work."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import ua_parser
from kaseum.events.v1 import identity_events_pb2 as ev
from servicekit import audit, caller
from servicekit.caller import STAFF_ROLES, Principal, TokenVerifier
from servicekit.db import UnitOfWork, UnitOfWorkFactory, as_utc, new_id, utcnow
from servicekit.errors import (
    Collision,
    Conflict,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    WrongRegion,
)
from servicekit.holds import kept_for
from servicekit.region import RegionGuard, home_region
from servicekit.subject_data import Erasure, Export, Rectification, SubjectDataRules
from servicekit.timestamps import to_timestamp
from ua_parser import Domain

from . import validation as v
from .models import (
    Account,
    Contact,
    Organisation,
    Repository,
    SessionRecord,
    SignInAccount,
    StartedSession,
)
from .passwords import Passwords
from .recovery import (
    CHANGE,
    EMAIL_CHANGE_EXISTING,
    INACTIVITY_WARNING,
    USERNAME_TAKEN,
    VERIFY,
    Recovery,
    digest,
    request_address_change,
    request_address_message,
    request_message,
)
from .throttle import Throttle
from .tokens import TokenSigner

BAD_LOGIN = "login or password is incorrect"
SIGNUPS_PER_IP_HOUR = 20
EMAIL_CHANGES_PER_HOUR = 5
# The sign-up fields but username and password. Country first: a new telephone is read in the new country.
EDITABLE = ("country", "email", "first_name", "last_name", "company", "job_title", "phone")
HELD_DATA = "account, sessions and technical data"
# Why a service reads or changes a subject's data here, for the audit trail (section 11): consent reads
# addresses only to send messages (4.1.5); the rights service acts on the subject's own request (13).
RIGHTS_PURPOSE = "13"
CONTACT_PURPOSES = {"consent": "4.1.5", "rights": RIGHTS_PURPOSE}
MAX_CONTACTS = 500  # ids per GetContacts: one IN (...) well under SQLite's parameter limit
KEPT_ACCESS_LOG = ("access_log", "kept as the record of who accessed the data (UK GDPR Art. 5(1)(f), 32, 33)")


@dataclass(frozen=True)
class SignUp:
    username: str
    email: str
    password: str
    first_name: str
    last_name: str
    company: str
    job_title: str
    phone: str
    country: str
    marketing_email: bool = False
    marketing_telephone: bool = False
    third_party_marketing: bool = False
    ip_address: str = ""
    # Global Privacy Control on the sign-up request: passed on to consent, not stored here.
    gpc: bool = False


@dataclass(frozen=True)
class Tokens:
    access: str
    expires_at: datetime
    refresh: str
    refresh_expires_at: datetime


@dataclass(frozen=True)
class NewSession:
    """A sign-in's rows and tokens."""

    session: StartedSession
    tokens: Tokens


@dataclass
class SignInDraft:
    """A sign-in made while its password is verified: its rows are committed only if the password is right."""

    account: SignInAccount
    when: datetime
    clear: str | None  # a back-off key whose counted failures this sign-in forgets
    ready: NewSession
    uow: UnitOfWork[Repository]
    recorded: bool | None = None  # None until written
    opened: bool = False  # the unit of work is open: close() must end it

    def open(self) -> None:
        """Start the draft's unit of work and take its connection; nothing is locked until it writes."""
        if not self.opened:
            self.uow.__enter__()
            self.opened = True
            self.uow.session.connection()

    def write(self) -> bool:
        """Write the sign-in (once) in the draft's transaction, uncommitted. False, with nothing written, if
        the account's password changed since it was read (or the account is gone)."""
        if self.recorded is None:
            self.open()
            uow = self.uow
            self.recorded = uow.repo.record_sign_in(self.account, self.ready.session, self.when)
            if self.recorded:
                if self.clear is not None:
                    uow.repo.forget_failures(self.clear)
                uow.events.publish("identity.session.started", self.account.id,
                                   ev.SessionStarted(account_id=self.account.id, session_id=self.ready.session.id))
        return self.recorded

    def close(self) -> None:
        """End the transaction, rolled back unless committed, and give its connection back."""
        if self.opened:
            self.opened = False
            self.uow.__exit__(None, None, None)

    @staticmethod
    def abandon(draft: SignInDraft | None) -> None:
        """A wrong password's draft: roll it back."""
        if draft is not None:
            draft.close()


@dataclass(frozen=True)
class NewStaff:
    role: str
    username: str
    email: str
    password: str
    organisation: str = ""
    country: str = ""


class IdentityService(SubjectDataRules):
    def __init__(self, uow: UnitOfWorkFactory[Repository], passwords: Passwords, signer: TokenSigner,
                 verifier: TokenVerifier, region: str, notice_version: str, throttle_key: bytes = b"",
                 session_lifetime: timedelta = timedelta(days=30),
                 inactive_warning: timedelta = timedelta(days=730), inactive_grace: timedelta = timedelta(days=30),
                 announce: Callable[[list[str]], None] = lambda ids: None) -> None:
        # Tells gateways which sessions are revoked (the region's NATS bucket); raises
        # servicekit's Unavailable when it cannot. Called before the commit, so a failure
        # leaves nothing half done and the caller's retry announces again.
        self.announce = announce
        self.throttle = Throttle(throttle_key)
        self.recovery = Recovery(uow, passwords, self.throttle, announce)
        self.inactive_warning = inactive_warning
        self.inactive_grace = inactive_grace
        self.session_lifetime = session_lifetime
        self.uow = uow
        self.passwords = passwords
        self.signer = signer
        self.verifier = verifier
        self.guard = RegionGuard(region)
        self.region = region
        self.notice_version = notice_version

    # --- accounts ------------------------------------------------------------
    def sign_up(self, cmd: SignUp) -> Account:
        country = v.country(cmd.country)
        region = home_region(country)
        self.guard.check(region)
        if cmd.ip_address:
            with self.uow() as uow:
                self.throttle.count(uow.repo, self.throttle.key("signup-ip", cmd.ip_address), SIGNUPS_PER_IP_HOUR,
                                    timedelta(hours=1), utcnow())
                uow.commit()
        account = self._new_account(
            role="customer", username=cmd.username, email=cmd.email, password=cmd.password,
            first_name=cmd.first_name, last_name=cmd.last_name, company=cmd.company,
            job_title=cmd.job_title, phone=cmd.phone, country=country, region=region,
        )
        event = ev.AccountCreated(
            account_id=account.id, role="customer", home_region=region,
            marketing_email=cmd.marketing_email, marketing_telephone=cmd.marketing_telephone,
            third_party_marketing=cmd.third_party_marketing, notice_version=self.notice_version, gpc=cmd.gpc,
        )
        return self._store(account, cmd.company, "customer", event, decoy=True)

    def create_user(self, cmd: NewStaff, by: Principal | None = None) -> Account:
        """A staff account, made by an admin (or the operator CLI), `by`: recorded on the audit trail."""
        if cmd.role not in STAFF_ROLES:
            # Customers sign up themselves: their sign-up records their choices and the notice they saw.
            raise InvalidArgument(f"role must be one of {', '.join(sorted(STAFF_ROLES))}", "invalid_role")
        if cmd.role == "reseller" and not cmd.organisation.strip():
            raise InvalidArgument("a reseller needs an organisation", "missing_field")
        country = v.country(cmd.country) if cmd.country else ""
        region = home_region(country) if country else self.region
        self.guard.check(region)
        account = self._new_account(
            role=cmd.role, username=cmd.username, email=cmd.email, password=cmd.password,
            first_name="", last_name="", company=cmd.organisation, job_title="", phone="",
            country=country, region=region, names_required=False,
        )
        event = ev.AccountCreated(account_id=account.id, role=cmd.role, home_region=region,
                                  notice_version=self.notice_version)
        kind = "reseller" if cmd.role == "reseller" else "customer"
        return self._store(account, cmd.organisation, kind, event, by=by)

    def _new_account(self, *, role: str, username: str, email: str, password: str, first_name: str,
                     last_name: str, company: str, job_title: str, phone: str, country: str,
                     region: str, names_required: bool = True) -> Account:
        now = utcnow()
        name = v.username(username)
        address = v.email(email)
        return Account(
            id=new_id(), username=name, username_key=v.username_key(name), email=address,
            email_key=v.email_key(address),
            password_hash=self.passwords.hash(v.password(password, (name, address, first_name, last_name, company))),
            first_name=v.text("first_name", first_name, names_required),
            last_name=v.text("last_name", last_name, names_required),
            company=v.text("company", company, names_required),
            job_title=v.text("job_title", job_title, names_required),
            phone=v.phone(phone, country), country=country, region=region, role=role,
            restricted=False, created_at=now, updated_at=now, last_active_at=now,
        )

    def _store(self, account: Account, org_name: str, kind: str, event: ev.AccountCreated,
               decoy: bool = False, by: Principal | None = None) -> Account:
        """Create the account. For a customer's own sign-up (`decoy`), an address or a username
        already in use gets the same answer as a new account (with an id that exists nowhere), so the
        answer never tells whether either exists; the address's owner is told by a service message
        instead. Staff accounts made by an admin get a plain 409."""
        now = utcnow()
        with self.uow() as uow:
            existing = uow.repo.account_by_login(account.email_key)
            if existing is not None and existing.email_key == account.email_key:
                if not decoy:
                    raise Conflict("that e-mail address is already registered", "account_exists")
                request_message(uow, existing.id, "signup_existing", now)
                uow.commit()
                return self._decoy(account)
            if uow.repo.username_taken(account.username_key):
                if not decoy:
                    raise Conflict("that username is not available; choose another", "username_unavailable")
                request_address_message(uow, account.email, USERNAME_TAKEN, now)
                uow.commit()
                return self._decoy(account)
            if org_name.strip():
                account.organisation_id = self._organisation(uow.repo, org_name, kind).id
            uow.repo.add(account)
            uow.events.publish("identity.account.created", account.id, event)
            request_message(uow, account.id, VERIFY, now)
            if by is not None:
                uow.repo.audit(by, [audit.Access(account.id, "account.created", account.id)])
            try:
                uow.commit()
            except Collision:
                if not decoy:
                    raise
                # Another sign-up took the username or address a moment ago: answer as above.
                return self._store(self._decoy(account), org_name, kind, event, decoy)
        return account

    @staticmethod
    def _decoy(account: Account) -> Account:
        account.id = new_id()
        return account

    @staticmethod
    def _organisation(repo: Repository, name: str, kind: str) -> Organisation:
        key = name.strip().casefold()
        org = repo.organisation_named(key, kind)
        if org is None:
            org = Organisation(id=new_id(), name=name.strip(), name_key=key, kind=kind, created_at=utcnow())
            repo.add(org)
            repo.flush()
        return org

    # --- sessions ---------------------------------------------------------------
    def login(self, login: str, password: str, ip_address: str, user_agent: str,
              time_zone: str = "") -> Tokens:
        key = login.strip().casefold()
        zone = v.time_zone(time_zone)
        now = utcnow()
        typed = self._typed_key(key)
        ip = self.throttle.key("ip", ip_address) if ip_address else None
        # One statement outside a transaction, then the hash.
        with self.uow() as uow:
            uow.autocommit()
            read = uow.repo.sign_in_read(key, typed, ip)
        found = read.account
        # Back-off per account, whichever of its logins is typed (username and address share it);
        # an unknown login backs off per text typed, with the same free failures and waits.
        keys = [Throttle.account_key(found.id) if found else typed] + ([ip] if ip else [])
        past = read.account_throttle if found else read.typed_throttle
        Throttle.refuse_blocked((past, read.ip_throttle), now)
        clear = keys[0] if past is not None and (past.failures or past.blocked_until is not None) else None
        # The session and its signed tokens are made while argon2id runs. Where writers work side by side
        # (PostgreSQL's row locks) the sign-in is written then too, in a transaction committed only if the
        # password is right, so that a commit is left after the verdict rather than a write on caches the
        # hash has emptied. SQLite has one writer for the whole file: a transaction open through the hash
        # would queue every other write behind it (16 concurrent sign-ins: p99 0.5 → 2.5 s), so there the
        # sign-in is written after the verdict.
        if found is not None:
            _, signing_in = self.passwords.verify_alongside(
                found.password_hash, password,
                partial(self._draft_sign_in, found, ip_address, user_agent, zone, now, clear,
                        self.uow.concurrent_writers),
                discard=SignInDraft.abandon)
        else:
            self.passwords.verify(None, password)  # an unknown login costs one hash too
            signing_in = None
        if found is not None and signing_in is not None:
            try:
                self.guard.check(found.region)
                if signing_in.write():
                    if self.passwords.needs_rehash(found.password_hash):
                        signing_in.uow.repo.rehash(found, self.passwords.hash(password))
                    signing_in.uow.commit()
                    return signing_in.ready.tokens
            finally:
                signing_in.close()
            # The password was changed since it was read: this one is wrong after all.
        with self.uow() as uow:
            self.throttle.failed(uow.repo, keys, now)
            uow.commit()
        raise Unauthenticated(BAD_LOGIN, "bad_credentials")

    def _draft_sign_in(self, account: SignInAccount, ip_address: str, user_agent: str, zone: str, now: datetime,
                       clear: str | None, write: bool) -> SignInDraft:
        """A sign-in's session and tokens, and its rows written (uncommitted) if `write`, else its unit of work
        opened with a connection."""
        draft = SignInDraft(account, now, clear, self._new_session(account, ip_address, user_agent, zone, now),
                            self.uow())
        try:
            if write:
                draft.write()
            else:
                draft.open()  # SQLite: what the write after the verdict can have ready without a lock
        except BaseException:
            draft.close()
            raise
        return draft

    @staticmethod
    def warm_up() -> None:
        """Compile the user-agent patterns (~80 ms) at start rather than in the first sign-in."""
        ua_parser.parser("", Domain.USER_AGENT | Domain.OS)

    def _new_session(self, account: SignInAccount, ip_address: str, user_agent: str, zone: str,
                     now: datetime) -> NewSession:
        """The rows and tokens of a sign-in whose password is right."""
        agent = ua_parser.parser(user_agent or "", Domain.USER_AGENT | Domain.OS)  # not the device: unused
        browser = (agent.user_agent.family if agent.user_agent else "")[:100]
        system = (agent.os.family if agent.os else "")[:100]
        session = StartedSession(id=new_id(), account_id=account.id, created_at=now,
                                 expires_at=now + self.session_lifetime, browser=browser, os=system,
                                 sign_in_id=new_id(), ip_address=ip_address[:45], user_agent=user_agent[:1000],
                                 time_zone=zone)
        return NewSession(session, self._tokens(account, session))

    def _typed_key(self, typed: str) -> str:
        """The back-off key of a login that names no account. Its keyed hash never has the shape of an
        account's key (`Throttle.account_key`)."""
        return self.throttle.key("login", "typed:" + typed)

    def _issue(self, account: Account, session: SessionRecord, now: datetime) -> Tokens:
        """A short-lived access token and a new single-use refresh token for the session."""
        session.last_seen_at = now
        account.last_active_at = now
        account.inactivity_warned_at = None  # signing in is the answer to an inactivity warning
        return self._tokens(account, session)

    def _tokens(self, account: Account | SignInAccount, session: SessionRecord | StartedSession) -> Tokens:
        """Sign an access token and rotate the session's refresh secret (kept only as a hash)."""
        secret = secrets.token_urlsafe(32)
        session.refresh_hash = digest(secret)
        access, expires_at = self.signer.sign(account.id, account.role, account.region, session.id,
                                              account.organisation_id or "", account.country)
        return Tokens(access, expires_at, f"{session.id}.{secret}", as_utc(session.expires_at))

    def refresh(self, refresh_token: str) -> Tokens:
        session_id, _, secret = refresh_token.partition(".")
        now = utcnow()
        with self.uow() as uow:
            session = uow.repo.session_record(session_id) if session_id and secret else None
            if session is None or session.revoked_at is not None or as_utc(session.expires_at) <= now:
                raise Unauthenticated("session has ended; sign in again", "session_revoked")
            if not hmac.compare_digest(session.refresh_hash, digest(secret)):
                # A refresh token used twice means it was copied: end the session for both holders.
                session.revoked_at = now
                self._revoked(uow, session.account_id, [session.id])
                self.announce([session.id])
                uow.commit()
                raise Unauthenticated("session has ended; sign in again", "session_revoked")
            account = uow.repo.account(session.account_id)
            if account is None:
                raise Unauthenticated("session has ended; sign in again", "session_revoked")
            tokens = self._issue(account, session, now)
            uow.commit()
        return tokens

    def list_sessions(self, principal: Principal) -> list[SessionRecord]:
        with self.uow() as uow:
            return uow.repo.live_sessions(principal.subject_id, utcnow())

    def revoke_sessions(self, principal: Principal, keep_current: bool = False) -> int:
        with self.uow() as uow:
            ids = uow.repo.revoke_sessions(principal.subject_id, utcnow(),
                                           keep=principal.session_id if keep_current else "")
            self._revoked(uow, principal.subject_id, ids)
            self.announce(ids)
            uow.commit()
        return len(ids)

    @staticmethod
    def _revoked(uow: UnitOfWork[Repository], account_id: str, ids: list[str]) -> None:
        if ids:
            uow.events.publish("identity.session.revoked", account_id,
                               ev.SessionsRevoked(account_id=account_id, session_ids=ids))

    def change_password(self, principal: Principal, current: str, new: str) -> None:
        keys = [Throttle.account_key(principal.subject_id)]  # the account's sign-in back-off: one guess is one guess
        now = utcnow()
        with self.uow() as uow:
            self.throttle.check(uow.repo, keys, now)
            account = uow.repo.account(principal.subject_id)
            if account is None:
                raise NotFound("account not found")
            if not self.passwords.verify(account.password_hash, current):
                self.throttle.failed(uow.repo, keys, now)
                uow.commit()
                raise PermissionDenied("current password is incorrect", "bad_credentials")
            account.password_hash = self.passwords.hash(
                v.password(new, (account.username, account.email, account.first_name, account.last_name)))
            account.updated_at = now
            revoked = uow.repo.revoke_sessions(account.id, now, keep=principal.session_id)
            self._revoked(uow, account.id, revoked)
            self.announce(revoked)
            uow.commit()

    def review_inactive(self, now: datetime | None = None, batch: int = 500) -> tuple[int, int]:
        """Inactive accounts (section 12): a service message after `inactive_warning` without a
        sign-in, and `identity.account.dormant` once `inactive_grace` has passed since the warning
        without one (the rights service then erases the subject everywhere, as for a request).
        Returns (warned, reported dormant) in this run."""
        now = now or utcnow()
        warned = dormant = 0
        while True:
            with self.uow() as uow:
                quiet = uow.repo.inactive_unwarned(now - self.inactive_warning, batch)
                for account in quiet:
                    account.inactivity_warned_at = now
                    request_message(uow, account.id, INACTIVITY_WARNING, now)
                uow.commit()
            warned += len(quiet)
            if len(quiet) < batch:
                break
        while True:
            with self.uow() as uow:
                due = uow.repo.warned_and_still_inactive(now - self.inactive_grace, batch)
                for account in due:
                    # Reported once: the next warning needs a sign-in first, then inactivity again.
                    account.inactivity_warned_at = account.last_active_at
                    uow.events.publish("identity.account.dormant", account.id, ev.AccountDormant(
                        account_id=account.id, last_active_at=to_timestamp(account.last_active_at or now)))
                uow.commit()
            dormant += len(due)
            if len(due) < batch:
                return warned, dormant

    def authenticate(self, token: str) -> Principal:
        principal = self.verifier.verify_person(token)
        with self.uow() as uow:
            session = uow.repo.session_record(principal.session_id)
            if (session is None or session.revoked_at is not None or session.account_id != principal.subject_id
                    or as_utc(session.expires_at) <= utcnow()):
                raise Unauthenticated("session has ended", "session_revoked")
            now = utcnow()
            # Record last-seen at most once a minute: a write per request would cost more than the check.
            if now - as_utc(session.last_seen_at) > timedelta(minutes=1):
                session.last_seen_at = now
                uow.commit()
        return principal

    def logout(self, principal: Principal) -> None:
        with self.uow() as uow:
            session = uow.repo.session_record(principal.session_id)
            if session is not None and session.revoked_at is None:
                session.revoked_at = utcnow()
                self._revoked(uow, principal.subject_id, [session.id])
            self.announce([principal.session_id])
            uow.commit()

    # --- the caller's own account ------------------------------------------------
    def get_me(self, principal: Principal) -> Account:
        with self.uow() as uow:
            account = uow.repo.account(principal.subject_id)
            if account is None:
                raise NotFound("account not found")
            return account

    def update_me(self, principal: Principal, changes: dict[str, str]) -> Account:
        """Apply the caller's changes; a new address is only recorded as pending (`_request_address_change`)."""
        now = utcnow()
        with self.uow() as uow:
            account = uow.repo.account(principal.subject_id)
            if account is None:
                raise NotFound("account not found")
            self.guard.check(account.region)
            others = {f: raw for f, raw in changes.items() if f != "email"}
            address = v.email(changes["email"]) if "email" in changes else None  # an invalid one is refused
            if address is not None:
                # Capped whether or not the address is free, so the cap reveals nothing either.
                self.throttle.count(uow.repo, self.throttle.key("email-change", account.id), EMAIL_CHANGES_PER_HOUR,
                                    timedelta(hours=1), now)
            changed = self._apply(uow.repo, account, others)
            if address is not None:
                self._request_address_change(uow, account, address, now)
            if changed or address is not None:
                account.updated_at = now
            if changed:
                uow.events.publish("identity.account.rectified", account.id,
                                   ev.AccountRectified(account_id=account.id, fields=changed))
            uow.commit()
        return account

    @staticmethod
    def _request_address_change(uow: UnitOfWork[Repository], account: Account, address: str, now: datetime) -> None:
        """Record `address` as the account's pending one; it replaces the address only when the link
        sent to it is used (recovery.confirm_email). An address of another account is recorded all the
        same, so that no answer (nor the account read later) tells whether it has an account; its owner
        is told instead, and no link exists, so it is never applied. Any earlier link is void; the
        account's own address clears the pending one."""
        uow.repo.void_tokens(account.id, CHANGE, now)
        key = v.email_key(address)
        if key == account.email_key:
            account.pending_email = ""
            return
        account.pending_email = address
        owner = uow.repo.account_by_email(key)
        if owner is not None:
            request_message(uow, owner.id, EMAIL_CHANGE_EXISTING, now)
        else:
            request_address_change(uow, account.id, now)

    @staticmethod
    def _without_taken_address(repo: Repository, account: Account,
                               changes: dict[str, str]) -> tuple[dict[str, str], str]:
        """`changes` less a new address that belongs to another account, and that address ("" if none),
        for a correction (`rectify`): as at sign-up, no answer may tell whether an address has an account."""
        if "email" not in changes:
            return changes, ""
        value = v.email(changes["email"])  # an invalid address is refused as ever
        if not repo.email_taken(v.email_key(value), except_id=account.id):
            return changes, ""
        return {f: raw for f, raw in changes.items() if f != "email"}, value

    def _apply(self, repo: Repository, account: Account, changes: dict[str, str]) -> list[str]:
        changed: list[str] = []
        unknown = set(changes) - set(EDITABLE)
        if unknown:
            raise InvalidArgument(f"{min(unknown)} cannot be changed here", "not_editable")
        for field, raw in sorted(changes.items(), key=lambda change: EDITABLE.index(change[0])):
            if field == "country":
                value = v.country(raw)
                if home_region(value) != account.region:
                    # The home region decides where every service keeps the data: fixed at sign-up.
                    raise WrongRegion("that country belongs to another region; a home region cannot change",
                                      "wrong_region")
            elif field == "email":
                value = v.email(raw)
                if repo.email_taken(v.email_key(value), except_id=account.id):
                    # Taken since it was checked (`_without_taken_address`): a race, told as one.
                    raise Collision()
                account.email_key = v.email_key(value)
                if value != account.email:
                    account.email_verified_at = None  # a changed address is verified again…
                    repo.void_tokens(account.id, VERIFY, utcnow())  # …by a link sent to it, not an older one
                    # A correction supersedes a change the customer has not confirmed yet.
                    account.pending_email = ""
                    repo.void_tokens(account.id, CHANGE, utcnow())
            elif field == "phone":
                value = v.phone(raw, account.country)
            else:
                value = v.text(field, raw, required=account.role == "customer")
            if getattr(account, field) != value:
                setattr(account, field, value)
                changed.append(field)
        return changed

    def find_account(self, email: str, by: Principal) -> Account:
        """The account behind an address a rights request came from by e-mail (notice 13.2); audited."""
        try:
            key = v.email_key(v.email(email))
        except InvalidArgument as exc:  # an address that cannot be anyone's: the same answer as no account
            raise NotFound("no account has that address") from exc
        with self.uow() as uow:
            account = uow.repo.account_by_email(key)
            if account is None:
                raise NotFound("no account has that address")
            self.guard.check(account.region)
            uow.repo.audit(by, [audit.Access(account.id, "account.found_by_address", account.id)], RIGHTS_PURPOSE)
            uow.commit()
            return account

    def get_contact(self, subject_id: str, by: Principal) -> Contact:
        """The subject's address and telephone for a service (`by`) that must reach them; every
        read is on the audit trail with the purpose it serves."""
        answer = self.get_contacts([subject_id], by)[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def get_contacts(self, subject_ids: Sequence[str], by: Principal) -> list[Contact | NotFound | WrongRegion]:
        """`get_contact` of several subjects in one read, answered in order: the contact, or what
        get_contact would have raised. One audit append (a record per subject read, an id asked twice
        is one read) and one commit for the whole batch."""
        if len(subject_ids) > MAX_CONTACTS:
            raise InvalidArgument(f"at most {MAX_CONTACTS} subjects per call", "too_many")
        with self.uow() as uow:
            found = uow.repo.contacts(set(subject_ids))
            answers: list[Contact | NotFound | WrongRegion] = []
            for subject_id in subject_ids:
                contact = found.get(subject_id)
                if contact is None:
                    answers.append(NotFound("subject not found"))
                    continue
                try:
                    self.guard.check(contact.region)
                    answers.append(contact)
                except WrongRegion as refused:
                    answers.append(refused)
            read = dict.fromkeys(s for s, a in zip(subject_ids, answers, strict=True) if isinstance(a, Contact))
            if read:
                uow.repo.audit(by, [audit.Access(s, "contact.read", s) for s in read],
                               CONTACT_PURPOSES.get(by.subject_id, audit.SUPPORT))
                uow.commit()
            return answers

    # --- the personal-data contract ------------------------------------------------
    # Driven by the rights service (or the operator CLI): who asked comes from servicekit's request
    # context, and each call goes on the audit trail in its own transaction (R-SEC-1).
    @staticmethod
    def _audit_contract(uow: UnitOfWork[Repository], subject_id: str, action: str) -> None:
        by = caller.current()
        if by is not None:
            uow.repo.audit(by, [audit.Access(subject_id, action, subject_id)], RIGHTS_PURPOSE)

    def export(self, subject_id: str) -> Export:
        with self.uow() as uow:
            # Recorded first, so the export shows this access too.
            self._audit_contract(uow, subject_id, "account.exported")
            uow.repo.flush()
            export = Export(uow.repo.rows_of(subject_id))
            uow.commit()
        return export

    def erase(self, subject_id: str) -> Erasure:
        """The account, its sessions and technical data, unless a legal hold covers the subject:
        then nothing is erased and the hold is reported as the reason (section 12.1)."""
        with self.uow() as uow:
            holds = uow.repo.subject_holds(subject_id)
            self._audit_contract(uow, subject_id, "account.erase_refused" if holds else "account.erased")
            if holds:
                uow.commit()
                return Erasure(0, [(HELD_DATA, kept_for(h)) for h in holds] + [KEPT_ACCESS_LOG])
            erased, sessions = uow.repo.erase(subject_id)
            self.announce(sessions)  # before the commit: if the gateways cannot be told, nothing is erased
            if erased:
                uow.events.publish("identity.account.erased", subject_id,
                                       ev.AccountErased(account_id=subject_id))
            uow.commit()
        return Erasure(erased, [KEPT_ACCESS_LOG])

    def rectify(self, subject_id: str, corrections: dict[str, str]) -> Rectification:
        applied: list[str] = []
        rejected: list[tuple[str, str]] = []
        with self.uow() as uow:
            account = uow.repo.account(subject_id)
            if account is None:
                raise NotFound("subject not found")
            # A taken address is reported applied, as a free one is, and not applied (`_without_taken_address`).
            taken = ""
            with suppress(InvalidArgument):  # an invalid address is reported below with the other refusals
                corrections, taken = self._without_taken_address(uow.repo, account, corrections)
            if taken:
                applied.append("email")
            for field, value in corrections.items():
                try:
                    applied += self._apply(uow.repo, account, {field: value})
                except (InvalidArgument, WrongRegion) as exc:
                    rejected.append((field, exc.message))
            self._audit_contract(uow, subject_id, "account.rectified")
            changed = [f for f in applied if f != "email" or not taken]
            if "email" in changed:
                request_message(uow, account.id, VERIFY, utcnow())
            if changed:
                account.updated_at = utcnow()
                uow.events.publish("identity.account.rectified", subject_id,
                                   ev.AccountRectified(account_id=subject_id, fields=changed))
            uow.commit()
        return Rectification(applied, rejected)

    def set_restricted(self, subject_id: str, restricted: bool) -> bool:
        with self.uow() as uow:
            account = uow.repo.account(subject_id)
            if account is None:
                raise NotFound("subject not found")
            self._audit_contract(uow, subject_id, "account.restricted" if restricted else "account.unrestricted")
            if account.restricted != restricted:
                account.restricted = restricted
                # Other services stop (or resume) processing on this fact.
                uow.events.publish("identity.account.restricted", subject_id,
                                   ev.AccountRestricted(account_id=subject_id, restricted=restricted))
            uow.commit()
            return restricted



