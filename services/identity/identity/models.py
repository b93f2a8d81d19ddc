"""Identity's tables and the repository: the only module that knows them."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from servicekit import audit
from servicekit.audit import AuditLogMixin
from servicekit.caller import Principal
from servicekit.chain import ChainHeadMixin
from servicekit.cursors import newest_first
from servicekit.governance_models import GovernanceModels
from servicekit.holds import Hold, LegalHoldMixin, not_held, subject_holds
from servicekit.outbox import InboxMixin, OutboxMixin
from servicekit.personal_data import table_of
from servicekit.retention import Batch, Key, PurgeRunMixin
from servicekit.statements import core_table
from servicekit.subject_data import TableRows
from servicekit.transfers import TransferLogMixin
from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    String,
    Text,
    bindparam,
    delete,
    false,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

# Processing declarations (servicekit/declarations.py): every column names its category (section 3.2).
IDENTITY = {"category": "3.2.1"}
CONTACT = {"category": "3.2.2"}
TECHNICAL = {"category": "3.2.3"}
PROFILE = {"category": "3.2.4"}
ACCESS = {"category": "access_records"}
NONE = {"category": "none"}


class Base(DeclarativeBase):
    pass


class Outbox(OutboxMixin, Base):
    pass


class Inbox(InboxMixin, Base):
    pass


class ChainHead(ChainHeadMixin, Base):
    pass


class AuditLog(AuditLogMixin, Base):
    """Staff and services' access to identity's personal data: append-only, hash-chained (section 11)."""


class TransferLog(TransferLogMixin, Base):
    pass


class LegalHold(LegalHoldMixin, Base):
    """Projection of the rights service's legal holds (events through the inbox)."""


class PurgeRun(PurgeRunMixin, Base):
    pass


GOVERNANCE = GovernanceModels(ChainHead, AuditLog, TransferLog, LegalHold, PurgeRun)


class Organisation(Base):
    """A customer company or a reseller (section 5.1.1)."""

    __tablename__ = "organisations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, info=IDENTITY)
    name: Mapped[str] = mapped_column(String(200), info=IDENTITY)
    name_key: Mapped[str] = mapped_column(String(200), info=IDENTITY)
    kind: Mapped[str] = mapped_column(String(20), info=NONE)  # customer | reseller
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=NONE)
    # Customers: members see each other's tickets only when an admin enables it (section 11).
    ticket_sharing: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(), info=NONE)
    # Customers: employees as a coarse band (servicekit.dimensions.SIZE_BANDS), "" if not set; the
    # usage statistics' dimension "org_size_band". Never an exact head count.
    size_band: Mapped[str] = mapped_column(String(8), default="", server_default="", info=NONE)


class Account(Base):
    """Identity, Contact and Profile data of one person (sections 3.2.1, 3.2.2, 3.2.4)."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, info=IDENTITY)
    username: Mapped[str] = mapped_column(String(64), info=IDENTITY)
    username_key: Mapped[str] = mapped_column(String(64), unique=True, info=IDENTITY)
    email: Mapped[str] = mapped_column(String(320), info=CONTACT)
    email_key: Mapped[str] = mapped_column(String(320), unique=True, info=CONTACT)
    # An address the customer asked to change to, "" if none: it replaces `email` only when a link sent
    # to it is used (and it is still free then). Not unique: a taken address is recorded too, so the
    # account reads the same whether or not the address has an account.
    pending_email: Mapped[str] = mapped_column(String(320), default="", server_default="", info=CONTACT)
    password_hash: Mapped[str] = mapped_column(String(200), info=PROFILE)
    first_name: Mapped[str] = mapped_column(String(100), info=IDENTITY)
    last_name: Mapped[str] = mapped_column(String(100), info=IDENTITY)
    company: Mapped[str] = mapped_column(String(100), info=IDENTITY)
    job_title: Mapped[str] = mapped_column(String(100), info=IDENTITY)
    phone: Mapped[str] = mapped_column(String(20), default="", info=CONTACT)
    country: Mapped[str] = mapped_column(String(2), info=IDENTITY)
    region: Mapped[str] = mapped_column(String(8), info=IDENTITY)
    role: Mapped[str] = mapped_column(String(20), info=PROFILE)
    organisation_id: Mapped[str | None] = mapped_column(ForeignKey("organisations.id"), nullable=True, info=IDENTITY)
    restricted: Mapped[bool] = mapped_column(Boolean, default=False, info=PROFILE)
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, info=PROFILE)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=PROFILE)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=PROFILE)
    # Last sign-in or refresh (set at sign-up): inactive accounts are warned, then erased (section 12).
    last_active_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True,
                                                            info=TECHNICAL)
    # When the inactivity warning went out; cleared by the next sign-in.
    inactivity_warned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True,
                                                                  index=True, info=PROFILE)


@dataclass(frozen=True)
class SignInAccount:
    """The columns of an account a sign-in reads (`Repository.sign_in_read`)."""

    id: str
    password_hash: str
    role: str
    region: str
    organisation_id: str
    country: str


@dataclass(frozen=True)
class ThrottleState:
    """What a key of `login_throttle` has counted (`Repository.throttle_states`, `Repository.sign_in_read`)."""

    failures: int
    blocked_until: datetime | None


@dataclass(frozen=True)
class SignInRead:
    """What a sign-in reads before the hash (`Repository.sign_in_read`): None where no row exists."""

    account: SignInAccount | None
    account_throttle: ThrottleState | None  # the account's back-off
    typed_throttle: ThrottleState | None  # the back-off of the text typed (used when it names no account)
    ip_throttle: ThrottleState | None  # the client address's back-off


@dataclass(frozen=True)
class Contact:
    """What a service that must reach the subject reads of the account (`Repository.contact`)."""

    email: str
    phone: str
    restricted: bool
    region: str



@dataclass
class StartedSession:
    """A sign-in's new session and its technical data (a row of `sessions` and one of `sign_ins`) as
    plain values, inserted by `Repository.record_sign_in`: a sign-in builds no ORM object."""

    id: str  # the session's
    account_id: str
    created_at: datetime
    expires_at: datetime
    browser: str
    os: str
    sign_in_id: str
    ip_address: str
    user_agent: str
    time_zone: str
    refresh_hash: str = ""


class SessionRecord(Base):
    """A server-side session, so that logout and revocation take effect at once."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, info=TECHNICAL)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True, info=IDENTITY)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=TECHNICAL)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=TECHNICAL)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=TECHNICAL)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, info=TECHNICAL)
    # sha256 of the current refresh secret; rotated on every refresh.
    refresh_hash: Mapped[str] = mapped_column(String(64), default="", info=TECHNICAL)
    browser: Mapped[str] = mapped_column(String(100), default="", info=TECHNICAL)
    os: Mapped[str] = mapped_column(String(100), default="", info=TECHNICAL)


class SignIn(Base):
    """Technical data captured at each sign-in (section 3.2.3)."""

    __tablename__ = "sign_ins"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, info=TECHNICAL)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True, info=IDENTITY)
    session_id: Mapped[str] = mapped_column(String(32), info=TECHNICAL)
    ip_address: Mapped[str] = mapped_column(String(45), info=TECHNICAL)
    user_agent: Mapped[str] = mapped_column(Text, info=TECHNICAL)
    browser: Mapped[str] = mapped_column(String(100), info=TECHNICAL)
    os: Mapped[str] = mapped_column(String(100), info=TECHNICAL)
    time_zone: Mapped[str] = mapped_column(String(64), default="", info=TECHNICAL)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True, info=TECHNICAL)



class AccountToken(Base):
    """A single-use, expiring token for e-mail verification or password reset.

    The secret is made when the sending service claims it and is kept only as a hash.
    """

    __tablename__ = "account_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, info=PROFILE)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True, info=IDENTITY)
    purpose: Mapped[str] = mapped_column(String(20), info=PROFILE)
    secret_hash: Mapped[str] = mapped_column(String(64), default="", info=PROFILE)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=PROFILE)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True, info=PROFILE)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, info=PROFILE)


class AddressMessage(Base):
    """A message for someone without an account: the address they typed, until the sender claims it.

    Only "signup_username_taken" (a sign-up whose username is in use answers like any sign-up, so
    the username's existence is told only to the address's owner). Deleted when claimed, or by the
    purge once expired: identity keeps no address of a non-customer longer than that.
    """

    __tablename__ = "address_messages"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, info=CONTACT)
    email: Mapped[str] = mapped_column(String(254), info=CONTACT)
    purpose: Mapped[str] = mapped_column(String(30), info=CONTACT)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=CONTACT)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True, info=CONTACT)


class LoginThrottle(Base):
    """Failed sign-ins per account (by its id), per other login typed and per client address (keyed hashes,
    never the values)."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(80), primary_key=True, info=TECHNICAL)
    failures: Mapped[int] = mapped_column(default=0, info=TECHNICAL)
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, info=TECHNICAL)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True, info=TECHNICAL)


# --- organisations and reseller relationships (section 5.1.1) -------------------------


class OrganisationCountry(Base):
    """A country a reseller organisation operates in (section 5.1.1)."""

    __tablename__ = "organisation_countries"

    reseller_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True,
                                             info=NONE)
    country: Mapped[str] = mapped_column(String(2), primary_key=True, info=NONE)  # ISO 3166-1 alpha-2


class ResellerCustomer(Base):
    """A customer organisation a reseller sold a product to (section 5.1.1)."""

    __tablename__ = "reseller_customers"

    reseller_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True,
                                             info=NONE)
    customer_organisation_id: Mapped[str] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True, index=True, info=NONE)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=NONE)


class OrganisationAudit(Base):
    """Append-only trail of organisation and reseller relationship changes: who, what, when (R-SEC-1).

    The migration adds triggers that refuse UPDATE and DELETE; the repository only appends and reads.
    Ids are opaque (no foreign keys), so the trail outlives what it describes.
    """

    __tablename__ = "organisation_audit"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, info=ACCESS)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True, info=ACCESS)
    actor_kind: Mapped[str] = mapped_column(String(10), info=ACCESS)  # person | service
    actor_id: Mapped[str] = mapped_column(String(64), info=ACCESS)  # account id, or the service's name
    action: Mapped[str] = mapped_column(String(40), info=ACCESS)
    organisation_id: Mapped[str] = mapped_column(String(32), index=True, info=ACCESS)
    customer_organisation_id: Mapped[str] = mapped_column(String(32), default="", info=ACCESS)
    detail: Mapped[str] = mapped_column(Text, default="", info=ACCESS)  # e.g. the new countries, "FR,GB"


class OrganisationRepository:
    """Queries of the organisation tables; mixed into Repository (`uow.repo`)."""

    session: Session

    def organisation(self, organisation_id: str) -> Organisation | None:
        return self.session.get(Organisation, organisation_id) if organisation_id else None

    def organisations_page(self, *, kind: str, after: tuple[datetime, str] | None,
                           limit: int) -> list[Organisation]:
        """Newest first, keyset-paginated on (created_at, id): no OFFSET."""
        query = select(Organisation)
        if kind:
            query = query.where(Organisation.kind == kind)
        return list(self.session.scalars(newest_first(query, Organisation.created_at, Organisation.id, after, limit)))

    def countries_of(self, reseller_ids: list[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {rid: [] for rid in reseller_ids}
        if reseller_ids:
            rows = self.session.execute(
                select(OrganisationCountry.reseller_id, OrganisationCountry.country)
                .where(OrganisationCountry.reseller_id.in_(reseller_ids))
                .order_by(OrganisationCountry.country))
            for rid, country in rows:
                found[rid].append(country)
        return found

    def customers_of(self, reseller_ids: list[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {rid: [] for rid in reseller_ids}
        if reseller_ids:
            rows = self.session.execute(
                select(ResellerCustomer.reseller_id, ResellerCustomer.customer_organisation_id)
                .where(ResellerCustomer.reseller_id.in_(reseller_ids))
                .order_by(ResellerCustomer.customer_organisation_id))
            for rid, customer in rows:
                found[rid].append(customer)
        return found

    def replace_countries(self, reseller_id: str, countries: list[str]) -> None:
        self.session.execute(delete(OrganisationCountry).where(OrganisationCountry.reseller_id == reseller_id))
        self.session.add_all([OrganisationCountry(reseller_id=reseller_id, country=c) for c in countries])
        self.session.flush()

    def reseller_customer(self, reseller_id: str, customer_organisation_id: str) -> ResellerCustomer | None:
        return self.session.get(ResellerCustomer, (reseller_id, customer_organisation_id))

    def link_customer(self, link: ResellerCustomer) -> bool:
        """Insert the link first in its unit of work; False if it exists (a concurrent request made
        it since it was checked): the unit of work is then rolled back, so nothing else in it is kept."""
        self.session.add(link)
        try:
            self.session.flush()
        except IntegrityError:
            self.session.rollback()
            return False
        return True

    def unlink_customer(self, link: ResellerCustomer) -> None:
        self.session.delete(link)
        self.session.flush()

    def append_audit(self, entry: OrganisationAudit) -> None:
        self.session.add(entry)

    def audit_trail(self, organisation_id: str) -> list[OrganisationAudit]:
        return list(self.session.scalars(
            select(OrganisationAudit).where(OrganisationAudit.organisation_id == organisation_id)
            .order_by(OrganisationAudit.at, OrganisationAudit.id)))


# Hot paths' statements, built once: on SQLite, building a statement and its cache key costs more than
# running it. An erasure's are one plain DELETE per table, no read first.
_SUBJECT = bindparam("subject", type_=String)
_ACCOUNTS, _SESSIONS = core_table(Account), core_table(SessionRecord)
CONTACTS_OF = (select(_ACCOUNTS.c.id, _ACCOUNTS.c.email, _ACCOUNTS.c.phone, _ACCOUNTS.c.restricted,
                      _ACCOUNTS.c.region)
               .where(_ACCOUNTS.c.id.in_(bindparam("subjects", type_=String, expanding=True))))
# Erase takes the account's row first: a sign-in (which updates that row before it inserts its session)
# then either finished before, and its session is deleted and revoked with the others, or waits and finds
# the account gone; without it, on PostgreSQL a session started between the two deletes would go with the
# account's row (ON DELETE CASCADE) unannounced, its token valid until it expires.
LOCK_ACCOUNT = select(_ACCOUNTS.c.id).where(_ACCOUNTS.c.id == _SUBJECT).with_for_update()
ERASE_SESSIONS = delete(_SESSIONS).where(_SESSIONS.c.account_id == _SUBJECT).returning(_SESSIONS.c.id)
ERASE_REST = [delete(core_table(m)).where(core_table(m).c.account_id == _SUBJECT) for m in (SignIn, AccountToken)] + [
    delete(_ACCOUNTS).where(_ACCOUNTS.c.id == _SUBJECT)]
# A sign-in's: the account a login names, the keys' back-off, and the write after the verify (the
# account's activity, re-hashed password if given, provided the password verified is still the one stored).
_LOGIN = bindparam("login", type_=String)
_THROTTLES = core_table(LoginThrottle)
THROTTLE_STATES = (select(_THROTTLES.c.key, _THROTTLES.c.failures, _THROTTLES.c.blocked_until)
                   .where(_THROTTLES.c.key.in_(bindparam("keys", expanding=True))))
# An account's sign-in back-off is keyed by its id (not a personal value, so not hashed): the read below
# finds it by a join, and an erasure deletes it with the account.
ACCOUNT_THROTTLE_PREFIX = "login:account:"
_OWN, _IP, _TYPED = (_THROTTLES.alias(name) for name in ("own_throttle", "ip_throttle", "typed_throttle"))
# One statement, one row, whether or not the login names an account: on PostgreSQL each statement is a
# round trip, and a sign-in waits for this read before argon2id can start.
SIGN_IN_READ = (
    select(_ACCOUNTS.c.id, _ACCOUNTS.c.password_hash, _ACCOUNTS.c.role, _ACCOUNTS.c.region,
           _ACCOUNTS.c.organisation_id, _ACCOUNTS.c.country, _OWN.c.failures, _OWN.c.blocked_until,
           _TYPED.c.failures, _TYPED.c.blocked_until, _IP.c.failures, _IP.c.blocked_until)
    .select_from(
        select(literal(1).label("one")).subquery("one")
        .outerjoin(_ACCOUNTS, or_(_ACCOUNTS.c.username_key == _LOGIN, _ACCOUNTS.c.email_key == _LOGIN))
        .outerjoin(_OWN, _OWN.c.key == literal(ACCOUNT_THROTTLE_PREFIX, String) + _ACCOUNTS.c.id)
        .outerjoin(_TYPED, _TYPED.c.key == bindparam("typed_key", type_=String))
        .outerjoin(_IP, _IP.c.key == bindparam("ip_key", type_=String)))
    .limit(1))
FORGET_FAILURES = (update(_THROTTLES).where(_THROTTLES.c.key == bindparam("b_key", type_=String))
                   .values(failures=0, blocked_until=None))
_ACCOUNT_THROTTLE = _THROTTLES.c.key == literal(ACCOUNT_THROTTLE_PREFIX, String) + _SUBJECT
ERASE_REST.insert(0, delete(_THROTTLES).where(_ACCOUNT_THROTTLE))
_SIGNED_IN = (update(_ACCOUNTS)
              .where(_ACCOUNTS.c.id == bindparam("b_id", type_=String),
                     _ACCOUNTS.c.password_hash == bindparam("b_verified", type_=String)))
SIGNED_IN = _SIGNED_IN.values(last_active_at=bindparam("b_when"), inactivity_warned_at=None)
REHASHED = _SIGNED_IN.values(password_hash=bindparam("b_hash"))
INSERT_SESSION, INSERT_SIGN_IN = insert(_SESSIONS), insert(core_table(SignIn))


class Repository(OrganisationRepository):
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: Base) -> None:
        self.session.add(row)

    def delete(self, row: Base) -> None:
        self.session.delete(row)

    def flush(self) -> None:
        self.session.flush()

    def account(self, account_id: str) -> Account | None:
        return self.session.get(Account, account_id)

    def contacts(self, account_ids: Collection[str]) -> dict[str, Contact]:
        """The address, telephone, restriction and region of each subject found among `account_ids` (at most
        a few hundred), by one plain statement."""
        rows = self.session.connection().execute(CONTACTS_OF, {"subjects": list(account_ids)})
        return {row[0]: Contact(row[1], row[2], bool(row[3]), row[4]) for row in rows}

    def account_by_login(self, login_key: str) -> Account | None:
        return self.session.scalars(
            select(Account).where(or_(Account.username_key == login_key, Account.email_key == login_key))
        ).first()

    def sign_in_read(self, login_key: str, typed_key: str, ip_key: str | None) -> SignInRead:
        """What a sign-in reads before the hash, by one plain statement (no ORM object on this hot path): the
        account `login_key` (a username or address key) names, with its back-off, and the back-off of the
        typed login's key and of the client's address."""
        row = self.session.connection().execute(SIGN_IN_READ, {"login": login_key or None, "typed_key": typed_key,
                                                                "ip_key": ip_key}).one()
        account = (SignInAccount(row[0], row[1], row[2], row[3], row[4] or "", row[5])
                   if row[0] is not None else None)

        def state(failures: int | None, blocked_until: datetime | None) -> ThrottleState | None:
            return ThrottleState(failures, blocked_until) if failures is not None else None

        return SignInRead(account, state(row[6], row[7]), state(row[8], row[9]), state(row[10], row[11]))

    def record_sign_in(self, account: SignInAccount, session: StartedSession, when: datetime) -> bool:
        """Store a sign-in: its session and technical data, and the account's last activity (an inactivity
        warning is answered), provided the account's password is still the one read. Plain statements built
        once, no read first: this is the hot path of every sign-in. False, with nothing written, if the
        account is gone or its password changed."""
        conn = self.session.connection()
        changed = conn.execute(SIGNED_IN, {"b_id": account.id, "b_verified": account.password_hash, "b_when": when})
        if changed.rowcount != 1:
            return False
        conn.execute(INSERT_SESSION, {
            "id": session.id, "account_id": session.account_id, "created_at": session.created_at,
            "last_seen_at": session.created_at, "expires_at": session.expires_at, "revoked_at": None,
            "refresh_hash": session.refresh_hash, "browser": session.browser, "os": session.os})
        conn.execute(INSERT_SIGN_IN, {
            "id": session.sign_in_id, "account_id": session.account_id, "session_id": session.id,
            "ip_address": session.ip_address, "user_agent": session.user_agent, "browser": session.browser,
            "os": session.os, "time_zone": session.time_zone, "created_at": session.created_at})
        return True

    def rehash(self, account: SignInAccount, new_hash: str) -> None:
        """Replace the password hash just verified by one made with the current parameters."""
        self.session.connection().execute(REHASHED, {"b_id": account.id, "b_verified": account.password_hash,
                                                     "b_hash": new_hash})

    def account_by_email(self, email_key: str) -> Account | None:
        return self.session.scalars(select(Account).where(Account.email_key == email_key)).first()

    def username_taken(self, key: str) -> bool:
        return self.session.scalar(select(Account.id).where(Account.username_key == key)) is not None

    def email_taken(self, key: str, except_id: str = "") -> bool:
        found = self.session.scalar(select(Account.id).where(Account.email_key == key))
        return found is not None and found != except_id

    def organisation_named(self, name_key: str, kind: str) -> Organisation | None:
        return self.session.scalars(
            select(Organisation).where(Organisation.name_key == name_key, Organisation.kind == kind)
        ).first()

    def session_record(self, session_id: str) -> SessionRecord | None:
        return self.session.get(SessionRecord, session_id)

    def live_sessions(self, account_id: str, now: datetime) -> list[SessionRecord]:
        return list(self.session.scalars(
            select(SessionRecord)
            .where(SessionRecord.account_id == account_id, SessionRecord.revoked_at.is_(None),
                   SessionRecord.expires_at > now)
            .order_by(SessionRecord.created_at.desc())))

    def revoke_sessions(self, account_id: str, when: datetime, keep: str = "") -> list[str]:
        """Revoke the account's live sessions except `keep`; returns the ids revoked."""
        ids = list(self.session.scalars(
            select(SessionRecord.id).where(SessionRecord.account_id == account_id,
                                           SessionRecord.revoked_at.is_(None), SessionRecord.id != keep)))
        if ids:
            self.session.execute(update(SessionRecord).where(SessionRecord.id.in_(ids)).values(revoked_at=when))
        return ids

    def token(self, token_id: str) -> AccountToken | None:
        return self.session.get(AccountToken, token_id)

    def void_tokens(self, account_id: str, purpose: str, when: datetime) -> None:
        """Mark the account's unused tokens of `purpose` used, so that no link already sent works."""
        self.session.execute(update(AccountToken).where(
            AccountToken.account_id == account_id, AccountToken.purpose == purpose, AccountToken.used_at.is_(None))
            .values(used_at=when))

    def address_message(self, message_id: str) -> AddressMessage | None:
        return self.session.get(AddressMessage, message_id)

    def throttle_states(self, keys: list[str]) -> dict[str, ThrottleState]:
        """What `keys` have counted, in one plain statement (read at every sign-in): no ORM object."""
        rows = self.session.connection().execute(THROTTLE_STATES, {"keys": keys})
        return {key: ThrottleState(failures, blocked_until) for key, failures, blocked_until in rows}

    def forget_failures(self, key: str) -> None:
        """A right password: the failures counted against `key` are forgotten, by one plain statement (the
        sign-in read them already)."""
        self.session.connection().execute(FORGET_FAILURES, {"b_key": key})

    def throttle_row(self, key: str, now: datetime) -> LoginThrottle:
        """The row for `key`, created if absent; concurrent first uses create it once."""
        insert = sqlite_insert if self.session.get_bind().dialect.name == "sqlite" else pg_insert
        self.session.execute(insert(LoginThrottle).values(key=key, failures=0, blocked_until=None, updated_at=now)
                             .on_conflict_do_nothing(index_elements=["key"]))
        row = self.session.get(LoginThrottle, key, populate_existing=True, with_for_update=True)
        assert row is not None
        return row

    def inactive_unwarned(self, before: datetime, batch: int) -> list[Account]:
        """Customers whose last activity was before `before` and who have not been warned."""
        return list(self.session.scalars(
            select(Account).where(Account.role == "customer", Account.last_active_at < before,
                                  Account.inactivity_warned_at.is_(None)).limit(batch)))

    def warned_and_still_inactive(self, warned_before: datetime, batch: int) -> list[Account]:
        """Customers warned before `warned_before` who have not signed in since."""
        return list(self.session.scalars(
            select(Account).where(Account.role == "customer", Account.inactivity_warned_at < warned_before,
                                  Account.last_active_at < Account.inactivity_warned_at).limit(batch)))

    def rows_of(self, account_id: str) -> list[TableRows]:
        """The subject's rows for an export; the password hash is never exported."""
        account = self.session.scalars(select(Account).where(Account.id == account_id)).all()
        sessions = self.session.scalars(select(SessionRecord).where(SessionRecord.account_id == account_id)).all()
        sign_ins = self.session.scalars(select(SignIn).where(SignIn.account_id == account_id)).all()
        tokens = self.session.scalars(select(AccountToken).where(AccountToken.account_id == account_id)).all()
        back_off = self.session.scalars(select(LoginThrottle).where(_ACCOUNT_THROTTLE)
                                        .params(subject=account_id)).all()
        return [
            table_of("accounts", "identity", Account, account, exclude=("password_hash", "username_key", "email_key")),
            table_of("sessions", "technical", SessionRecord, sessions, exclude=("refresh_hash",)),
            table_of("sign_ins", "technical", SignIn, sign_ins),
            table_of("account_tokens", "profile", AccountToken, tokens, exclude=("secret_hash",)),
            table_of("login_throttle", "technical", LoginThrottle, back_off),
            audit.export_table(self.session, AuditLog, account_id),
        ]

    def audit(self, principal: Principal, accesses: list[audit.Access], purpose: str = audit.SUPPORT) -> None:
        """Append to the audit trail in this transaction (R-SEC-1)."""
        organisation = principal.organisation_id if principal.role == "reseller" else ""
        audit.record(self.session, AuditLog, ChainHead, principal, accesses, purpose, organisation)

    def subject_holds(self, account_id: str) -> list[Hold]:
        """Active legal holds on the subject (the rights service's, projected here through the inbox)."""
        return subject_holds(self.session, LegalHold, account_id)

    def erase(self, account_id: str) -> tuple[int, list[str]]:
        """Delete the account, its sessions and technical data. Returns the rows deleted and the ids of
        the sessions deleted (to be revoked): read by the DELETE itself, so every session deleted is
        revoked, even one that started a moment before."""
        conn = self.session.connection()
        subject = {"subject": account_id}
        conn.execute(LOCK_ACCOUNT, subject)
        revoked = list(conn.execute(ERASE_SESSIONS, subject).scalars())
        return len(revoked) + sum(int(conn.execute(s, subject).rowcount or 0) for s in ERASE_REST), revoked


# --- the retention purge (identity/governance.py declares the periods) ------------------------------
def _older(session: Session, model: Any, when: Any, cutoff: datetime, limit: int, after: Key | None,
           subject: Any = None) -> Batch:
    """Delete up to `limit` rows of `model` whose `when` is before `cutoff`, in (when, key) order after
    `after`, skipping a subject under a legal hold."""
    key = model.__mapper__.primary_key[0]
    query = select(when, key).where(when < cutoff)
    if subject is not None:
        query = query.where(not_held(LegalHold, "subject", subject))
    if after is not None:
        query = query.where(tuple_(when, key) > tuple_(*after))
    rows = list(session.execute(query.order_by(when, key).limit(limit)))
    if not rows:
        return Batch(0, 0, after)
    deleted = session.execute(delete(model).where(key.in_([r[1] for r in rows]))).rowcount  # type: ignore[attr-defined]
    return Batch(len(rows), int(deleted or 0), tuple(rows[-1]))


def purge_sign_ins(session: Session, cutoff: datetime, limit: int, after: Key | None) -> Batch:
    """Technical data captured at sign-in (section 3.2.3), from its capture."""
    return _older(session, SignIn, SignIn.created_at, cutoff, limit, after, SignIn.account_id)


def purge_ended_sessions(session: Session, cutoff: datetime, limit: int, after: Key | None) -> Batch:
    """Sessions (device, last seen), from their expiry; a revoked one expires too."""
    return _older(session, SessionRecord, SessionRecord.expires_at, cutoff, limit, after, SessionRecord.account_id)


def purge_throttles(session: Session, cutoff: datetime, limit: int, after: Key | None) -> Batch:
    """Failed-sign-in counters, from their last update."""
    return _older(session, LoginThrottle, LoginThrottle.updated_at, cutoff, limit, after)


def purge_tokens(session: Session, cutoff: datetime, limit: int, after: Key | None) -> Batch:
    """Verification and reset tokens, from their expiry."""
    return _older(session, AccountToken, AccountToken.expires_at, cutoff, limit, after, AccountToken.account_id)


def purge_organisation_audit(session: Session, cutoff: datetime, limit: int, after: Key | None) -> Batch:
    """The trail of organisation changes, 6 years after each change (its triggers let only those go)."""
    return _older(session, OrganisationAudit, OrganisationAudit.at, cutoff, limit, after)


def purge_address_messages(session: Session, cutoff: datetime, limit: int, after: Key | None) -> Batch:
    """Addresses of people without an account that the sender never claimed, from their expiry."""
    return _older(session, AddressMessage, AddressMessage.expires_at, cutoff, limit, after)
