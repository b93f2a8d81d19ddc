"""Tickets' tables and repository."""

from __future__ import annotations

from datetime import datetime

from servicekit import audit
from servicekit.audit import AuditLogMixin
from servicekit.caller import Principal
from servicekit.chain import ChainHeadMixin
from servicekit.governance_models import GovernanceModels
from servicekit.holds import LegalHoldMixin, active_holds, not_held
from servicekit.outbox import InboxMixin, OutboxMixin
from servicekit.restrictions import RestrictionMixin, is_restricted, set_restricted
from servicekit.retention import Batch, Key, PurgeRunMixin
from servicekit.subject_data import TableRows
from servicekit.transfers import TransferLogMixin
from sqlalchemy import Boolean, DateTime, ForeignKey, Index, String, Text, and_, delete, or_, select, tuple_
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

# Processing declarations (servicekit/declarations.py): every column names its category.
NONE = {"category": "none"}
ID = {"category": "3.2.1"}  # an account id: "username or similar identifier"
CONTENT = {"category": "ticket_content"}


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
    """Every staff (and, with issue 5, reseller) access to a ticket: append-only, hash-chained."""


class TransferLog(TransferLogMixin, Base):
    pass


class LegalHold(LegalHoldMixin, Base):
    """Projection of the rights service's legal holds (events through the inbox)."""


class PurgeRun(PurgeRunMixin, Base):
    pass


GOVERNANCE = GovernanceModels(ChainHead, AuditLog, TransferLog, LegalHold, PurgeRun)


class Ticket(Base):
    """A support ticket; its text is personal data of its author."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_requester_created", "requester_id", "created_at", "id"),
        Index("ix_tickets_region_created", "region", "created_at", "id"),
        # The retention purge walks closed tickets by closure time.
        Index("ix_tickets_closed_at", "closed_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, info=NONE)
    requester_id: Mapped[str] = mapped_column(String(32), info=ID)
    subject: Mapped[str] = mapped_column(String(200), info=CONTENT)
    body: Mapped[str] = mapped_column(Text, info=CONTENT)
    # Which product the customer uses: Usage Data.
    product: Mapped[str] = mapped_column(String(100), default="", info={"category": "3.2.5"})
    status: Mapped[str] = mapped_column(String(20), info=CONTENT)
    region: Mapped[str] = mapped_column(String(8), info=NONE)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=CONTENT)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=CONTENT)
    # When the ticket was closed: the retention clock (6 years) runs from here; None while open.
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, info=CONTENT)


class Reply(Base):
    __tablename__ = "replies"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, info=NONE)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True, info=NONE)
    author_id: Mapped[str] = mapped_column(String(32), index=True, info=ID)
    body: Mapped[str] = mapped_column(Text, info=CONTENT)
    internal: Mapped[bool] = mapped_column(Boolean, default=False, info=CONTENT)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=CONTENT)


class Repository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: Base) -> None:
        self.session.add(row)

    def ticket(self, ticket_id: str) -> Ticket | None:
        return self.session.get(Ticket, ticket_id)

    def page(self, *, requester_id: str | None, region: str, status: str,
             after: tuple[datetime, str] | None, limit: int) -> list[Ticket]:
        """Newest first, keyset-paginated on (created_at, id): no OFFSET."""
        if requester_id is not None:
            # A customer's own tickets: the (requester_id, created_at, id) index serves the order.
            # No region filter here: it would tempt the planner onto the region index, and the
            # region guard already keeps every stored ticket in this deployment's region.
            query = select(Ticket).where(Ticket.requester_id == requester_id)
        else:
            query = select(Ticket).where(Ticket.region == region)
        if status:
            query = query.where(Ticket.status == status)
        if after is not None:
            created, tid = after
            query = query.where(or_(Ticket.created_at < created,
                                    and_(Ticket.created_at == created, Ticket.id < tid)))
        return list(self.session.scalars(
            query.order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(limit)))

    def replies(self, ticket_id: str, include_internal: bool) -> list[Reply]:
        query = select(Reply).where(Reply.ticket_id == ticket_id)
        if not include_internal:
            query = query.where(Reply.internal.is_(False))
        return list(self.session.scalars(query.order_by(Reply.created_at, Reply.id)))

    def tickets_of(self, subject_id: str) -> list[Ticket]:
        return list(self.session.scalars(select(Ticket).where(Ticket.requester_id == subject_id)))

    def replies_for_export(self, subject_id: str) -> list[Reply]:
        """Public replies on the subject's tickets and anything the subject wrote; never internal notes."""
        own = select(Ticket.id).where(Ticket.requester_id == subject_id)
        return list(self.session.scalars(
            select(Reply).where(Reply.internal.is_(False),
                                or_(Reply.ticket_id.in_(own), Reply.author_id == subject_id))
            .order_by(Reply.created_at)))

    def restricted(self, subject_id: str) -> bool:
        return is_restricted(self.session, Restriction, subject_id)

    def set_restricted(self, subject_id: str, restricted: bool) -> bool:
        return set_restricted(self.session, Restriction, subject_id, restricted)

    def erase(self, subject_id: str, keep_ticket_ids: set[str]) -> int:
        """Delete the subject's tickets, replies and restriction, except the tickets in `keep_ticket_ids`
        (legal holds) with every reply on them."""
        own = select(Ticket.id).where(Ticket.requester_id == subject_id, Ticket.id.not_in(keep_ticket_ids))
        count = 0
        for statement in (
            delete(Reply).where(or_(Reply.ticket_id.in_(own), Reply.author_id == subject_id),
                                Reply.ticket_id.not_in(keep_ticket_ids)),
            delete(Ticket).where(Ticket.requester_id == subject_id, Ticket.id.not_in(keep_ticket_ids)),
            delete(Restriction).where(Restriction.subject_id == subject_id),
        ):
            count += int(self.session.execute(statement).rowcount or 0)  # type: ignore[attr-defined]
        return count

    # --- governance: holds, audit, retention -------------------------------------------
    def subject_holds(self, subject_id: str) -> list[LegalHoldMixin]:
        return active_holds(self.session, LegalHold, [subject_id], "subject")

    def ticket_holds_of(self, subject_id: str) -> list[LegalHoldMixin]:
        """Active holds on tickets the subject opened or wrote in."""
        ids = self.session.scalars(select(Ticket.id).where(Ticket.requester_id == subject_id).union(
            select(Reply.ticket_id).where(Reply.author_id == subject_id)))
        return active_holds(self.session, LegalHold, list(ids), "ticket")

    def audit(self, principal: Principal, accesses: list[audit.Access], organisation_id: str = "") -> None:
        audit.record(self.session, AuditLog, ChainHead, principal, accesses, organisation_id=organisation_id)

    def access_log_of(self, subject_id: str) -> TableRows:
        return audit.export_table(self.session, AuditLog, subject_id)


def purge_closed_tickets(session: Session, cutoff: datetime, limit: int, after: Key | None) -> Batch:
    """One batch of the retention purge: tickets closed before `cutoff` that no legal hold covers
    (on the ticket or on its requester), with their replies, in (closed_at, id) order after `after`."""
    query = select(Ticket.id, Ticket.closed_at).where(
        Ticket.closed_at < cutoff, not_held(LegalHold, "ticket", Ticket.id),
        not_held(LegalHold, "subject", Ticket.requester_id))
    if after is not None:
        query = query.where(tuple_(Ticket.closed_at, Ticket.id) > tuple_(*after))
    rows = list(session.execute(query.order_by(Ticket.closed_at, Ticket.id).limit(limit)))
    if not rows:
        return Batch(0, 0, after)
    ids = [r.id for r in rows]
    replies = session.execute(delete(Reply).where(Reply.ticket_id.in_(ids))).rowcount  # type: ignore[attr-defined]
    tickets = session.execute(delete(Ticket).where(Ticket.id.in_(ids))).rowcount  # type: ignore[attr-defined]
    return Batch(len(ids), int(replies or 0) + int(tickets or 0), (rows[-1].closed_at, rows[-1].id))
