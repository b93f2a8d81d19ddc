"""Consent's tables and repository: preferences derived from an append-only, hash-chained ledger."""

from __future__ import annotations

from datetime import datetime

from servicekit.outbox import InboxMixin, OutboxMixin
from servicekit.restrictions import RestrictionMixin, is_restricted, set_restricted
from sqlalchemy import Boolean, DateTime, String, delete, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Outbox(OutboxMixin, Base):
    pass


class Inbox(InboxMixin, Base):
    pass


class Restriction(RestrictionMixin, Base):
    pass


class Preferences(Base):
    """Current marketing and cookie choices of one subject (section 3.2.6)."""

    __tablename__ = "preferences"

    subject_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    marketing_email: Mapped[bool] = mapped_column(Boolean, default=False, info={"category": "marketing"})
    marketing_telephone: Mapped[bool] = mapped_column(Boolean, default=False, info={"category": "marketing"})
    third_party_marketing: Mapped[bool] = mapped_column(Boolean, default=False, info={"category": "marketing"})
    cookies_analytics: Mapped[bool] = mapped_column(Boolean, default=False, info={"category": "marketing"})
    cookies_marketing: Mapped[bool] = mapped_column(Boolean, default=False, info={"category": "marketing"})
    notice_version: Mapped[str] = mapped_column(String(20))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LedgerEntry(Base):
    """One consent given or withdrawn; `hash` chains each subject's entries."""

    __tablename__ = "consent_ledger"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(32), index=True)
    seq: Mapped[int] = mapped_column()
    purpose: Mapped[str] = mapped_column(String(30))
    channel: Mapped[str] = mapped_column(String(30))
    granted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(30))
    notice_version: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Repository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: Base) -> None:
        self.session.add(row)

    def preferences(self, subject_id: str) -> Preferences | None:
        return self.session.get(Preferences, subject_id)

    def last_entry(self, subject_id: str) -> LedgerEntry | None:
        return self.session.scalars(
            select(LedgerEntry).where(LedgerEntry.subject_id == subject_id)
            .order_by(LedgerEntry.seq.desc()).limit(1)
        ).first()

    def ledger(self, subject_id: str) -> list[LedgerEntry]:
        return list(self.session.scalars(
            select(LedgerEntry).where(LedgerEntry.subject_id == subject_id).order_by(LedgerEntry.seq)
        ))

    def restricted(self, subject_id: str) -> bool:
        return is_restricted(self.session, Restriction, subject_id)

    def set_restricted(self, subject_id: str, restricted: bool) -> bool:
        return set_restricted(self.session, Restriction, subject_id, restricted)

    def erase(self, subject_id: str) -> int:
        count = 0
        for model in (LedgerEntry, Preferences, Restriction):
            result = self.session.execute(delete(model).where(model.subject_id == subject_id))
            count += int(result.rowcount or 0)  # type: ignore[attr-defined]
        return count

