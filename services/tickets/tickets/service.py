"""Tickets' rules: a support desk on a need-to-know basis (sections 1.2, 5.1.1 and 11).

Who sees what is visibility.py; this module decides what each may do. Every change is an event
(`tickets.ticket.opened|replied|noted|status_changed|closed|priority_changed|assigned|rectified`)
carrying ids and facts only; the consent service turns those that concern a customer into service
communications (section 8.2).
Resellers are recipients (5.1.1): when a customer whose tickets a reseller's members saw is erased,
rectified or restricted, that reseller organisation gets a notice to act on (Art. 19).
Every access by support (agents, resellers) is recorded in the audit trail (section 11); a reseller
in another country reaches tickets only as the transfer policy allows (section 10); legal holds
keep tickets from erasure (section 12.1). Knows nothing of gRPC, NATS or SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from kaseum.events.v1 import tickets_events_pb2 as ev
from servicekit import audit, cursors
from servicekit.caller import Principal
from servicekit.db import UnitOfWork, UnitOfWorkFactory, new_id, utcnow
from servicekit.errors import InvalidArgument, NotFound, PermissionDenied
from servicekit.holds import kept_for
from servicekit.personal_data import table_of
from servicekit.region import RegionGuard
from servicekit.subject_data import Erasure, Export, Rectification, SubjectDataRules
from servicekit.transfers import TransferGate, uk_adequacy

from .models import RecipientNotice, Reply, Repository, Ticket, search_terms
from .scopes import ResellerScopes
from .visibility import Scope, Viewer

T = TypeVar("T")

STATUSES = ("open", "pending", "resolved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
# What a customer may do to their own ticket's status: close it, or reopen it once resolved or closed.
CUSTOMER_MOVES = {("open", "closed"), ("pending", "closed"), ("resolved", "closed"),
                  ("resolved", "open"), ("closed", "open")}
MAX_SUBJECT = 200
MAX_BODY = 20_000
MAX_QUERY = 200
FILTERS = ("status", "priority", "product", "assignee_id", "organisation_id")
# What a reseller sees of a ticket, for the transfer policy (section 10).
RESELLER_CATEGORIES = ("ticket_content", "3.2.1", "3.2.5")
# Erasure keeps the access records: they are the security record of who saw the data (Art. 5(1)(f), 32, 33).
KEPT_ACCESS_LOG = ("access_log", "kept as the record of who accessed the data (UK GDPR Art. 5(1)(f), 32, 33)")
# Rectification (Art. 16) corrects the author's own words, named `ticket:<id>:subject`, `ticket:<id>:body`
# or `reply:<id>:body`.
RECTIFIABLE = {("ticket", "subject"): MAX_SUBJECT, ("ticket", "body"): MAX_BODY, ("reply", "body"): MAX_BODY}
NOT_RECTIFIABLE = "not a field tickets holds (ticket:<id>:subject, ticket:<id>:body or reply:<id>:body)"
NOT_THEIRS = "no such ticket or reply written by this subject"
ACCESS_LOG_IS_FACT = ("the access log is a record of fact (who read which ticket, when and why), not the "
                      "subject's statement: it is not rectified (UK GDPR Art. 5(1)(f), 32, 33)")
# The rights request kinds recipients are told of (Art. 19), and what each asks of the reseller.
NOTIFIED_KINDS = {
    "erasure": ("had their personal data erased", "stop using and delete any copy you hold"),
    "rectification": ("had their personal data rectified", "update any copy you hold"),
    "restriction": ("had the processing of their personal data restricted",
                    "stop using any copy you hold except to store it, until told otherwise"),
}


@dataclass(frozen=True)
class Page:
    items: list[Ticket]
    next_cursor: str


@dataclass(frozen=True)
class NoticePage:
    items: list[RecipientNotice]
    next_cursor: str


def notice_message(notice: RecipientNotice) -> str:
    """What a notice tells the reseller: the subject id and what to do, no other personal data."""
    happened, todo = NOTIFIED_KINDS[notice.kind]
    return (f"The customer {notice.subject_id} {happened} at their request (rights request {notice.request_id}); "
            f"your organisation saw their support tickets, so please {todo} (privacy notice 5.1.1; "
            "UK GDPR Art. 19).")


@dataclass
class _Corrected:
    """What a rectification changed on one ticket."""

    ticket: Ticket
    fields: list[str] = field(default_factory=list)
    reply_ids: list[str] = field(default_factory=list)
    public: bool = False  # whether a customer sees any of it


@dataclass(frozen=True)
class Change:
    """What to change on a ticket; None leaves a field as it is."""

    status: str | None = None
    priority: str | None = None
    assignee_id: str | None = None


def _text(field: str, value: str, limit: int) -> str:
    cleaned = value.strip()
    if not cleaned:
        raise InvalidArgument(f"{field} is required", "missing_field")
    if len(cleaned) > limit:
        raise InvalidArgument(f"{field} must be at most {limit} characters", "too_long")
    return cleaned


def _one_of(field: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidArgument(f"{field} must be one of {', '.join(allowed)}", f"invalid_{field}")
    return value


class TicketsService(SubjectDataRules):
    def __init__(self, uow: UnitOfWorkFactory[Repository], region: str, scopes: ResellerScopes | None = None,
                 page_size: int = 20, transfers: TransferGate | None = None) -> None:
        self.uow = uow
        # The transfer policy (set by serve() once the runtime has built it). Without one, a reseller
        # outside the home country is refused: no transfer without a decision.
        self.transfers = transfers
        self.region = region
        self.guard = RegionGuard(region)
        self.page_size = page_size
        # No identity to ask (unit tests of other rules): resellers see nothing.
        self.scopes = scopes or ResellerScopes(lambda _account: Scope(), ttl=0)

    # --- who is asking ---------------------------------------------------------------------
    def _viewer(self, uow: UnitOfWork[Repository], principal: Principal) -> Viewer:
        self.guard.check(principal.region)
        if principal.role == "customer":
            shared = principal.organisation_id if uow.repo.shares_tickets(principal.organisation_id) else ""
            return Viewer(principal, shared_organisation=shared)
        if principal.role == "reseller":
            return Viewer(principal, scope=self.scopes.of(principal.subject_id))
        return Viewer(principal)

    def _visible(self, uow: UnitOfWork[Repository], viewer: Viewer, ticket_id: str) -> Ticket:
        ticket = uow.repo.ticket(ticket_id) if ticket_id else None
        # Absent and not-yours answer the same, so existence never leaks.
        if (ticket is None or ticket.region != self.region
                or not viewer.can_see(ticket.requester_id, ticket.organisation_id, ticket.requester_country)):
            raise NotFound("ticket not found")
        return ticket

    def _record(self, uow: UnitOfWork[Repository], viewer: Viewer, action: str, tickets: list[Ticket]) -> None:
        """Support's access to customers' tickets goes on the audit trail, in this transaction (R-SEC-1)."""
        if viewer.is_customer or not tickets:
            return
        uow.repo.audit(viewer.principal, [audit.Access(t.requester_id, action, t.id) for t in tickets],
                       organisation_id=viewer.principal.organisation_id if viewer.is_reseller else "")

    def _transfer(self, viewer: Viewer, *subject_ids: str) -> None:
        """A reseller established abroad receives the data only as the transfer policy allows (section 10):
        one decision, logged for each subject whose data crosses."""
        p = viewer.principal
        # An account without a country is homed in this deployment's region by identity: not abroad.
        if not viewer.is_reseller or not p.country:
            return
        if self.transfers is None:
            if p.country not in uk_adequacy().home:
                raise PermissionDenied("transfer refused: no transfer policy configured", "transfer_refused")
            return
        if p.country in self.transfers.policy.adequacy.home:
            return  # not a transfer
        self.transfers.require_subjects("reseller_access", p.country, p.organisation_id or p.subject_id,
                                        RESELLER_CATEGORIES, subject_ids, actor_id=p.subject_id)

    @staticmethod
    def _not_frozen(uow: UnitOfWork[Repository], viewer: Viewer, ticket: Ticket) -> None:
        """A restricted subject's tickets stay readable but are frozen for support's edits (Art. 18)."""
        if viewer.is_support and uow.repo.restricted(ticket.requester_id):
            raise PermissionDenied("processing of this customer's data is restricted", "restricted")

    # --- customers open, everyone permitted lists and reads ---------------------------------
    def open(self, principal: Principal, subject: str, body: str, product: str, priority: str = "") -> Ticket:
        if principal.role != "customer":
            raise PermissionDenied("only customers open tickets")
        self.guard.check(principal.region)
        now = utcnow()
        ticket = Ticket(id=new_id(), requester_id=principal.subject_id,
                        subject=_text("subject", subject, MAX_SUBJECT), body=_text("body", body, MAX_BODY),
                        product=product.strip()[:100], status="open", region=self.region,
                        priority=_one_of("priority", priority or "normal", PRIORITIES), assignee_id="",
                        organisation_id=principal.organisation_id, requester_country=principal.country,
                        created_at=now, updated_at=now, closed_at=None)
        with self.uow() as uow:
            uow.repo.add(ticket)
            uow.repo.index_text(ticket, new=True)
            uow.events.publish("tickets.ticket.opened", principal.subject_id, ev.TicketOpened(
                ticket_id=ticket.id, requester_id=principal.subject_id, product=ticket.product))
            uow.commit()
        return ticket

    def page(self, principal: Principal, filters: dict[str, str], cursor: str, page_size: int,
             query: str = "") -> Page:
        """The tickets the caller may see, newest first, filtered and optionally searched."""
        wanted = {name: value for name, value in filters.items() if value}
        unknown = set(wanted) - set(FILTERS)
        if unknown:
            raise InvalidArgument(f"unknown filter: {', '.join(sorted(unknown))}", "invalid_filter")
        if "status" in wanted:
            _one_of("status", wanted["status"], STATUSES)
        if "priority" in wanted:
            _one_of("priority", wanted["priority"], PRIORITIES)
        size = page_size or self.page_size
        if not 1 <= size <= 100:
            raise InvalidArgument("page_size must be between 1 and 100", "invalid_page_size")
        if len(query) > MAX_QUERY:
            raise InvalidArgument(f"the search must be at most {MAX_QUERY} characters", "too_long")
        terms = search_terms(query)
        if query.strip() and not terms:
            raise InvalidArgument("the search needs at least one word", "invalid_query")
        after = cursors.decode(cursor)
        with self.uow() as uow:
            viewer = self._viewer(uow, principal)
            if not viewer.may_list:
                raise PermissionDenied("not allowed to list tickets")
            items = uow.repo.page(viewer, region=self.region, filters=wanted, terms=terms, after=after,
                                  limit=size + 1)
            more = len(items) > size
            items = items[:size]
            if items and not viewer.is_customer:
                self._transfer(viewer, *[t.requester_id for t in items])
                # A queue page shows each ticket's requester and subject: one access per ticket.
                self._record(uow, viewer, "ticket.listed", items)
                uow.commit()
        next_cursor = cursors.encode(items[-1].created_at, items[-1].id) if more else ""
        return Page(items, next_cursor)

    def get(self, principal: Principal, ticket_id: str) -> tuple[Ticket, list[Reply]]:
        with self.uow() as uow:
            viewer = self._viewer(uow, principal)
            ticket = self._visible(uow, viewer, ticket_id)
            replies = uow.repo.replies(ticket.id, include_internal=viewer.sees_notes)
            if not viewer.is_customer:
                self._transfer(viewer, ticket.requester_id)
                self._record(uow, viewer, "ticket.read", [ticket])
                uow.commit()
            return ticket, replies

    # --- answering and working the queue ------------------------------------------------------
    def reply(self, principal: Principal, ticket_id: str, body: str, internal: bool) -> Reply:
        with self.uow() as uow:
            viewer = self._viewer(uow, principal)
            if internal and not viewer.sees_notes:
                raise PermissionDenied("only agents write internal notes")
            ticket = self._visible(uow, viewer, ticket_id)
            if viewer.is_customer and ticket.requester_id != principal.subject_id:
                raise PermissionDenied("only the requester answers their ticket")
            self._not_frozen(uow, viewer, ticket)
            self._transfer(viewer, ticket.requester_id)
            # The access log goes into the customer's export: an internal note is recorded as the read it
            # is (the note itself, with its author and time, is in the replies table for the DPO).
            self._record(uow, viewer, "ticket.read" if internal else "ticket.replied", [ticket])
            now = utcnow()
            reply = Reply(id=new_id(), ticket_id=ticket.id, author_id=principal.subject_id,
                          body=_text("body", body, MAX_BODY), internal=internal, created_at=now)
            uow.repo.add(reply)
            # A note has its own event type, which no customer-facing consumer subscribes to.
            uow.events.publish("tickets.ticket.noted" if internal else "tickets.ticket.replied",
                               ticket.requester_id, ev.TicketReplied(
                                   ticket_id=ticket.id, reply_id=reply.id, author_id=principal.subject_id,
                                   internal=internal, requester_id=ticket.requester_id))
            if not internal:
                # Only what the customer sees moves updated_at: a note must not show as activity.
                ticket.updated_at = now
                uow.repo.flush()
                uow.repo.index_text(ticket)
                # The customer answering a ticket that waits on them, was resolved or was closed reopens it
                # (as they could by hand): an answer on a closed ticket must not go unread.
                if viewer.is_customer and ticket.status in ("pending", "resolved", "closed"):
                    self._move(uow, ticket, "open", principal.subject_id, now)
            uow.commit()
            return reply

    def update(self, principal: Principal, ticket_id: str, change: Change) -> Ticket:
        """Status, priority and assignment. Customers may only close or reopen their own ticket."""
        with self.uow() as uow:
            viewer = self._viewer(uow, principal)
            ticket = self._visible(uow, viewer, ticket_id)
            now = utcnow()
            before = (ticket.status, ticket.priority, ticket.assignee_id)
            if viewer.is_customer:
                if ticket.requester_id != principal.subject_id or change.priority is not None \
                        or change.assignee_id is not None:
                    raise PermissionDenied("customers may only close or reopen their own tickets")
                if change.status is not None and change.status != ticket.status:
                    if (ticket.status, _one_of("status", change.status, STATUSES)) not in CUSTOMER_MOVES:
                        raise InvalidArgument(f"a {ticket.status} ticket cannot become {change.status}",
                                              "invalid_transition")
                    self._move(uow, ticket, change.status, principal.subject_id, now)
            elif viewer.is_agent:
                self._not_frozen(uow, viewer, ticket)
                if change.status is not None and change.status != ticket.status:
                    self._move(uow, ticket, _one_of("status", change.status, STATUSES), principal.subject_id, now)
                if change.priority is not None and change.priority != ticket.priority:
                    self._prioritise(uow, ticket, _one_of("priority", change.priority, PRIORITIES),
                                     principal.subject_id)
                if change.assignee_id is not None and change.assignee_id != ticket.assignee_id:
                    self._assign(uow, ticket, change.assignee_id.strip(), principal.subject_id)
            else:
                raise PermissionDenied("only agents change a ticket")
            self._record(uow, viewer, "ticket.updated", [ticket])
            if (ticket.status, ticket.priority, ticket.assignee_id) != before:
                ticket.updated_at = now
            uow.commit()
            return ticket

    @staticmethod
    def _move(uow: UnitOfWork[Repository], ticket: Ticket, status: str, by: str, now: datetime) -> None:
        before, ticket.status = ticket.status, status
        ticket.closed_at = now if status == "closed" else None
        uow.events.publish("tickets.ticket.status_changed", ticket.requester_id, ev.TicketStatusChanged(
            ticket_id=ticket.id, requester_id=ticket.requester_id, from_status=before, to_status=status,
            changed_by=by))
        if status == "closed":
            uow.events.publish("tickets.ticket.closed", ticket.requester_id, ev.TicketClosed(
                ticket_id=ticket.id, requester_id=ticket.requester_id))

    @staticmethod
    def _prioritise(uow: UnitOfWork[Repository], ticket: Ticket, priority: str, by: str) -> None:
        before, ticket.priority = ticket.priority, priority
        uow.events.publish("tickets.ticket.priority_changed", ticket.requester_id, ev.TicketPriorityChanged(
            ticket_id=ticket.id, requester_id=ticket.requester_id, from_priority=before, to_priority=priority,
            changed_by=by))

    @staticmethod
    def _assign(uow: UnitOfWork[Repository], ticket: Ticket, assignee_id: str, by: str) -> None:
        if len(assignee_id) > 32:
            raise InvalidArgument("assignee_id is not an account id", "invalid_assignee")
        ticket.assignee_id = assignee_id
        uow.events.publish("tickets.ticket.assigned", ticket.requester_id, ev.TicketAssigned(
            ticket_id=ticket.id, assignee_id=assignee_id, assigned_by=by))

    # --- what identity tells us ------------------------------------------------------------
    @staticmethod
    def apply_sharing(uow: UnitOfWork[Repository], organisation_id: str, enabled: bool, changed_at: datetime) -> None:
        """identity.organisation.ticket_sharing_changed, in the consumer's transaction."""
        uow.repo.set_sharing(organisation_id, enabled, changed_at)

    # --- recipients told (Art. 19) ------------------------------------------------------
    @staticmethod
    def notify_recipients(uow: UnitOfWork[Repository], subject_id: str, request_id: str, kind: str,
                          status: str, now: datetime | None = None) -> int:
        """rights.request.completed, in the consumer's transaction: one notice per reseller organisation
        whose members saw the subject's tickets, for a completed erasure, rectification or restriction.
        Returns how many were written (none again for a request already noticed)."""
        if status != "completed" or kind not in NOTIFIED_KINDS or not subject_id or not request_id:
            return 0
        when = now or utcnow()
        return sum(uow.repo.add_notice_once(RecipientNotice(
            id=new_id(), organisation_id=organisation_id, subject_id=subject_id, kind=kind,
            request_id=request_id, created_at=when, acknowledged_at=None))
            for organisation_id in uow.repo.reseller_organisations_that_saw(subject_id))

    def _reseller_organisation(self, principal: Principal) -> str:
        self.guard.check(principal.region)
        if principal.role != "reseller":
            raise PermissionDenied("only resellers read recipient notices")
        return principal.organisation_id

    def notices(self, principal: Principal, cursor: str, page_size: int) -> NoticePage:
        """The caller's reseller organisation's notices, newest first. Each shown is an access to the
        subject id it names, so it goes on the audit trail like a ticket shown in a queue."""
        organisation_id = self._reseller_organisation(principal)
        size = page_size or self.page_size
        if not 1 <= size <= 100:
            raise InvalidArgument("page_size must be between 1 and 100", "invalid_page_size")
        after = cursors.decode(cursor)
        if not organisation_id:
            return NoticePage([], "")
        with self.uow() as uow:
            items = uow.repo.notices(organisation_id, after, size + 1)
            more = len(items) > size
            items = items[:size]
            if items:
                uow.repo.audit(principal, [audit.Access(n.subject_id, "recipient_notice.read", n.id) for n in items],
                               organisation_id=organisation_id)
                uow.commit()
        return NoticePage(items, cursors.encode(items[-1].created_at, items[-1].id) if more else "")

    def acknowledge(self, principal: Principal, notice_id: str, now: datetime | None = None) -> RecipientNotice:
        """A member of the organisation says it has acted on the notice (the first acknowledgement stands)."""
        organisation_id = self._reseller_organisation(principal)
        with self.uow() as uow:
            notice = uow.repo.notice(notice_id) if notice_id and organisation_id else None
            # Another organisation's notice answers as an absent one: existence never leaks.
            if notice is None or notice.organisation_id != organisation_id:
                raise NotFound("notice not found")
            if notice.acknowledged_at is None:
                notice.acknowledged_at = now or utcnow()
            uow.repo.audit(principal, [audit.Access(notice.subject_id, "recipient_notice.acknowledged", notice.id)],
                           organisation_id=organisation_id)
            uow.commit()
            return notice

    # --- the personal-data contract ---------------------------------------------------
    def export(self, subject_id: str) -> Export:
        """Tickets and replies are read as they are sent (a history of thousands is never held whole);
        the access log and the notices are few and read at once."""
        with self.uow() as uow:
            access_log = uow.repo.access_log_of(subject_id)
            # Which reseller organisations were told of the subject's requests (Art. 15(1)(c), 19).
            notices = table_of("recipient_notices", "rights_requests", RecipientNotice,
                               uow.repo.notices_of(subject_id))
        return Export([
            table_of("tickets", "ticket_content", Ticket, self._streamed(lambda r: r.tickets_of(subject_id))),
            table_of("replies", "ticket_content", Reply, self._streamed(lambda r: r.replies_for_export(subject_id))),
            access_log, notices,
        ])

    def _streamed(self, read: Callable[[Repository], Iterator[T]]) -> Iterator[T]:
        """`read`'s rows in a session of their own, open from the first row taken until the last, or until
        the reader is closed (an abandoned export): nothing is read before it is taken."""
        with self.uow() as uow:
            yield from read(uow.repo)

    def erase(self, subject_id: str) -> Erasure:
        """Everything of the subject, except what a legal hold covers (reported as kept, with why)."""
        with self.uow() as uow:
            holds = uow.repo.holds_on(subject_id)
            if holds.on_subject:
                return Erasure(0, [("tickets and replies", kept_for(h)) for h in holds.on_subject] + [KEPT_ACCESS_LOG])
            count = uow.repo.erase(subject_id, keep_ticket_ids={h.target_id for h in holds.on_tickets})
            uow.commit()
            return Erasure(count, [(f"ticket {h.target_id} and its replies", kept_for(h)) for h in holds.on_tickets]
                           + [KEPT_ACCESS_LOG])

    def rectify(self, subject_id: str, corrections: dict[str, str]) -> Rectification:
        """The subject corrects words they wrote: their tickets' subject and body, their replies' body.
        Every other field is refused with its reason, never dropped. A ticket under a legal hold is kept
        as it was (the evidence the hold preserves); the subject can complete it with a reply instead
        (a supplementary statement, Art. 16)."""
        applied: list[str] = []
        rejected: list[tuple[str, str]] = []
        changed: dict[str, _Corrected] = {}  # by ticket id
        with self.uow() as uow:
            holds = uow.repo.holds_on(subject_id)
            held = {h.target_id for h in holds.on_tickets}
            on_subject = bool(holds.on_subject)
            for name, value in sorted(corrections.items()):
                kind, _, rest = name.partition(":")
                target_id, _, column = rest.rpartition(":")
                if kind == "access_log":
                    rejected.append((name, ACCESS_LOG_IS_FACT))
                    continue
                limit = RECTIFIABLE.get((kind, column))
                if limit is None or not target_id:
                    rejected.append((name, NOT_RECTIFIABLE))
                    continue
                reply = uow.repo.reply(target_id) if kind == "reply" else None
                ticket = uow.repo.ticket(reply.ticket_id if reply else target_id) if kind == "ticket" or reply else None
                if ticket is None or (reply is None and ticket.requester_id != subject_id) or (
                        reply is not None and reply.author_id != subject_id):
                    rejected.append((name, NOT_THEIRS))
                    continue
                if on_subject or ticket.id in held:
                    rejected.append((name, "kept unaltered under a legal hold (UK GDPR Art. 17(3)(e)); "
                                           "a reply on the ticket can complete it instead"))
                    continue
                try:
                    text = _text(column, value, limit)
                except InvalidArgument as exc:
                    rejected.append((name, exc.message))
                    continue
                entry = changed.setdefault(ticket.id, _Corrected(ticket))
                if reply is not None:
                    reply.body = text
                    entry.reply_ids.append(reply.id)
                    entry.public = entry.public or not reply.internal
                else:
                    setattr(ticket, column, text)
                    entry.fields.append(column)
                    entry.public = True
                applied.append(name)
            now = utcnow()
            uow.repo.flush()
            for entry in changed.values():
                ticket = entry.ticket
                # A corrected internal note changes nothing a customer sees, so it does not move updated_at.
                if entry.public:
                    ticket.updated_at = now
                uow.repo.index_text(ticket)  # the old words leave the search index too
                uow.events.publish("tickets.ticket.rectified", ticket.requester_id, ev.TicketRectified(
                    ticket_id=ticket.id, requester_id=ticket.requester_id, author_id=subject_id,
                    fields=entry.fields, reply_ids=entry.reply_ids))
            if changed:
                uow.repo.compact_search()
            uow.commit()
        return Rectification(applied, rejected)

    def set_restricted(self, subject_id: str, restricted: bool) -> bool:
        with self.uow() as uow:
            uow.repo.set_restricted(subject_id, restricted)
            uow.commit()
            return restricted

