"""Rights' tables and the repository: the only module that knows them."""

from __future__ import annotations

from datetime import UTC, datetime

from servicekit import audit
from servicekit.audit import AuditLogMixin
from servicekit.caller import Principal
from servicekit.chain import ChainHeadMixin
from servicekit.governance_models import GovernanceModels
from servicekit.holds import LegalHoldMixin, not_held
from servicekit.outbox import InboxMixin, OutboxMixin
from servicekit.personal_data import table_of
from servicekit.restrictions import RestrictionMixin, is_restricted, set_restricted
from servicekit.retention import Batch, Key, PurgeRunMixin
from servicekit.statements import core_table, insert_now
from servicekit.subject_data import TableRows
from servicekit.transfers import TransferLogMixin
from sqlalchemy import (
    DateTime,
    Dialect,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, aliased, mapped_column

# Statuses that end a request. Declared here because the unique index below needs them as SQL.
CLOSED_STATUSES = ("completed", "refused")
_OPEN = text("status NOT IN ('completed', 'refused')")
# Processing declarations (servicekit/declarations.py): every column names its category.
NONE = {"category": "none"}
ID = {"category": "3.2.1"}
REQUEST = {"category": "rights_requests"}
HOLD = {"category": "legal_holds"}


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp read back as aware UTC on every database (SQLite returns naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Outbox(OutboxMixin, Base):
    pass


class Inbox(InboxMixin, Base):
    pass


class Restriction(RestrictionMixin, Base):
    """Subjects who asked for restriction (Art. 18); their requests still proceed."""


class RightsRequest(Base):
    """One request to exercise a right of section 13.1; kept as evidence after completion."""

    __tablename__ = "rights_requests"
    __table_args__ = (
        # The DPO's queue and its keyset pages walk (due_at, id).
        Index("ix_rights_requests_due", "due_at", "id"),
        # A customer's own list walks the same order within one subject.
        Index("ix_rights_requests_subject_due", "subject_id", "due_at", "id"),
        # At most one open request per subject and kind, even when two filings race.
        Index("uq_rights_requests_open_kind", "subject_id", "kind", unique=True,
              sqlite_where=_OPEN, postgresql_where=_OPEN),
        # The retention purge walks completed requests in (completed_at, id) order.
        Index("ix_rights_requests_completed", "completed_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, info=NONE)
    subject_id: Mapped[str] = mapped_column(String(32), info=ID)
    kind: Mapped[str] = mapped_column(String(20), info=REQUEST)
    details: Mapped[str] = mapped_column(Text, default="", info=REQUEST)
    status: Mapped[str] = mapped_column(String(20), info=REQUEST)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, info=REQUEST)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime, info=REQUEST)
    # When the request was completed or refused: its 6-year retention runs from here.
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, info=REQUEST)
    region: Mapped[str] = mapped_column(String(8), info=NONE)
    # An objection's processing (direct_marketing, analytics, profiling, all); "" for other kinds.
    purpose: Mapped[str] = mapped_column(String(20), default="", info=REQUEST)
    # A rectification's corrections as a JSON object (field → corrected value).
    corrections: Mapped[str] = mapped_column(Text, default="{}", info=REQUEST)
    # Why the deadline was extended / the request refused: both are told to the subject.
    extension_reason: Mapped[str] = mapped_column(Text, default="", info=REQUEST)
    refusal_reason: Mapped[str] = mapped_column(Text, default="", info=REQUEST)
    # Until when an access/portability export may be downloaded; None when there is none.
    export_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, info=REQUEST)
    # "portal" (verified by the subject's session) or "dpo" (arrived by e-mail: verified by a code).
    channel: Mapped[str] = mapped_column(String(10), default="portal", info=REQUEST)
    # The one-time code's keyed hash (never the code), when it was given out, until when it is good,
    # and wrong tries (five void it: the DPO asks for a new code).
    code_hash: Mapped[str] = mapped_column(String(64), default="", info=NONE)
    code_claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, info=NONE)
    code_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, info=NONE)
    code_failures: Mapped[int] = mapped_column(Integer, default=0, info=NONE)
    # While the clock stands still for a clarification: since when (due_at moves on restart).
    clock_stopped_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, info=REQUEST)
    # A restriction being lifted: when it takes effect (the subject is told first).
    lift_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, info=REQUEST)
    # When the DPO was warned that the due date is a week away.
    warned_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, info=NONE)
    # Portability to another controller (Art. 20(2)): its HTTPS endpoint and country.
    destination_url: Mapped[str] = mapped_column(Text, default="", info=REQUEST)
    destination_country: Mapped[str] = mapped_column(String(2), default="", info=REQUEST)


class RequestStep(Base):
    """One service's part of a request (e.g. tickets/erase), driven by the orchestrator until done.

    A step is leased by one worker at a time (a conditional UPDATE on lease_until), so replicas
    share the work and a dead worker's lease simply expires; `phase` orders steps (identity's
    erasure runs after every other service's, which may still need to ask identity).
    """

    __tablename__ = "request_steps"
    __table_args__ = (
        # The orchestrator's scan: pending steps by when they are due.
        Index("ix_request_steps_due", "status", "next_attempt_at"),
    )

    request_id: Mapped[str] = mapped_column(String(32), primary_key=True, info=NONE)
    service: Mapped[str] = mapped_column(String(20), primary_key=True, info=NONE)
    operation: Mapped[str] = mapped_column(String(20), primary_key=True, info=NONE)
    phase: Mapped[int] = mapped_column(Integer, default=1, info=NONE)
    # pending, done or failed (kept failing: waits for the DPO's retry).
    status: Mapped[str] = mapped_column(String(10), default="pending", info=NONE)
    attempts: Mapped[int] = mapped_column(Integer, default=0, info=NONE)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, info=NONE)
    # A machine code (gRPC status name), never a message that could carry personal data.
    last_error: Mapped[str] = mapped_column(String(40), default="", info=NONE)
    # What the service reported doing ("erased 12 rows") and what it kept, as JSON: no personal data.
    outcome: Mapped[str] = mapped_column(String(200), default="", info=NONE)
    kept: Mapped[str] = mapped_column(Text, default="[]", info=REQUEST)
    lease_id: Mapped[str] = mapped_column(String(32), default="", info=NONE)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, info=NONE)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, info=NONE)


class ExportPart(Base):
    """One piece of one service's export for an access or portability request, as it answered (a
    serialized protobuf of bounded size: the contract's Export is a stream), kept only until the
    download link expires (7 days), then purged."""

    __tablename__ = "export_parts"
    __table_args__ = (Index("ix_export_parts_created", "created_at", "request_id", "service"),)

    request_id: Mapped[str] = mapped_column(String(32), primary_key=True, info=NONE)
    service: Mapped[str] = mapped_column(String(20), primary_key=True, info=NONE)
    # The piece's place in the service's answer, from 0.
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, default=0, info=NONE)
    # kaseum.privacy.v1.ExportResponse: a piece of everything that service holds on the subject.
    export: Mapped[bytes] = mapped_column(LargeBinary, info={"category": "rights_requests"})
    # kaseum.privacy.v1.Declarations of that service (purposes, recipients, retention), on piece 0
    # (empty on the others): no personal data.
    declarations: Mapped[bytes] = mapped_column(LargeBinary, info=NONE)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, info=NONE)


class ErasureLedger(Base):
    """Subjects erased, by id only: replayed after a database restore so that a backup taken before
    an erasure does not bring the subject back (`python -m rights replay-erasures`)."""

    __tablename__ = "erasure_ledger"

    subject_id: Mapped[str] = mapped_column(String(32), primary_key=True, info=ID)
    request_id: Mapped[str] = mapped_column(String(32), info=NONE)
    erased_at: Mapped[datetime] = mapped_column(UtcDateTime, info=NONE)


class LegalHold(LegalHoldMixin, Base):
    """The authoritative legal holds (section 12.1): placed and released by the DPO, never deleted
    while in force; every other service keeps a projection from rights.hold.* events."""

    note: Mapped[str] = mapped_column(Text, default="", info=HOLD)
    placed_by: Mapped[str] = mapped_column(String(64), info=ID)
    released_by: Mapped[str] = mapped_column(String(64), default="", info=ID)


class ChainHead(ChainHeadMixin, Base):
    pass


class AuditLog(AuditLogMixin, Base):
    """The DPO's reads of rights requests and every change of a legal hold: append-only, hash-chained."""


class TransferLog(TransferLogMixin, Base):
    pass


class PurgeRun(PurgeRunMixin, Base):
    pass


GOVERNANCE = GovernanceModels(ChainHead, AuditLog, TransferLog, LegalHold, PurgeRun)


# An erasure's statement, built once (on a hot path, building a statement costs more than running it on
# SQLite), on the table: the ORM's delete would first work out which loaded objects it removes.
_PARTS, _REQUESTS = core_table(ExportPart), core_table(RightsRequest)
OPEN_REQUEST = select(RightsRequest).where(
    RightsRequest.subject_id == bindparam("subject"), RightsRequest.kind == bindparam("kind"),
    RightsRequest.status.not_in(CLOSED_STATUSES))
ERASE_EXPORTS = delete(_PARTS).where(_PARTS.c.request_id.in_(
    select(_REQUESTS.c.id).where(_REQUESTS.c.subject_id == bindparam("subject"))))
_LEDGER = core_table(ErasureLedger)
ON_LEDGER = select(_LEDGER.c.subject_id).where(_LEDGER.c.subject_id == bindparam("subject"))


class Repository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: Base) -> None:
        self.session.add(row)

    def insert_unless_duplicate(self, row: RightsRequest) -> bool:
        """Insert now (filing is the hot path of a burst: one statement, not the unit of work); False (and
        the transaction rolled back) if an open twin already exists."""
        try:
            insert_now(self.session, [row])
        except IntegrityError:
            self.session.rollback()
            return False
        return True

    def request(self, request_id: str, lock: bool = False) -> RightsRequest | None:
        """`lock`: hold the row until commit, as `requests_by_id` does, so the orchestrator and the DPO's
        actions change a request one after the other, each seeing the other's result."""
        if lock:
            return self.requests_by_id([request_id], lock=True).get(request_id)
        return self.session.get(RightsRequest, request_id)

    def requests_by_id(self, request_ids: list[str], lock: bool = False) -> dict[str, RightsRequest]:
        """The requests, in id order; `lock`: each row held until commit (FOR UPDATE, taken in id order, so
        two workers locking overlapping batches queue rather than deadlock), read fresh."""
        if not request_ids:
            return {}
        query = select(RightsRequest).where(RightsRequest.id.in_(request_ids)).order_by(RightsRequest.id)
        if lock and self.session.get_bind().dialect.name == "sqlite":
            # SQLite has no row locks and reads outside a write transaction: take the database's write lock
            # first (an UPDATE that changes nothing), so what is read next is what this transaction writes over.
            self.session.execute(update(RightsRequest).where(RightsRequest.id.in_(request_ids))
                                 .values(id=RightsRequest.id).execution_options(synchronize_session=False))
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        return {r.id: r for r in self.session.scalars(query)}

    def open_request(self, subject_id: str, kind: str) -> RightsRequest | None:
        return self.session.scalars(OPEN_REQUEST, {"subject": subject_id, "kind": kind}).first()

    def page(self, *, subject_id: str | None, status: str, overdue_at: datetime | None,
             after: tuple[datetime, str] | None, limit: int) -> list[RightsRequest]:
        """Requests in (due_at, id) order after the cursor position (keyset: no OFFSET)."""
        query = select(RightsRequest)
        if subject_id is not None:
            query = query.where(RightsRequest.subject_id == subject_id)
        if status:
            query = query.where(RightsRequest.status == status)
        if overdue_at is not None:
            query = query.where(RightsRequest.due_at < overdue_at,
                                RightsRequest.status.not_in(CLOSED_STATUSES))
        if after is not None:
            due, last_id = after
            query = query.where(or_(RightsRequest.due_at > due,
                                    and_(RightsRequest.due_at == due, RightsRequest.id > last_id)))
        query = query.order_by(RightsRequest.due_at, RightsRequest.id).limit(limit)
        return list(self.session.scalars(query).all())

    def rows_of(self, subject_id: str) -> list[TableRows]:
        requests = self.session.scalars(
            select(RightsRequest).where(RightsRequest.subject_id == subject_id)
            .order_by(RightsRequest.received_at, RightsRequest.id)
        ).all()
        restriction = self.session.scalars(select(Restriction).where(Restriction.subject_id == subject_id)).all()
        return [
            table_of("rights_requests", "rights", RightsRequest, requests),
            table_of("restrictions", "rights", Restriction, restriction),
            audit.export_table(self.session, AuditLog, subject_id),
        ]

    def set_restricted(self, subject_id: str, restricted: bool) -> bool:
        return set_restricted(self.session, Restriction, subject_id, restricted)

    def is_restricted(self, subject_id: str) -> bool:
        return is_restricted(self.session, Restriction, subject_id)

    # --- orchestration: steps, exports, the erasure ledger ------------------------------
    def add_steps(self, steps: list[RequestStep]) -> None:
        insert_now(self.session, steps)

    def steps(self, request_id: str) -> list[RequestStep]:
        return list(self.session.scalars(select(RequestStep).where(RequestStep.request_id == request_id)
                                         .order_by(RequestStep.phase, RequestStep.service, RequestStep.operation)))

    def steps_of(self, request_ids: list[str]) -> dict[str, list[RequestStep]]:
        found: dict[str, list[RequestStep]] = {r: [] for r in request_ids}
        if request_ids:
            for step in self.session.scalars(select(RequestStep).where(RequestStep.request_id.in_(request_ids))
                                             .order_by(RequestStep.phase, RequestStep.service)):
                found[step.request_id].append(step)
        return found

    def claim_due_steps(self, now: datetime, lease_id: str, until: datetime, limit: int) -> list[RequestStep]:
        """Lease up to `limit` due steps to this worker. The conditional UPDATE is the lock: two
        replicas racing for a step cannot both match it, and a dead worker's lease expires."""
        free = or_(RequestStep.lease_until.is_(None), RequestStep.lease_until < now)
        earlier = aliased(RequestStep)
        # A step waits while any step of an earlier phase of its request is not done.
        waiting = select(earlier.request_id).where(earlier.request_id == RequestStep.request_id,
                                                   earlier.phase < RequestStep.phase, earlier.status != "done")
        due = and_(RequestStep.status == "pending", RequestStep.next_attempt_at <= now, free, ~waiting.exists())
        keys = list(self.session.execute(
            select(RequestStep.request_id, RequestStep.service, RequestStep.operation).where(due)
            .order_by(RequestStep.next_attempt_at).limit(limit)))
        if not keys:
            return []
        self.session.execute(update(RequestStep).where(
            tuple_(RequestStep.request_id, RequestStep.service, RequestStep.operation).in_([tuple(k) for k in keys]),
            due).values(lease_id=lease_id, lease_until=until))
        return list(self.session.scalars(select(RequestStep).where(RequestStep.lease_id == lease_id)
                                         .order_by(RequestStep.next_attempt_at)))

    def release_steps(self, lease_id: str) -> None:
        self.session.execute(update(RequestStep).where(RequestStep.lease_id == lease_id,
                                                       RequestStep.status == "pending")
                             .values(lease_id="", lease_until=None))

    def step(self, request_id: str, service: str, operation: str, lock: bool = False) -> RequestStep | None:
        """`lock`: hold the row until commit (FOR UPDATE), e.g. while writing under the step's lease."""
        return self.session.get(RequestStep, (request_id, service, operation), with_for_update=lock or None,
                                populate_existing=lock)

    def schedule_steps(self, request_id: str, at: datetime | None, operation: str = "") -> None:
        """Start (a time) or hold (None) the request's pending steps, or only those of `operation`."""
        query = update(RequestStep).where(RequestStep.request_id == request_id, RequestStep.status == "pending")
        if operation:
            query = query.where(RequestStep.operation == operation)
        self.session.execute(query.values(next_attempt_at=at))

    def due_soon_unwarned(self, until: datetime, limit: int) -> list[RightsRequest]:
        return list(self.session.scalars(select(RightsRequest).where(
            RightsRequest.status.not_in(CLOSED_STATUSES), RightsRequest.warned_at.is_(None),
            RightsRequest.due_at <= until).order_by(RightsRequest.due_at).limit(limit)))

    def save_export_part(self, part: ExportPart) -> None:
        self.session.add(part)

    def clear_export(self, request_id: str, service: str) -> None:
        """A service's earlier pieces for the request (an earlier attempt's), before it answers again."""
        self.session.execute(delete(ExportPart).where(ExportPart.request_id == request_id,
                                                      ExportPart.service == service))

    def export_pieces(self, request_id: str) -> list[tuple[str, int]]:
        """(service, seq) of every stored piece of the request's export, in order."""
        return [(r.service, r.seq) for r in self.session.execute(
            select(ExportPart.service, ExportPart.seq).where(ExportPart.request_id == request_id)
            .order_by(ExportPart.service, ExportPart.seq))]

    def export_part(self, request_id: str, service: str, seq: int) -> ExportPart | None:
        return self.session.get(ExportPart, (request_id, service, seq))

    def first_part_at(self, request_id: str) -> datetime | None:
        value = self.session.scalar(select(func.min(ExportPart.created_at))
                                    .where(ExportPart.request_id == request_id))
        return None if value is None else (value.replace(tzinfo=UTC) if value.tzinfo is None else value)

    def record_erasure(self, subject_id: str, request_id: str, at: datetime) -> None:
        if self.session.connection().execute(ON_LEDGER, {"subject": subject_id}).first() is None:
            insert_now(self.session, [ErasureLedger(subject_id=subject_id, request_id=request_id, erased_at=at)])

    def erasure_ledger(self) -> list[ErasureLedger]:
        return list(self.session.scalars(select(ErasureLedger).order_by(ErasureLedger.erased_at)))

    def erase_exports(self, subject_id: str) -> int:
        result = self.session.connection().execute(ERASE_EXPORTS, {"subject": subject_id})
        return int(result.rowcount or 0)

    # --- governance: holds, audit, retention -------------------------------------------
    def hold(self, hold_id: str) -> LegalHold | None:
        return self.session.get(LegalHold, hold_id) if hold_id else None

    def holds(self, include_released: bool, target_id: str) -> list[LegalHold]:
        query = select(LegalHold)
        if not include_released:
            query = query.where(LegalHold.released_at.is_(None))
        if target_id:
            query = query.where(LegalHold.target_id == target_id)
        return list(self.session.scalars(query.order_by(LegalHold.placed_at.desc(), LegalHold.hold_id)))

    def audit(self, principal: Principal, accesses: list[audit.Access]) -> None:
        audit.record(self.session, AuditLog, ChainHead, principal, accesses)


def purge_completed_requests(session: Session, cutoff: datetime, limit: int, after: Key | None) -> Batch:
    """One batch: requests completed (or refused) before `cutoff` whose subject no legal hold covers."""
    query = select(RightsRequest.id, RightsRequest.completed_at).where(
        RightsRequest.completed_at < cutoff, not_held(LegalHold, "subject", RightsRequest.subject_id))
    if after is not None:
        query = query.where(tuple_(RightsRequest.completed_at, RightsRequest.id) > tuple_(*after))
    rows = list(session.execute(query.order_by(RightsRequest.completed_at, RightsRequest.id).limit(limit)))
    if not rows:
        return Batch(0, 0, after)
    ids = [r.id for r in rows]
    session.execute(delete(RequestStep).where(RequestStep.request_id.in_(ids)))
    session.execute(delete(ExportPart).where(ExportPart.request_id.in_(ids)))
    deleted = session.execute(delete(RightsRequest).where(  # type: ignore[attr-defined]
        RightsRequest.id.in_(ids))).rowcount
    return Batch(len(rows), int(deleted or 0), (rows[-1].completed_at, rows[-1].id))


def purge_released_holds(session: Session, cutoff: datetime, limit: int, after: Key | None) -> Batch:
    """One batch: holds released before `cutoff` (their record outlives them by the limitation period)."""
    query = select(LegalHold.hold_id, LegalHold.released_at).where(LegalHold.released_at < cutoff)
    if after is not None:
        query = query.where(tuple_(LegalHold.released_at, LegalHold.hold_id) > tuple_(*after))
    rows = list(session.execute(query.order_by(LegalHold.released_at, LegalHold.hold_id).limit(limit)))
    if not rows:
        return Batch(0, 0, after)
    deleted = session.execute(delete(LegalHold).where(  # type: ignore[attr-defined]
        LegalHold.hold_id.in_([r.hold_id for r in rows]))).rowcount
    return Batch(len(rows), int(deleted or 0), (rows[-1].released_at, rows[-1].hold_id))


def purge_expired_exports(session: Session, cutoff: datetime, limit: int, after: Key | None) -> Batch:
    """One batch: export parts built before `cutoff` (their 7-day download link has expired;
    a request's link expires 7 days after its first part was built, so none outlives its link).
    A service's pieces go together, so no export is ever left with a piece missing."""
    query = select(ExportPart.created_at, ExportPart.request_id, ExportPart.service).where(
        ExportPart.created_at < cutoff)
    if after is not None:
        query = query.where(tuple_(ExportPart.created_at, ExportPart.request_id, ExportPart.service) > tuple_(*after))
    rows = list(session.execute(query.order_by(ExportPart.created_at, ExportPart.request_id, ExportPart.service)
                                .limit(limit)))
    if not rows:
        return Batch(0, 0, after)
    deleted = 0
    for request_id, service in dict.fromkeys((row.request_id, row.service) for row in rows):
        result = session.execute(delete(ExportPart).where(
            ExportPart.request_id == request_id, ExportPart.service == service))
        deleted += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return Batch(len(rows), deleted, (rows[-1].created_at, rows[-1].request_id, rows[-1].service))
