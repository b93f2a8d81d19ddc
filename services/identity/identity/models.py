"""Identity's tables and the repository: the only module that knows them."""

from __future__ import annotations

from datetime import datetime

from servicekit.outbox import InboxMixin, OutboxMixin
from servicekit.personal_data import table_of
from servicekit.subject_data import TableRows
from sqlalchemy import Boolean, DateTime, ForeignKey, String, Text, delete, false, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Outbox(OutboxMixin, Base):
    pass


class Inbox(InboxMixin, Base):
    pass


class Organisation(Base):
    """A customer company or a reseller (section 5.1.1)."""

    __tablename__ = "organisations"
    __table_args__ = {"info": {"category": "identity"}}

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # customer | reseller
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Customers: members see each other's tickets only when an admin enables it (section 11).
    ticket_sharing: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Account(Base):
    """Identity, Contact and Profile data of one person (sections 3.2.1, 3.2.2, 3.2.4)."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), info={"category": "identity"})
    username_key: Mapped[str] = mapped_column(String(64), unique=True, info={"category": "identity"})
    email: Mapped[str] = mapped_column(String(320), info={"category": "contact"})
    email_key: Mapped[str] = mapped_column(String(320), unique=True, info={"category": "contact"})
    password_hash: Mapped[str] = mapped_column(String(200), info={"category": "profile"})
    first_name: Mapped[str] = mapped_column(String(100), info={"category": "identity"})
    last_name: Mapped[str] = mapped_column(String(100), info={"category": "identity"})
    company: Mapped[str] = mapped_column(String(100), info={"category": "identity"})
    job_title: Mapped[str] = mapped_column(String(100), info={"category": "identity"})
    phone: Mapped[str] = mapped_column(String(20), default="", info={"category": "contact"})
    country: Mapped[str] = mapped_column(String(2), info={"category": "identity"})
    region: Mapped[str] = mapped_column(String(8))
    role: Mapped[str] = mapped_column(String(20))
    organisation_id: Mapped[str | None] = mapped_column(ForeignKey("organisations.id"), nullable=True)
    restricted: Mapped[bool] = mapped_column(Boolean, default=False)
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Last sign-in or refresh (set at sign-up): inactive accounts are warned, then erased (section 12).
    last_active_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    # When the inactivity warning went out; cleared by the next sign-in.
    inactivity_warned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True,
                                                                  index=True)


class SessionRecord(Base):
    """A server-side session, so that logout and revocation take effect at once."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # sha256 of the current refresh secret; rotated on every refresh.
    refresh_hash: Mapped[str] = mapped_column(String(64), default="")
    browser: Mapped[str] = mapped_column(String(100), default="", info={"category": "technical"})
    os: Mapped[str] = mapped_column(String(100), default="", info={"category": "technical"})


class SignIn(Base):
    """Technical data captured at each sign-in (section 3.2.3)."""

    __tablename__ = "sign_ins"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[str] = mapped_column(String(32))
    ip_address: Mapped[str] = mapped_column(String(45), info={"category": "technical"})
    user_agent: Mapped[str] = mapped_column(Text, info={"category": "technical"})
    browser: Mapped[str] = mapped_column(String(100), info={"category": "technical"})
    os: Mapped[str] = mapped_column(String(100), info={"category": "technical"})
    time_zone: Mapped[str] = mapped_column(String(64), default="", info={"category": "technical"})
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)



class AccountToken(Base):
    """A single-use, expiring token for e-mail verification or password reset.

    The secret is made when the sending service claims it and is kept only as a hash.
    """

    __tablename__ = "account_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))
    secret_hash: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AddressMessage(Base):
    """A message for someone without an account: the address they typed, until the sender claims it.

    Only "signup_username_taken" (a sign-up whose username is in use answers like any sign-up, so
    the username's existence is told only to the address's owner). Deleted when claimed, or by the
    purge once expired: identity keeps no address of a non-customer longer than that.
    """

    __tablename__ = "address_messages"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    purpose: Mapped[str] = mapped_column(String(30))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class LoginThrottle(Base):
    """Failed sign-ins per login name and per client address (keyed hashes, never the values)."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


# --- organisations and reseller relationships (section 5.1.1) -------------------------


class OrganisationCountry(Base):
    """A country a reseller organisation operates in (section 5.1.1)."""

    __tablename__ = "organisation_countries"

    reseller_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True)
    country: Mapped[str] = mapped_column(String(2), primary_key=True)  # ISO 3166-1 alpha-2


class ResellerCustomer(Base):
    """A customer organisation a reseller sold a product to (section 5.1.1)."""

    __tablename__ = "reseller_customers"

    reseller_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True)
    customer_organisation_id: Mapped[str] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True, index=True)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OrganisationAudit(Base):
    """Append-only trail of organisation and reseller relationship changes: who, what, when (R-SEC-1).

    The migration adds triggers that refuse UPDATE and DELETE; the repository only appends and reads.
    Ids are opaque (no foreign keys), so the trail outlives what it describes.
    """

    __tablename__ = "organisation_audit"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor_kind: Mapped[str] = mapped_column(String(10))  # person | service
    actor_id: Mapped[str] = mapped_column(String(64))  # account id, or the service's name
    action: Mapped[str] = mapped_column(String(40))
    organisation_id: Mapped[str] = mapped_column(String(32), index=True)
    customer_organisation_id: Mapped[str] = mapped_column(String(32), default="")
    detail: Mapped[str] = mapped_column(Text, default="")  # e.g. the new countries, "FR,GB"


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
        if after is not None:
            created, oid = after
            query = query.where(or_(Organisation.created_at < created,
                                    (Organisation.created_at == created) & (Organisation.id < oid)))
        return list(self.session.scalars(
            query.order_by(Organisation.created_at.desc(), Organisation.id.desc()).limit(limit)))

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

    def account_by_login(self, login_key: str) -> Account | None:
        return self.session.scalars(
            select(Account).where(or_(Account.username_key == login_key, Account.email_key == login_key))
        ).first()

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

    def address_message(self, message_id: str) -> AddressMessage | None:
        return self.session.get(AddressMessage, message_id)

    def throttles(self, keys: list[str]) -> dict[str, LoginThrottle]:
        """The rows that exist for `keys`, in one query."""
        rows = self.session.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys)))
        return {row.key: row for row in rows}

    def throttle_row(self, key: str, now: datetime) -> LoginThrottle:
        """The row for `key`, created if absent; concurrent first uses create it once."""
        insert = sqlite_insert if self.session.get_bind().dialect.name == "sqlite" else pg_insert
        self.session.execute(insert(LoginThrottle).values(key=key, failures=0, blocked_until=None, updated_at=now)
                             .on_conflict_do_nothing(index_elements=["key"]))
        row = self.session.get(LoginThrottle, key, populate_existing=True, with_for_update=True)
        assert row is not None
        return row

    def purge_technical(self, before: datetime, batch: int) -> int:
        """Delete up to `batch` sign-in records, and ended sessions, older than `before`."""
        old = select(SignIn.id).where(SignIn.created_at < before).limit(batch)
        count = int(self.session.execute(delete(SignIn).where(SignIn.id.in_(old))).rowcount or 0)  # type: ignore[attr-defined]
        ended = select(SessionRecord.id).where(
            or_(SessionRecord.expires_at < before, SessionRecord.revoked_at < before)).limit(batch)
        count += int(self.session.execute(  # type: ignore[attr-defined]
            delete(SessionRecord).where(SessionRecord.id.in_(ended))).rowcount or 0)
        used = select(AccountToken.id).where(AccountToken.expires_at < before).limit(batch)
        self.session.execute(delete(AccountToken).where(AccountToken.id.in_(used)))
        stale = select(LoginThrottle.key).where(LoginThrottle.updated_at < before).limit(batch)
        self.session.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(stale)))
        return count

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

    def purge_address_messages(self, now: datetime, batch: int) -> int:
        """Delete up to `batch` unclaimed address-only messages past their expiry."""
        expired = select(AddressMessage.id).where(AddressMessage.expires_at < now).limit(batch)
        return int(self.session.execute(  # type: ignore[attr-defined]
            delete(AddressMessage).where(AddressMessage.id.in_(expired))).rowcount or 0)

    def rows_of(self, account_id: str) -> list[TableRows]:
        """The subject's rows for an export; the password hash is never exported."""
        account = self.session.scalars(select(Account).where(Account.id == account_id)).all()
        sessions = self.session.scalars(select(SessionRecord).where(SessionRecord.account_id == account_id)).all()
        sign_ins = self.session.scalars(select(SignIn).where(SignIn.account_id == account_id)).all()
        tokens = self.session.scalars(select(AccountToken).where(AccountToken.account_id == account_id)).all()
        return [
            table_of("accounts", "identity", Account, account, exclude=("password_hash", "username_key", "email_key")),
            table_of("sessions", "technical", SessionRecord, sessions, exclude=("refresh_hash",)),
            table_of("sign_ins", "technical", SignIn, sign_ins),
            table_of("account_tokens", "profile", AccountToken, tokens, exclude=("secret_hash",)),
        ]

    def session_ids_of(self, account_id: str) -> list[str]:
        return list(self.session.scalars(select(SessionRecord.id).where(SessionRecord.account_id == account_id)))

    def erase(self, account_id: str) -> int:
        count = 0
        for model in (SignIn, SessionRecord, AccountToken):
            result = self.session.execute(delete(model).where(model.account_id == account_id))
            count += int(result.rowcount or 0)  # type: ignore[attr-defined]
        result = self.session.execute(delete(Account).where(Account.id == account_id))
        return count + int(result.rowcount or 0)  # type: ignore[attr-defined]
