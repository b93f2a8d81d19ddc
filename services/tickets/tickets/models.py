"""Tickets' tables and repository: the only module that knows them.

Text search lives in `ticket_search`, which migrations create by hand (SQLite FTS5 on the default,
a PostgreSQL `tsvector` with a GIN index in production), so it is declared unmanaged below.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

from servicekit import audit
from servicekit.audit import AuditLogMixin
from servicekit.caller import Principal
from servicekit.chain import ChainHeadMixin
from servicekit.cursors import newest_first
from servicekit.db import as_utc
from servicekit.governance_models import GovernanceModels
from servicekit.holds import Hold, LegalHoldMixin, not_held
from servicekit.outbox import InboxMixin, OutboxMixin
from servicekit.restrictions import RestrictionMixin, is_restricted, set_restricted
from servicekit.retention import Batch, Key, PurgeRunMixin
from servicekit.statements import core_table
from servicekit.subject_data import TableRows
from servicekit.transfers import TransferLogMixin
from sqlalchemy import (
    BindParameter,
    Boolean,
    ColumnElement,
    DateTime,
    Delete,
    ForeignKey,
    Index,
    MetaData,
    Select,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    column,
    delete,
    false,
    literal_column,
    or_,
    select,
    table,
    text,
    tuple_,
    union,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.sql.dml import ReturningDelete

from .visibility import Viewer

SEARCH_TABLE = "ticket_search"
# SQLite only: each ticket's FTS5 rowid (made by hand in migrations, like SEARCH_TABLE, whose prefix
# it shares so autogenerate leaves it alone).
SEARCH_ROWS = "ticket_search_rows"
# Up to this many search hits are fetched by id; past it the search is answered by walking the ticket
# order instead (see Repository.page).
SEARCH_HITS_FETCHED = 2000
# Rows fetched at a time while an access export streams a subject's tickets and replies.
EXPORT_BATCH = 500
# Processing declarations (servicekit/declarations.py): every column names its category.
NONE = {"category": "none"}
ID = {"category": "3.2.1"}  # an account id: "username or similar identifier"
CONTENT = {"category": "ticket_content"}
# What was done about a rights request, and when: evidence of compliance (section 13).
RIGHTS = {"category": "rights_requests"}


class Base(DeclarativeBase):
    # Tables made by hand-written migrations, which autogenerate must leave alone (FTS5 makes shadow
    # tables named after it).
    metadata = MetaData(info={"unmanaged_tables": (SEARCH_TABLE,)})


class Outbox(OutboxMixin, Base):
    pass


class Inbox(InboxMixin, Base):
    pass


class Restriction(RestrictionMixin, Base):
    pass


class ChainHead(ChainHeadMixin, Base):
    pass


class AuditLog(AuditLogMixin, Base):
    """Every staff and reseller access to a ticket: append-only, hash-chained (section 11)."""


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
        # The agent queue's common filters, each in keyset order.
        Index("ix_tickets_region_status_created", "region", "status", "created_at", "id"),
        Index("ix_tickets_region_priority_created", "region", "priority", "created_at", "id"),
        Index("ix_tickets_assignee_created", "assignee_id", "created_at", "id"),
        Index("ix_tickets_organisation_created", "organisation_id", "created_at", "id"),
        Index("ix_tickets_country_created", "requester_country", "created_at", "id"),
        # The retention purge walks closed tickets in (closed_at, id) order.
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
    priority: Mapped[str] = mapped_column(String(10), default="normal", server_default="normal", info=CONTENT)
    # Account id of the agent working on it, or "".
    assignee_id: Mapped[str] = mapped_column(String(32), default="", server_default="", info=ID)
    # The requester's customer organisation and country when the ticket was opened (from their
    # token): what colleagues' sharing and resellers' scopes are matched against.
    # (The company is Identity Data; the country is location, Technical Data.)
    organisation_id: Mapped[str] = mapped_column(String(32), default="", server_default="", info=ID)
    requester_country: Mapped[str] = mapped_column(String(2), default="", server_default="",
                                                   info={"category": "3.2.3"})
    # Set when it is closed, cleared on reopening: retention runs from here (section 12).
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, info=CONTENT)


class Reply(Base):
    __tablename__ = "replies"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, info=NONE)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True, info=NONE)
    author_id: Mapped[str] = mapped_column(String(32), index=True, info=ID)
    body: Mapped[str] = mapped_column(Text, info=CONTENT)
    internal: Mapped[bool] = mapped_column(Boolean, default=False, info=CONTENT)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=CONTENT)


class SharedOrganisation(Base):
    """Customer organisations whose members see each other's tickets (identity's setting, applied
    from its `identity.organisation.ticket_sharing_changed` events; absent means off)."""

    __tablename__ = "shared_organisations"

    # A company's setting, not a person's data.
    organisation_id: Mapped[str] = mapped_column(String(32), primary_key=True, info=NONE)
    enabled: Mapped[bool] = mapped_column(Boolean, info=NONE)
    # When identity made the change: a late redelivery of an older event does not undo a newer one.
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=NONE)


class RecipientNotice(Base):
    """A reseller organisation told that a customer whose tickets its members saw had their data erased,
    rectified or restricted (Art. 19): ids and facts only, never ticket text (written from the rights
    service's `rights.request.completed`, from the audit log, which erasure keeps)."""

    __tablename__ = "recipient_notices"
    __table_args__ = (
        # One notice per organisation and request, whatever the event stream redelivers.
        UniqueConstraint("organisation_id", "request_id", name="uq_recipient_notices_organisation_request"),
        Index("ix_recipient_notices_organisation_created", "organisation_id", "created_at", "id"),
        # The retention purge walks them in (created_at, id) order.
        Index("ix_recipient_notices_created", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, info=NONE)
    # The reseller company told: a company, not a person.
    organisation_id: Mapped[str] = mapped_column(String(32), info=NONE)
    subject_id: Mapped[str] = mapped_column(String(32), index=True, info=ID)
    # erasure, rectification or restriction.
    kind: Mapped[str] = mapped_column(String(20), info=RIGHTS)
    request_id: Mapped[str] = mapped_column(String(32), info=RIGHTS)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=RIGHTS)
    # When a member of the organisation acknowledged it; None until then.
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, info=RIGHTS)


def search_terms(query: str) -> list[str]:
    """The words of a search, lower-cased (letters and digits only: no query syntax reaches SQL)."""
    return re.findall(r"\w+", query.casefold())[:20]


class Holds(NamedTuple):
    """The active holds bearing on a subject's data: on the subject, and on tickets they opened or wrote in."""

    on_subject: list[Hold]
    on_tickets: list[Hold]


# --- statements of the erasure path, built once (building a statement cost more than running it) ------

_TICKETS, _REPLIES, _HOLDS = core_table(Ticket), core_table(Reply), core_table(LegalHold)
_RESTRICTIONS, _AUDIT, _NOTICES = core_table(Restriction), core_table(AuditLog), core_table(RecipientNotice)
# The hand-made search tables, as far as these statements need them (SQLite's FTS5 rowid is `rowid`).
_SEARCH = table(SEARCH_TABLE, column("ticket_id"), column("rowid"))
_SEARCH_ROWS = table(SEARCH_ROWS, column("ticket_id"), column("fts_rowid"))


def _subject() -> BindParameter[str]:
    return bindparam("subject", type_=String())


def _kept() -> BindParameter[Any]:
    return bindparam("keep", expanding=True, type_=String())


# Holds on the subject and on every ticket they opened or wrote in, in one statement (holds_on tells the
# scopes apart). One IN over a union, so both databases look each id up in the holds' index.
_HOLDS_ON = (
    select(_HOLDS.c.hold_id, _HOLDS.c.target_id, _HOLDS.c.reason_code, _HOLDS.c.review_at, _HOLDS.c.scope)
    .where(_HOLDS.c.released_at.is_(None), _HOLDS.c.target_id.in_(union(
        select(_subject()),
        select(_TICKETS.c.id).where(_TICKETS.c.requester_id == _subject()),
        select(_REPLIES.c.ticket_id).where(_REPLIES.c.author_id == _subject())))))
# Ticket ids given as a list (a purge batch, a re-indexed ticket), at most UNINDEX_CHUNK at a time.
_LISTED = bindparam("ids", expanding=True, type_=String())
UNINDEX_CHUNK = 500


def _unindexing(ids: Any, postgres: bool) -> tuple[Delete, ...]:
    """Statements removing the search rows of the tickets `ids` (a subquery or an expanding parameter)."""
    if postgres:
        return (delete(_SEARCH).where(_SEARCH.c.ticket_id.in_(ids)),)
    # FTS5 finds a row fast only by rowid (`ticket_id` is UNINDEXED: deleting by it scans the whole index),
    # so SQLite keeps each ticket's rowid in SEARCH_ROWS; `rowid IN (...)` is one lookup per rowid.
    return (delete(_SEARCH).where(_SEARCH.c.rowid.in_(
                select(_SEARCH_ROWS.c.fts_rowid).where(_SEARCH_ROWS.c.ticket_id.in_(ids)))),
            delete(_SEARCH_ROWS).where(_SEARCH_ROWS.c.ticket_id.in_(ids)))


@cache
def _unindexing_listed(postgres: bool) -> tuple[Delete, ...]:
    return _unindexing(_LISTED, postgres)


class _Erasing(NamedTuple):
    unindex: tuple[Delete, ...]
    replies: ReturningDelete[tuple[str, str]]
    tickets: ReturningDelete[tuple[str]]
    restriction: Delete


@cache
def _erasing(postgres: bool, keeping: bool) -> _Erasing:
    """The erasure's statements for a dialect, with or without tickets kept under holds (bound `keep`)."""
    own = select(_TICKETS.c.id).where(_TICKETS.c.requester_id == _subject())
    # Replies on their tickets and replies they wrote: by id from a union, as `ticket_id IN (...) OR author_id
    # = ...` makes PostgreSQL scan every reply.
    replies = delete(_REPLIES).where(_REPLIES.c.id.in_(union_all(
        select(_REPLIES.c.id).where(_REPLIES.c.ticket_id.in_(own)),
        select(_REPLIES.c.id).where(_REPLIES.c.author_id == _subject()))))
    tickets = delete(_TICKETS).where(_TICKETS.c.requester_id == _subject())
    if keeping:
        own = own.where(_TICKETS.c.id.not_in(_kept()))
        replies = replies.where(_REPLIES.c.ticket_id.not_in(_kept()))
        tickets = tickets.where(_TICKETS.c.id.not_in(_kept()))
    return _Erasing(_unindexing(own, postgres), replies.returning(_REPLIES.c.ticket_id, _REPLIES.c.author_id),
                    tickets.returning(_TICKETS.c.id),
                    delete(_RESTRICTIONS).where(_RESTRICTIONS.c.subject_id == _subject()))


# Reseller organisations whose members listed, read or answered a subject's tickets.
_RESELLERS_THAT_SAW = (
    select(_AUDIT.c.actor_organisation_id)
    .where(_AUDIT.c.subject_id == _subject(), _AUDIT.c.actor_role == "reseller",
           _AUDIT.c.actor_organisation_id != "", _AUDIT.c.action.like("ticket.%"))
    .distinct().order_by(_AUDIT.c.actor_organisation_id))


class Repository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: Base) -> None:
        self.session.add(row)

    def flush(self) -> None:
        self.session.flush()

    def ticket(self, ticket_id: str) -> Ticket | None:
        return self.session.get(Ticket, ticket_id)

    def reply(self, reply_id: str) -> Reply | None:
        return self.session.get(Reply, reply_id)

    def _visible(self, viewer: Viewer, region: str) -> ColumnElement[bool]:
        """The SQL twin of Viewer.can_see."""
        if viewer.is_customer:
            own = Ticket.requester_id == viewer.subject_id
            if viewer.shared_organisation:
                return or_(own, Ticket.organisation_id == viewer.shared_organisation)
            return own
        if viewer.is_agent:
            return Ticket.region == region
        if viewer.is_reseller:
            scope = viewer.scope
            clauses = []
            if scope.customer_organisation_ids:
                clauses.append(Ticket.organisation_id.in_(sorted(scope.customer_organisation_ids)))
            if scope.countries:
                clauses.append(Ticket.requester_country.in_(sorted(scope.countries)))
            return or_(*clauses) if clauses else false()
        return false()

    def page(self, viewer: Viewer, *, region: str, filters: dict[str, str], terms: list[str],
             after: tuple[datetime, str] | None, limit: int) -> list[Ticket]:
        """Newest first, keyset-paginated on (created_at, id): no OFFSET. `filters` are equalities on
        status, priority, product, assignee_id and organisation_id; `terms` a text search."""
        query: Select[tuple[Ticket]] = select(Ticket).where(self._visible(viewer, region))
        for name, value in filters.items():
            query = query.where(getattr(Ticket, name) == value)
        if terms:
            # Few hits (a rare word): fetch them and sort. Many (a common word): walk the ordered
            # index and keep the hits, which are then dense. Either plan alone is slow for the other.
            hits = list(self.session.scalars(self._matching(terms).limit(SEARCH_HITS_FETCHED + 1)))
            query = query.where(Ticket.id.in_(hits if len(hits) <= SEARCH_HITS_FETCHED else self._matching(terms)))
        return list(self.session.scalars(newest_first(query, Ticket.created_at, Ticket.id, after, limit)))

    # --- text search --------------------------------------------------------------------
    @property
    def _postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    def _matching(self, terms: list[str]) -> Select[tuple[str]]:
        if self._postgres:
            condition = text("tsv @@ plainto_tsquery('simple', :q)").bindparams(q=" ".join(terms))
        else:
            # Each word quoted: FTS5 treats it as a plain token, never as query syntax.
            condition = text(f"{SEARCH_TABLE} MATCH :q").bindparams(q=" ".join(f'"{t}"' for t in terms))
        return select(literal_column("ticket_id", String)).select_from(text(SEARCH_TABLE)).where(condition)

    def index_text(self, ticket: Ticket, new: bool = False) -> None:
        """(Re)write the ticket's searchable text: subject, body and public replies. Internal notes
        are never indexed, so no search can reveal them. A `new` ticket has neither replies nor a search
        row yet: nothing to read or remove first."""
        public: Iterable[str] = [] if new else self.session.scalars(
            select(Reply.body).where(Reply.ticket_id == ticket.id, Reply.internal.is_(False))
            .order_by(Reply.created_at, Reply.id))
        content = "\n".join([ticket.subject, ticket.body, *public])
        if not new:
            self._unindex([ticket.id])
        self.session.execute(text(f"INSERT INTO {SEARCH_TABLE} (ticket_id, content) VALUES (:id, :content)"),
                             {"id": ticket.id, "content": content})
        if not self._postgres:
            self.session.execute(text(f"INSERT INTO {SEARCH_ROWS} (ticket_id, fts_rowid) VALUES (:id, "
                                      "last_insert_rowid())"), {"id": ticket.id})

    def _unindex(self, ticket_ids: list[str]) -> None:
        statements = _unindexing_listed(self._postgres)
        for start in range(0, len(ticket_ids), UNINDEX_CHUNK):
            for statement in statements:
                self.session.execute(statement, {"ids": ticket_ids[start:start + UNINDEX_CHUNK]})

    def compact_search(self) -> None:
        merge_search_index(self.session.connection())

    # --- colleagues' sharing ---------------------------------------------------------------
    def shares_tickets(self, organisation_id: str) -> bool:
        row = self.session.get(SharedOrganisation, organisation_id) if organisation_id else None
        return row is not None and row.enabled

    def set_sharing(self, organisation_id: str, enabled: bool, changed_at: datetime) -> None:
        row = self.session.get(SharedOrganisation, organisation_id)
        if row is None:
            self.session.add(SharedOrganisation(organisation_id=organisation_id, enabled=enabled,
                                                changed_at=changed_at))
        elif as_utc(row.changed_at) <= changed_at:
            row.enabled, row.changed_at = enabled, changed_at

    def replies(self, ticket_id: str, include_internal: bool) -> list[Reply]:
        query = select(Reply).where(Reply.ticket_id == ticket_id)
        if not include_internal:
            query = query.where(Reply.internal.is_(False))
        return list(self.session.scalars(query.order_by(Reply.created_at, Reply.id)))

    def tickets_of(self, subject_id: str) -> Iterator[Ticket]:
        """Read in batches while iterated (a server-side cursor on PostgreSQL): never loaded whole."""
        return iter(self.session.scalars(select(Ticket).where(Ticket.requester_id == subject_id)
                                         .execution_options(yield_per=EXPORT_BATCH)))

    def replies_for_export(self, subject_id: str) -> Iterator[Reply]:
        """Public replies on the subject's tickets and anything the subject wrote; never internal notes.
        Read in batches while iterated, like `tickets_of`."""
        own = select(Ticket.id).where(Ticket.requester_id == subject_id)
        return iter(self.session.scalars(
            select(Reply).where(Reply.internal.is_(False),
                                or_(Reply.ticket_id.in_(own), Reply.author_id == subject_id))
            .order_by(Reply.created_at).execution_options(yield_per=EXPORT_BATCH)))

    def restricted(self, subject_id: str) -> bool:
        return is_restricted(self.session, Restriction, subject_id)

    def set_restricted(self, subject_id: str, restricted: bool) -> bool:
        return set_restricted(self.session, Restriction, subject_id, restricted)

    def erase(self, subject_id: str, keep_ticket_ids: set[str]) -> int:
        """Delete the subject's tickets, replies, search rows and restriction, except the tickets in
        `keep_ticket_ids` (legal holds) with every reply on them. Set-based: the same few statements however
        many tickets, no ORM object loaded (the deletes return only the ids the re-indexing needs)."""
        statements = _erasing(self._postgres, bool(keep_ticket_ids))
        params: dict[str, Any] = {"subject": subject_id}
        if keep_ticket_ids:
            params["keep"] = sorted(keep_ticket_ids)
        for statement in statements.unindex:  # while the tickets, which name the search rows, are there
            self.session.execute(statement, params)
        replies = self.session.execute(statements.replies, params).all()
        tickets = set(self.session.scalars(statements.tickets, params))
        restricted = self.session.execute(statements.restriction, params).rowcount  # type: ignore[attr-defined]
        # Others' tickets the subject replied on: re-index them without the subject's words.
        touched = {ticket_id for ticket_id, author_id in replies if author_id == subject_id} - tickets
        if touched:
            for ticket in self.session.scalars(select(Ticket).where(Ticket.id.in_(sorted(touched)))):
                self.index_text(ticket)
        # The index's old segments are merged by the scrubber after the erasure commits (merge_search_index),
        # once per round however many erasures came: merging here rewrote the whole index per erasure.
        return len(replies) + len(tickets) + int(restricted or 0)

    # --- recipients told of rights requests (Art. 19) ------------------------------------
    def reseller_organisations_that_saw(self, subject_id: str) -> list[str]:
        """Reseller organisations whose members listed, read or answered the subject's tickets, from the
        access log (kept after an erasure, so this still answers once the tickets are gone)."""
        return list(self.session.scalars(_RESELLERS_THAT_SAW, {"subject": subject_id}))

    def add_notice_once(self, notice: RecipientNotice) -> bool:
        """False when the organisation was already told of that request (one statement: a redelivery, or
        another replica writing the same notice at once, meets the unique key and writes nothing)."""
        insert_ = pg_insert if self._postgres else sqlite_insert
        values = {c.key: getattr(notice, c.key) for c in _NOTICES.columns}
        statement = insert_(_NOTICES).values(values).on_conflict_do_nothing(
            index_elements=["organisation_id", "request_id"])
        return bool(self.session.execute(statement).rowcount)  # type: ignore[attr-defined]

    def notice(self, notice_id: str) -> RecipientNotice | None:
        return self.session.get(RecipientNotice, notice_id)

    def notices(self, organisation_id: str, after: tuple[datetime, str] | None, limit: int) -> list[RecipientNotice]:
        """The organisation's notices, newest first, keyset-paginated on (created_at, id)."""
        query = select(RecipientNotice).where(RecipientNotice.organisation_id == organisation_id)
        return list(self.session.scalars(
            newest_first(query, RecipientNotice.created_at, RecipientNotice.id, after, limit)))

    def notices_of(self, subject_id: str) -> list[RecipientNotice]:
        return list(self.session.scalars(select(RecipientNotice).where(RecipientNotice.subject_id == subject_id)
                                         .order_by(RecipientNotice.created_at, RecipientNotice.id)))

    def purge_notices(self, cutoff: datetime, limit: int, after: Key | None) -> Batch:
        query = select(RecipientNotice.id, RecipientNotice.created_at).where(
            RecipientNotice.created_at < cutoff, not_held(LegalHold, "subject", RecipientNotice.subject_id))
        if after is not None:
            query = query.where(tuple_(RecipientNotice.created_at, RecipientNotice.id) > tuple_(*after))
        rows = list(self.session.execute(query.order_by(RecipientNotice.created_at, RecipientNotice.id).limit(limit)))
        if not rows:
            return Batch(0, 0, after)
        deleted = self.session.execute(delete(RecipientNotice).where(
            RecipientNotice.id.in_([r.id for r in rows]))).rowcount  # type: ignore[attr-defined]
        return Batch(len(rows), int(deleted or 0), (rows[-1].created_at, rows[-1].id))

    # --- governance: holds, audit, retention -------------------------------------------
    def holds_on(self, subject_id: str) -> Holds:
        """Active holds on the subject and on tickets they opened or wrote in (one statement)."""
        on_subject: list[Hold] = []
        on_tickets: list[Hold] = []
        for hold_id, target_id, reason_code, review_at, scope in self.session.execute(
                _HOLDS_ON, {"subject": subject_id}):
            if scope == "subject" and target_id == subject_id:
                on_subject.append(Hold(hold_id, target_id, reason_code, review_at))
            elif scope == "ticket" and target_id != subject_id:
                on_tickets.append(Hold(hold_id, target_id, reason_code, review_at))
        return Holds(on_subject, on_tickets)

    def audit(self, principal: Principal, accesses: list[audit.Access], organisation_id: str = "") -> None:
        audit.record(self.session, AuditLog, ChainHead, principal, accesses, organisation_id=organisation_id)

    def access_log_of(self, subject_id: str) -> TableRows:
        return audit.export_table(self.session, AuditLog, subject_id)

    def purge_closed(self, cutoff: datetime, limit: int, after: Key | None) -> Batch:
        query = select(Ticket.id, Ticket.closed_at).where(
            Ticket.closed_at < cutoff, not_held(LegalHold, "ticket", Ticket.id),
            not_held(LegalHold, "subject", Ticket.requester_id))
        if after is not None:
            query = query.where(tuple_(Ticket.closed_at, Ticket.id) > tuple_(*after))
        rows = list(self.session.execute(query.order_by(Ticket.closed_at, Ticket.id).limit(limit)))
        if not rows:
            return Batch(0, 0, after)
        ids = [r.id for r in rows]
        self._unindex(ids)
        replies = self.session.execute(delete(Reply).where(Reply.ticket_id.in_(ids))).rowcount  # type: ignore[attr-defined]
        tickets = self.session.execute(delete(Ticket).where(Ticket.id.in_(ids))).rowcount  # type: ignore[attr-defined]
        return Batch(len(ids), int(replies or 0) + int(tickets or 0), (rows[-1].closed_at, rows[-1].id))


def purge_closed_tickets(session: Session, cutoff: datetime, limit: int, after: Key | None) -> Batch:
    """One batch of the retention purge: tickets closed before `cutoff` that no legal hold covers (on the
    ticket or on its requester), with their replies and search rows."""
    return Repository(session).purge_closed(cutoff, limit, after)


def purge_recipient_notices(session: Session, cutoff: datetime, limit: int, after: Key | None) -> Batch:
    """One batch of the retention purge: recipient notices created before `cutoff` (unless a legal hold
    covers their subject)."""
    return Repository(session).purge_notices(cutoff, limit, after)


def merge_search_index(conn: Connection) -> None:
    """Rewrite the search index without deleted entries (SQLite FTS5 keeps a deleted document's terms in
    old segments until merged; with secure_delete the freed pages are zeroed). PostgreSQL's index rows
    are dead tuples, which VACUUM (the scrubber) removes."""
    if conn.dialect.name == "sqlite":
        conn.execute(text(f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}) VALUES ('optimize')"))
