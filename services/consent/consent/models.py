"""Consent's tables and repository: preferences derived from an append-only, hash-chained ledger."""

from __future__ import annotations

from datetime import datetime

from servicekit.outbox import InboxMixin, OutboxMixin
from servicekit.restrictions import RestrictionMixin, is_restricted, set_restricted
from sqlalchemy import Boolean, DateTime, Index, Integer, LargeBinary, String, Text, delete, insert, or_, select, update
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
    # Objection to direct marketing (Art. 21(2)): absolute, every channel, until fresh consent.
    objected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True,
                                                         info={"category": "marketing"})
    # When a marketing channel was last granted, and the notice sequence it was granted under: a
    # suppression entry newer than the grant, or a purpose change after it, blocks marketing.
    marketing_granted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True,
                                                                  info={"category": "marketing"})
    basis_seq: Mapped[int] = mapped_column(Integer, default=0, info={"category": "marketing"})
    # Version of the notice the subject was last sent (section 4.1.2).
    last_notice_seen: Mapped[str] = mapped_column(String(20), default="", info={"category": "marketing"})


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
    # Staff member who recorded the change (an e-mail to the DPO), or "".
    recorded_by: Mapped[str] = mapped_column(String(32), default="")


class OutgoingMessage(Base):
    """One message to send (the durable queue any replica works from) and, once sent, the record of it.

    States: pending → sending → sent; back to pending after a definite refusal (retried with back-off);
    failed (undeliverable, not allowed, token lost); interrupted (a send cut short whose outcome is
    unknown: never retried, so nothing is sent twice). No address and no token is kept in clear.
    """

    __tablename__ = "outgoing_messages"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # What made it (an event id, or campaign id + subject): one message per cause.
    dedup_key: Mapped[str] = mapped_column(String(80), unique=True)
    subject_id: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    purpose: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(20))
    campaign_id: Mapped[str] = mapped_column(String(32), default="", index=True)
    # What the message is about, e.g. a ticket id or a notice version ("" if nothing).
    ref: Mapped[str] = mapped_column(String(32), default="")
    token_id: Mapped[str] = mapped_column(String(32), default="")
    # The claimed link token, sealed (AES-GCM) so another replica can finish the send; cleared once sent.
    token_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    state: Mapped[str] = mapped_column(String(20), default="pending")
    reason: Mapped[str] = mapped_column(String(40), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lease_id: Mapped[str] = mapped_column(String(32), default="")
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (Index("ix_outgoing_due", "state", "next_attempt_at"),)


class Campaign(Base):
    """A campaign's content (no personal data) and its audience figures."""

    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(20))
    purpose: Mapped[str] = mapped_column(String(20))
    product: Mapped[str] = mapped_column(String(100), default="")
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    audience: Mapped[int] = mapped_column(Integer, default=0)
    eligible: Mapped[int] = mapped_column(Integer, default=0)


class SuppressionEntry(Base):
    """A keyed hash (HMAC-SHA256) of an address that must not be marketed to; never the address."""

    __tablename__ = "suppression_list"

    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NoticeVersion(Base):
    """A published version of the privacy notice or terms; `seq` orders them."""

    __tablename__ = "notice_versions"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(20), unique=True)
    document: Mapped[str] = mapped_column(String(10))
    changes_purpose: Mapped[bool] = mapped_column(Boolean)
    summary: Mapped[str] = mapped_column(Text, default="")
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ProductHolding(Base):
    """A customer holds a product: its update notices are service messages to them (section 4.1.5)."""

    __tablename__ = "product_holdings"

    subject_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    product: Mapped[str] = mapped_column(String(100), primary_key=True)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))


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

    def restricted_among(self, subject_ids: list[str]) -> set[str]:
        return set(self.session.scalars(select(Restriction.subject_id).where(Restriction.subject_id.in_(subject_ids))))

    def preferences_of(self, subject_ids: list[str]) -> dict[str, Preferences]:
        rows = self.session.scalars(select(Preferences).where(Preferences.subject_id.in_(subject_ids)))
        return {p.subject_id: p for p in rows}

    def all_preferences(self) -> list[Preferences]:
        return list(self.session.scalars(select(Preferences)))

    def all_restricted(self) -> set[str]:
        return set(self.session.scalars(select(Restriction.subject_id)))

    def holders(self, product: str) -> set[str]:
        return set(self.session.scalars(select(ProductHolding.subject_id).where(ProductHolding.product == product)))

    def holdings_of(self, subject_id: str) -> list[ProductHolding]:
        return list(self.session.scalars(select(ProductHolding).where(ProductHolding.subject_id == subject_id)))

    def holding(self, subject_id: str, product: str) -> ProductHolding | None:
        return self.session.get(ProductHolding, (subject_id, product))

    # --- notices ------------------------------------------------------------------
    def latest_notice(self) -> NoticeVersion | None:
        return self.session.scalars(select(NoticeVersion).order_by(NoticeVersion.seq.desc()).limit(1)).first()

    def notice(self, version: str) -> NoticeVersion | None:
        return self.session.scalars(select(NoticeVersion).where(NoticeVersion.version == version)).first()

    def purpose_floor(self) -> int:
        """Seq of the latest version that changed the marketing purpose (0 if none)."""
        row = self.session.scalars(select(NoticeVersion.seq).where(NoticeVersion.changes_purpose.is_(True))
                                   .order_by(NoticeVersion.seq.desc()).limit(1)).first()
        return int(row or 0)

    # --- suppression ------------------------------------------------------------------
    def suppressed_since(self, hashes: list[str]) -> datetime | None:
        rows = list(self.session.scalars(select(SuppressionEntry.created_at).where(SuppressionEntry.hash.in_(hashes))))
        return max(rows) if rows else None

    def suppress(self, digest: str, kind: str, reason: str, now: datetime) -> None:
        row = self.session.get(SuppressionEntry, digest)
        if row is None:
            self.session.add(SuppressionEntry(hash=digest, kind=kind, reason=reason, created_at=now))
        else:
            row.created_at, row.reason = now, reason

    # --- outgoing messages --------------------------------------------------------------
    def message(self, message_id: str) -> OutgoingMessage | None:
        return self.session.get(OutgoingMessage, message_id)

    def has_message(self, dedup_key: str) -> bool:
        return self.session.scalars(select(OutgoingMessage.id).where(OutgoingMessage.dedup_key == dedup_key)).first() \
            is not None

    def claim_due(self, now: datetime, lease_id: str, until: datetime, limit: int) -> list[OutgoingMessage]:
        """Lease up to `limit` due messages to this worker; a row leased by another live worker is skipped.

        The conditional UPDATE is the lock: two workers racing for a row cannot both match it.
        """
        free = or_(OutgoingMessage.lease_until.is_(None), OutgoingMessage.lease_until < now)
        ids = list(self.session.scalars(
            select(OutgoingMessage.id).where(OutgoingMessage.state == "pending",
                                             OutgoingMessage.next_attempt_at <= now, free)
            .order_by(OutgoingMessage.created_at).limit(limit)))
        if not ids:
            return []
        self.session.execute(update(OutgoingMessage)
                             .where(OutgoingMessage.id.in_(ids), OutgoingMessage.state == "pending", free)
                             .values(lease_id=lease_id, lease_until=until))
        return list(self.session.scalars(select(OutgoingMessage).where(OutgoingMessage.lease_id == lease_id)
                                         .order_by(OutgoingMessage.created_at)))

    def release(self, lease_id: str) -> None:
        self.session.execute(update(OutgoingMessage)
                             .where(OutgoingMessage.lease_id == lease_id, OutgoingMessage.state == "pending")
                             .values(lease_id="", lease_until=None))

    def enqueue_many(self, rows: list[dict[str, object]]) -> None:
        """One multi-row INSERT per chunk: a campaign to 100,000 people is a few statements."""
        for start in range(0, len(rows), 5000):
            self.session.execute(insert(OutgoingMessage), rows[start:start + 5000])

    def campaign(self, campaign_id: str) -> Campaign | None:
        return self.session.get(Campaign, campaign_id)

    def interrupt_stale_sends(self, now: datetime) -> int:
        """Sends whose worker died mid-way: the outcome is unknown, so they are never retried."""
        result = self.session.execute(update(OutgoingMessage)
                                      .where(OutgoingMessage.state == "sending", OutgoingMessage.lease_until < now)
                                      .values(state="interrupted", reason="outcome_unknown", token_sealed=None))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def communications(self, subject_id: str) -> list[OutgoingMessage]:
        return list(self.session.scalars(select(OutgoingMessage).where(OutgoingMessage.subject_id == subject_id)
                                         .order_by(OutgoingMessage.created_at)))

    def erase(self, subject_id: str) -> int:
        count = 0
        for model in (LedgerEntry, Preferences, Restriction, OutgoingMessage, ProductHolding):
            result = self.session.execute(delete(model).where(model.subject_id == subject_id))
            count += int(result.rowcount or 0)  # type: ignore[attr-defined]
        return count

