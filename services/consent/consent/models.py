"""Consent's tables and repository: preferences derived from an append-only, hash-chained ledger."""

from __future__ import annotations

from datetime import datetime

from servicekit import audit
from servicekit.audit import AuditLogMixin
from servicekit.caller import Principal
from servicekit.chain import ChainHeadMixin
from servicekit.errors import Collision
from servicekit.governance_models import GovernanceModels
from servicekit.holds import Hold, LegalHoldMixin, not_held, subject_holds
from servicekit.outbox import InboxMixin, OutboxMixin
from servicekit.restrictions import RestrictionMixin, is_restricted, set_restricted
from servicekit.retention import Batch, Key, PurgeRunMixin
from servicekit.statements import core_table
from servicekit.subject_data import TableRows
from servicekit.transfers import TransferLogMixin
from sqlalchemy import (
    Boolean,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    bindparam,
    delete,
    exists,
    insert,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

# Processing declarations (servicekit/declarations.py): every column names its category.
NONE = {"category": "none"}
ID = {"category": "3.2.1"}  # an account id: "username or similar identifier"
MARKETING = {"category": "3.2.6"}  # Marketing and Communications Data
TOKEN = {"category": "3.2.4"}  # a verification or reset link's token (Profile Data, as identity declares it)
USAGE = {"category": "3.2.5"}
CONTACT = {"category": "3.2.2"}  # keyed hashes of addresses: pseudonymised Contact Data
# A message that reached one of these states is not worked on again: only these are purged.
FINAL_STATES = ("sent", "failed", "interrupted", "skipped")
GENESIS = "0" * 64


class Base(DeclarativeBase):
    pass


class Outbox(OutboxMixin, Base):
    pass


class Inbox(InboxMixin, Base):
    pass


class Restriction(RestrictionMixin, Base):
    pass


class ChainHead(ChainHeadMixin, Base):
    pass


class AuditLog(AuditLogMixin, Base):
    """Every staff (and service) access to a subject's consent data: append-only, hash-chained (section 11)."""


class TransferLog(TransferLogMixin, Base):
    pass


class LegalHold(LegalHoldMixin, Base):
    """Projection of the rights service's legal holds (events through the inbox)."""


class PurgeRun(PurgeRunMixin, Base):
    pass


GOVERNANCE = GovernanceModels(ChainHead, AuditLog, TransferLog, LegalHold, PurgeRun)


class Preferences(Base):
    """Current marketing and cookie choices of one subject (section 3.2.6)."""

    __tablename__ = "preferences"

    subject_id: Mapped[str] = mapped_column(String(32), primary_key=True, info=ID)
    marketing_email: Mapped[bool] = mapped_column(Boolean, default=False, info=MARKETING)
    marketing_telephone: Mapped[bool] = mapped_column(Boolean, default=False, info=MARKETING)
    third_party_marketing: Mapped[bool] = mapped_column(Boolean, default=False, info=MARKETING)
    cookies_analytics: Mapped[bool] = mapped_column(Boolean, default=False, info=MARKETING)
    cookies_marketing: Mapped[bool] = mapped_column(Boolean, default=False, info=MARKETING)
    notice_version: Mapped[str] = mapped_column(String(20), info=MARKETING)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=MARKETING)
    # Objection to direct marketing (Art. 21(2)): absolute, every channel, until fresh consent.
    objected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True,
                                                         info=MARKETING)
    # When each marketing channel was last granted, and the notice sequence it was granted under: a
    # suppression entry newer than that channel's grant, or a purpose change after it, blocks that channel.
    # Per channel, since consent is specific: renewing one does not renew another (see granted/stamp).
    email_granted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True,
                                                              info=MARKETING)
    email_basis_seq: Mapped[int] = mapped_column(Integer, default=0, info=MARKETING)
    telephone_granted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True,
                                                                  info=MARKETING)
    telephone_basis_seq: Mapped[int] = mapped_column(Integer, default=0, info=MARKETING)
    third_party_granted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True,
                                                                    info=MARKETING)
    third_party_basis_seq: Mapped[int] = mapped_column(Integer, default=0, info=MARKETING)
    # When one of the subject's addresses went on the suppression list (their own objection or erasure
    # request, or an entry found for the address at sign-up or when it changed): consent older than this
    # does not count, so CanContact, batches and campaigns need no address (the sender still checks live).
    address_suppressed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True,
                                                                   info=MARKETING)
    # Version of the notice the subject was last sent (section 4.1.2).
    last_notice_seen: Mapped[str] = mapped_column(String(20), default="", info=MARKETING)

    def grant(self, channel: str) -> tuple[datetime | None, int]:
        """(when, under which notice seq) the marketing channel (email, telephone, third_party) was last granted."""
        if channel == "email":
            return self.email_granted_at, self.email_basis_seq
        if channel == "telephone":
            return self.telephone_granted_at, self.telephone_basis_seq
        if channel == "third_party":
            return self.third_party_granted_at, self.third_party_basis_seq
        raise ValueError(f"not a marketing channel: {channel}")

    def stamp(self, channel: str, at: datetime, notice_seq: int) -> None:
        """Record a fresh grant of one marketing channel; the others keep theirs."""
        if channel == "email":
            self.email_granted_at, self.email_basis_seq = at, notice_seq
        elif channel == "telephone":
            self.telephone_granted_at, self.telephone_basis_seq = at, notice_seq
        elif channel == "third_party":
            self.third_party_granted_at, self.third_party_basis_seq = at, notice_seq
        else:
            raise ValueError(f"not a marketing channel: {channel}")


class LedgerEntry(Base):
    """One consent given or withdrawn; `hash` chains each subject's entries.

    Append-only in the database (migration triggers): never updated, and deleted only once the
    subject's head row is gone (Erase removes the head first), so a stray DELETE is refused.
    """

    __tablename__ = "consent_ledger"
    # One entry per (subject, seq): two writers that raced past the head lock could not both commit.
    __table_args__ = (Index("ix_consent_ledger_subject_seq", "subject_id", "seq", unique=True),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, info=NONE)
    subject_id: Mapped[str] = mapped_column(String(32), info=ID)
    seq: Mapped[int] = mapped_column(info=NONE)
    purpose: Mapped[str] = mapped_column(String(30), info=MARKETING)
    channel: Mapped[str] = mapped_column(String(30), info=MARKETING)
    granted: Mapped[bool] = mapped_column(Boolean, info=MARKETING)
    source: Mapped[str] = mapped_column(String(30), info=MARKETING)
    notice_version: Mapped[str] = mapped_column(String(20), info=MARKETING)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=MARKETING)
    prev_hash: Mapped[str] = mapped_column(String(64), info=NONE)
    hash: Mapped[str] = mapped_column(String(64), info=NONE)
    # Staff member who recorded the change (an e-mail to the DPO), or "".
    recorded_by: Mapped[str] = mapped_column(String(32), default="", info=ID)


class LedgerHead(Base):
    """The newest seq and hash of each subject's ledger.

    An append first updates this row (its row lock on PostgreSQL, the write lock on SQLite), so
    concurrent changes for one subject queue instead of forking the chain; and verify_ledger
    compares it with the newest entry, so removing the newest entry is detected too.
    """

    __tablename__ = "consent_ledger_heads"

    subject_id: Mapped[str] = mapped_column(String(32), primary_key=True, info=ID)
    seq: Mapped[int] = mapped_column(Integer, info=NONE)
    hash: Mapped[str] = mapped_column(String(64), info=NONE)


class OutgoingMessage(Base):
    """One message to send (the durable queue any replica works from) and, once sent, the record of it.

    States: pending → sending → sent; back to pending after a definite refusal (retried with back-off);
    failed (undeliverable, not allowed, token lost); interrupted (a send cut short whose outcome is
    unknown: never retried, so nothing is sent twice). No address and no token is kept in clear.
    """

    __tablename__ = "outgoing_messages"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, info=NONE)
    # What made it (an event id, or campaign id + subject): one message per cause.
    dedup_key: Mapped[str] = mapped_column(String(80), unique=True, info=ID)
    subject_id: Mapped[str] = mapped_column(String(32), index=True, info=ID)
    kind: Mapped[str] = mapped_column(String(30), info=MARKETING)
    purpose: Mapped[str] = mapped_column(String(20), info=MARKETING)
    channel: Mapped[str] = mapped_column(String(20), info=MARKETING)
    campaign_id: Mapped[str] = mapped_column(String(32), default="", index=True, info=MARKETING)
    # What the message is about, e.g. a ticket id or a notice version ("" if nothing).
    ref: Mapped[str] = mapped_column(String(32), default="", info=MARKETING)
    # What else the message states about `ref`, as JSON of kinds and dates only (e.g. a rights
    # request's kind and new due date): never free text such as a DPO's reason.
    facts: Mapped[str] = mapped_column(String(200), default="", server_default="", info=MARKETING)
    token_id: Mapped[str] = mapped_column(String(32), default="", info=TOKEN)
    # The claimed link token, sealed (AES-GCM) so another replica can finish the send; cleared once sent.
    token_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, info=TOKEN)
    state: Mapped[str] = mapped_column(String(20), default="pending", info=MARKETING)
    reason: Mapped[str] = mapped_column(String(40), default="", info=MARKETING)
    attempts: Mapped[int] = mapped_column(Integer, default=0, info=NONE)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=NONE)
    lease_id: Mapped[str] = mapped_column(String(32), default="", info=NONE)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, info=NONE)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=MARKETING)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, info=MARKETING)

    __table_args__ = (Index("ix_outgoing_due", "state", "next_attempt_at"),
                      # The retention purge walks messages in (created_at, id) order.
                      Index("ix_outgoing_created", "created_at", "id"))


class Campaign(Base):
    """A campaign's content (no personal data) and its audience figures."""

    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, info=NONE)
    kind: Mapped[str] = mapped_column(String(20), info=NONE)
    subject: Mapped[str] = mapped_column(String(200), info=NONE)
    body: Mapped[str] = mapped_column(Text, info=NONE)
    channel: Mapped[str] = mapped_column(String(20), info=NONE)
    purpose: Mapped[str] = mapped_column(String(20), info=NONE)
    product: Mapped[str] = mapped_column(String(100), default="", info=NONE)
    # The admin who sent it (a staff member's account id).
    created_by: Mapped[str] = mapped_column(String(32), info=ID)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True, info=NONE)
    audience: Mapped[int] = mapped_column(Integer, default=0, info=NONE)
    eligible: Mapped[int] = mapped_column(Integer, default=0, info=NONE)
    # The caller's idempotency key (the Idempotency-Key header), or NULL: one campaign per admin and key,
    # so a retry after a timed-out answer finds the campaign instead of sending it twice.
    request_key: Mapped[str | None] = mapped_column(String(100), nullable=True, info=NONE)

    __table_args__ = (Index("ix_campaigns_request_key", "created_by", "request_key", unique=True),)


class SuppressionEntry(Base):
    """A keyed hash (HMAC-SHA256) of an address that must not be marketed to; never the address."""

    __tablename__ = "suppression_list"

    hash: Mapped[str] = mapped_column(String(64), primary_key=True, info=CONTACT)
    kind: Mapped[str] = mapped_column(String(10), info=CONTACT)
    reason: Mapped[str] = mapped_column(String(20), info=MARKETING)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=MARKETING)


# One statement on both dialects (SQLite 3.24+ and PostgreSQL spell ON CONFLICT alike). As text it is compiled
# once and cached; SQLAlchemy 2.0's on_conflict constructs have no cache key, so they compile on every call.
_SUPPRESS = text(
    f"INSERT INTO {SuppressionEntry.__tablename__} (hash, kind, reason, created_at) "
    "VALUES (:hash, :kind, :reason, :created_at) "
    "ON CONFLICT (hash) DO UPDATE SET created_at = excluded.created_at, reason = excluded.reason"
).bindparams(bindparam("created_at", type_=SuppressionEntry.__table__.c.created_at.type))


class NoticeVersion(Base):
    """A published version of the privacy notice or terms; `seq` orders them (both documents together)."""

    __tablename__ = "notice_versions"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, info=NONE)
    version: Mapped[str] = mapped_column(String(20), unique=True, info=NONE)
    document: Mapped[str] = mapped_column(String(10), info=NONE)
    changes_purpose: Mapped[bool] = mapped_column(Boolean, info=NONE)
    summary: Mapped[str] = mapped_column(Text, default="", info=NONE)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=NONE)
    # Customers queued the service message, answered again to a retried publication.
    recipients: Mapped[int] = mapped_column(Integer, default=0, server_default="0", info=NONE)


class ProductHolding(Base):
    """A customer holds a product: its update notices are service messages to them (section 4.1.5)."""

    __tablename__ = "product_holdings"

    subject_id: Mapped[str] = mapped_column(String(32), primary_key=True, info=ID)
    product: Mapped[str] = mapped_column(String(100), primary_key=True, info=USAGE)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=USAGE)


class Repository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: Base) -> None:
        self.session.add(row)

    def preferences(self, subject_id: str) -> Preferences | None:
        return self.session.get(Preferences, subject_id)

    def has_preferences(self, subject_id: str) -> bool:
        return self.session.execute(_HAS_PREFERENCES, {"subject_id": subject_id}).first() is not None

    def mark_address_suppressed(self, subject_id: str, at: datetime) -> None:
        """Record on the subject's row (if any) when their addresses went on the suppression list (on the
        table: a row loaded in this session is not refreshed, so call it where none is)."""
        self.session.execute(_MARK_SUPPRESSED, {"subject": subject_id, "at": at})

    def preferences_for_change(self, subject_id: str) -> Preferences | None:
        """The subject's preferences read under their ledger head's lock, so a concurrent change
        for the same subject is seen, not overwritten (None if there are none: nothing is locked)."""
        prefs = self.session.get(Preferences, subject_id)
        if prefs is None:
            return None
        self.lock_ledger(subject_id)
        self.session.refresh(prefs)
        return prefs

    # --- the ledger's per-subject head ------------------------------------------------
    def lock_ledger(self, subject_id: str) -> tuple[int, str]:
        """Take the subject's ledger head for this transaction and return its (seq, hash).

        The first statement is a write to the head row, so a second change for the same subject
        waits here until the first commits (PostgreSQL: row lock, then READ COMMITTED reads the
        new head; SQLite: the database's write lock) and links after it: the chain never forks.
        """
        touch = (update(LedgerHead).where(LedgerHead.subject_id == subject_id).values(seq=LedgerHead.seq)
                 .execution_options(synchronize_session=False))
        if self.session.execute(touch).rowcount == 0:  # type: ignore[attr-defined]
            # The subject's first entry: create the head (two first writers race harmlessly).
            dialect = postgresql if self.session.get_bind().dialect.name == "postgresql" else sqlite
            self.session.execute(dialect.insert(LedgerHead).values(subject_id=subject_id, seq=0, hash=GENESIS)
                                 .on_conflict_do_nothing(index_elements=["subject_id"]))
            self.session.execute(touch)
        seq, last = self.session.execute(
            select(LedgerHead.seq, LedgerHead.hash).where(LedgerHead.subject_id == subject_id)).one()
        return int(seq), str(last)

    def advance_ledger(self, subject_id: str, seq: int, hash_: str) -> None:
        self.session.execute(update(LedgerHead).where(LedgerHead.subject_id == subject_id)
                             .values(seq=seq, hash=hash_).execution_options(synchronize_session=False))

    def ledger_head(self, subject_id: str) -> tuple[int, str] | None:
        row = self.session.execute(
            select(LedgerHead.seq, LedgerHead.hash).where(LedgerHead.subject_id == subject_id)).first()
        return (int(row[0]), str(row[1])) if row else None

    def ledger(self, subject_id: str) -> list[LedgerEntry]:
        return list(self.session.scalars(
            select(LedgerEntry).where(LedgerEntry.subject_id == subject_id).order_by(LedgerEntry.seq)
        ))

    def latest_grants(self, subject_ids: list[str], channel: str) -> dict[str, LedgerEntry]:
        """Each subject's newest ledger entry granting `channel` (the consent a call list cites)."""
        found: dict[str, LedgerEntry] = {}
        for entry in self.session.scalars(select(LedgerEntry).where(
                LedgerEntry.subject_id.in_(subject_ids), LedgerEntry.channel == channel,
                LedgerEntry.granted.is_(True)).order_by(LedgerEntry.seq)):
            found[entry.subject_id] = entry
        return found

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
    def latest_notice(self, document: str = "") -> NoticeVersion | None:
        """The newest published version of `document` ("privacy" or "terms"), or of either if ""."""
        query = select(NoticeVersion)
        if document:
            query = query.where(NoticeVersion.document == document)
        return self.session.scalars(query.order_by(NoticeVersion.seq.desc()).limit(1)).first()

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

    def suppress(self, entries: list[tuple[str, str]], reason: str, now: datetime) -> None:
        """Put (kind, hash) entries on the list in one statement. An entry already there is stamped anew, not
        ignored: consent given after its old date (a re-sign-up) must not outlive this suppression."""
        if not entries:
            return
        rows = {digest: {"hash": digest, "kind": kind, "reason": reason, "created_at": now} for kind, digest in entries}
        self.session.execute(_SUPPRESS, list(rows.values()))

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

    def mark_sending(self, message_id: str, lease_id: str, until: datetime) -> bool:
        """pending → sending, only while this worker's lease holds (False: erased meanwhile, or the lease lost)."""
        result = self.session.execute(_MARK_SENDING, {"message": message_id, "lease": lease_id, "until": until})
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def record_sent(self, message_id: str, at: datetime) -> bool:
        """The message went: its sealed token is dropped (False: erased meanwhile, nothing to record)."""
        return bool(self.session.execute(_RECORD_SENT, {"message": message_id, "at": at}).rowcount)  # type: ignore[attr-defined]

    def note_notice_seen(self, subject_id: str, version: str) -> None:
        self.session.execute(_NOTICE_SEEN, {"subject": subject_id, "version": version})

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

    def insert_now(self, row: Base) -> None:
        """Insert at once, not at commit: a unique key taken by a concurrent transaction is met here
        (PostgreSQL waits for that transaction, then refuses), before any further work. Collision if taken."""
        self.session.add(row)
        try:
            self.session.flush()
        except IntegrityError as exc:
            raise Collision() from exc

    def campaign_by_key(self, created_by: str, request_key: str) -> Campaign | None:
        return self.session.scalars(select(Campaign).where(Campaign.created_by == created_by,
                                                           Campaign.request_key == request_key)).first()

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
        # The head goes first: the ledger's trigger refuses to delete entries whose head still exists.
        count = 0
        for statement in _ERASE:
            result = self.session.execute(statement, {"subject_id": subject_id})
            count += int(result.rowcount or 0)  # type: ignore[attr-defined]
        return count

    # --- governance: holds, audit, retention -------------------------------------------
    def subject_holds(self, subject_id: str) -> list[Hold]:
        return subject_holds(self.session, LegalHold, subject_id)

    def audit(self, principal: Principal, accesses: list[audit.Access], purpose: str, at: datetime) -> None:
        audit.record(self.session, AuditLog, ChainHead, principal, accesses, purpose=purpose, at=at)

    def access_log_of(self, subject_id: str) -> TableRows:
        return audit.export_table(self.session, AuditLog, subject_id)

    def purge_communications(self, cutoff: datetime, limit: int, after: Key | None) -> Batch:
        query = select(OutgoingMessage.id, OutgoingMessage.created_at).where(
            OutgoingMessage.created_at < cutoff, OutgoingMessage.state.in_(FINAL_STATES),
            not_held(LegalHold, "subject", OutgoingMessage.subject_id))
        if after is not None:
            query = query.where(tuple_(OutgoingMessage.created_at, OutgoingMessage.id) > tuple_(*after))
        rows = list(self.session.execute(query.order_by(OutgoingMessage.created_at, OutgoingMessage.id)
                                         .limit(limit)))
        if not rows:
            return Batch(0, 0, after)
        deleted = self.session.execute(delete(OutgoingMessage).where(OutgoingMessage.id.in_([r.id for r in rows])))
        return Batch(len(rows), int(deleted.rowcount or 0), (rows[-1].created_at, rows[-1].id))  # type: ignore[attr-defined]

    def purge_campaigns(self, cutoff: datetime, limit: int, after: Key | None) -> Batch:
        """Campaigns past the period none of whose messages is left (a held subject's keeps its campaign)."""
        query = select(Campaign.id, Campaign.created_at).where(
            Campaign.created_at < cutoff, ~exists().where(OutgoingMessage.campaign_id == Campaign.id))
        if after is not None:
            query = query.where(tuple_(Campaign.created_at, Campaign.id) > tuple_(*after))
        rows = list(self.session.execute(query.order_by(Campaign.created_at, Campaign.id).limit(limit)))
        if not rows:
            return Batch(0, 0, after)
        deleted = self.session.execute(delete(Campaign).where(Campaign.id.in_([r.id for r in rows])))
        return Batch(len(rows), int(deleted.rowcount or 0), (rows[-1].created_at, rows[-1].id))  # type: ignore[attr-defined]



# The erasure path's statements, built once on the tables (Core, a bound subject): building a statement and
# its cache key, and the ORM's bulk bookkeeping, cost more than running it on SQLite. The head goes first:
# the ledger's trigger refuses to delete entries whose head still exists.
_ERASE = [delete(core_table(model)).where(core_table(model).c.subject_id == bindparam("subject_id"))
          for model in (LedgerHead, LedgerEntry, Preferences, Restriction, OutgoingMessage, ProductHolding)]
_PREFERENCES = core_table(Preferences)
_HAS_PREFERENCES = select(_PREFERENCES.c.subject_id).where(_PREFERENCES.c.subject_id == bindparam("subject_id"))
_MARK_SUPPRESSED = (update(_PREFERENCES).where(_PREFERENCES.c.subject_id == bindparam("subject"))
                    .values(address_suppressed_at=bindparam("at", type_=_PREFERENCES.c.address_suppressed_at.type)))


# The sender's per-message writes: one conditional UPDATE each, no read of the row first.
_MESSAGES = core_table(OutgoingMessage)
_MARK_SENDING = (update(_MESSAGES).where(_MESSAGES.c.id == bindparam("message"),
                                         _MESSAGES.c.lease_id == bindparam("lease"), _MESSAGES.c.state == "pending")
                 .values(state="sending", lease_until=bindparam("until", type_=_MESSAGES.c.lease_until.type)))
_RECORD_SENT = (update(_MESSAGES).where(_MESSAGES.c.id == bindparam("message"))
                .values(state="sent", reason="", sent_at=bindparam("at", type_=_MESSAGES.c.sent_at.type),
                        token_sealed=None, attempts=_MESSAGES.c.attempts + 1, lease_id="", lease_until=None))
_NOTICE_SEEN = (update(_PREFERENCES).where(_PREFERENCES.c.subject_id == bindparam("subject"))
                .values(last_notice_seen=bindparam("version")))


def purge_communications(session: Session, cutoff: datetime, limit: int, after: Key | None) -> Batch:
    """One batch of the retention purge: messages queued before `cutoff` that are done with (sent,
    failed, skipped or interrupted) and whose subject no legal hold covers."""
    return Repository(session).purge_communications(cutoff, limit, after)


def purge_campaigns(session: Session, cutoff: datetime, limit: int, after: Key | None) -> Batch:
    return Repository(session).purge_campaigns(cutoff, limit, after)

