"""Tickets' tables and repository."""

from __future__ import annotations

from datetime import datetime

from servicekit.outbox import InboxMixin, OutboxMixin
from servicekit.restrictions import RestrictionMixin, is_restricted, set_restricted
from sqlalchemy import Boolean, DateTime, ForeignKey, Index, String, Text, and_, delete, or_, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Outbox(OutboxMixin, Base):
    pass


class Inbox(InboxMixin, Base):
    pass


class Restriction(RestrictionMixin, Base):
    pass


class Ticket(Base):
    """A support ticket; its text is personal data of its author."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_requester_created", "requester_id", "created_at", "id"),
        Index("ix_tickets_region_created", "region", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    requester_id: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(200), info={"category": "ticket_content"})
    body: Mapped[str] = mapped_column(Text, info={"category": "ticket_content"})
    product: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(20))
    region: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Reply(Base):
    __tablename__ = "replies"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[str] = mapped_column(String(32), index=True)
    body: Mapped[str] = mapped_column(Text, info={"category": "ticket_content"})
    internal: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


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

    def erase(self, subject_id: str) -> int:
        own = select(Ticket.id).where(Ticket.requester_id == subject_id)
        count = 0
        for statement in (
            delete(Reply).where(or_(Reply.ticket_id.in_(own), Reply.author_id == subject_id)),
            delete(Ticket).where(Ticket.requester_id == subject_id),
            delete(Restriction).where(Restriction.subject_id == subject_id),
        ):
            count += int(self.session.execute(statement).rowcount or 0)  # type: ignore[attr-defined]
        return count
