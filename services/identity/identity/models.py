"""Identity's tables and the repository: the only module that knows them."""

from __future__ import annotations

from datetime import datetime

from servicekit.outbox import InboxMixin, OutboxMixin
from servicekit.personal_data import table_of
from servicekit.subject_data import TableRows
from sqlalchemy import Boolean, DateTime, ForeignKey, String, Text, delete, or_, select, update
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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SessionRecord(Base):
    """A server-side session, so that logout and revocation take effect at once."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)



class LoginThrottle(Base):
    """Failed sign-ins per login name and per client address (keyed hashes, never the values)."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Repository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: Base) -> None:
        self.session.add(row)

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

    def throttle(self, key: str) -> LoginThrottle | None:
        return self.session.get(LoginThrottle, key)

    def purge_technical(self, before: datetime, batch: int) -> int:
        """Delete up to `batch` sign-in records, and ended sessions, older than `before`."""
        old = select(SignIn.id).where(SignIn.created_at < before).limit(batch)
        count = int(self.session.execute(delete(SignIn).where(SignIn.id.in_(old))).rowcount or 0)  # type: ignore[attr-defined]
        ended = select(SessionRecord.id).where(SessionRecord.expires_at < before).limit(batch)
        count += int(self.session.execute(  # type: ignore[attr-defined]
            delete(SessionRecord).where(SessionRecord.id.in_(ended))).rowcount or 0)
        stale = select(LoginThrottle.key).where(LoginThrottle.updated_at < before).limit(batch)
        self.session.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(stale)))
        return count

    def rows_of(self, account_id: str) -> list[TableRows]:
        """The subject's rows for an export; the password hash is never exported."""
        account = self.session.scalars(select(Account).where(Account.id == account_id)).all()
        sessions = self.session.scalars(select(SessionRecord).where(SessionRecord.account_id == account_id)).all()
        sign_ins = self.session.scalars(select(SignIn).where(SignIn.account_id == account_id)).all()
        return [
            table_of("accounts", "identity", Account, account, exclude=("password_hash", "username_key", "email_key")),
            table_of("sessions", "technical", SessionRecord, sessions),
            table_of("sign_ins", "technical", SignIn, sign_ins),
        ]

    def erase(self, account_id: str) -> int:
        count = 0
        for model in (SignIn, SessionRecord):
            result = self.session.execute(delete(model).where(model.account_id == account_id))
            count += int(result.rowcount or 0)  # type: ignore[attr-defined]
        result = self.session.execute(delete(Account).where(Account.id == account_id))
        return count + int(result.rowcount or 0)  # type: ignore[attr-defined]
