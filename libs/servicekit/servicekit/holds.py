"""Legal holds (notice section 12.1; R-RET-2; Art. 17(3)(e)): what a hold covers is neither purged nor erased.

The rights service owns holds (`kaseum.rights.v1.LegalHolds`) and publishes `rights.hold.placed` /
`rights.hold.released` (ids, scope, reason code, review date: no personal data). Every other
service that holds personal data keeps a local projection in its own `legal_holds` table, fed
through its inbox, so its purge and its Erase consult holds without a synchronous call to rights.
Rows are never deleted: a release stamps `released_at`, so a release that arrives before its
placement (two replicas, redelivery) still wins.

To adopt in a service:
1. in models.py `class LegalHold(LegalHoldMixin, Base): pass` (part of `GovernanceModels`);
2. `runtime.governance(...)` subscribes `handlers(LegalHold)` to `SUBJECTS` through the inbox;
3. in purge queries add `not_held(LegalHold, "subject", Table.subject_column)` (and "ticket", …);
   in Erase call `subject_holds(session, LegalHold, subject_id)` and report what was kept (`kept_for`).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any, NamedTuple

from kaseum.events.v1 import envelope_pb2
from kaseum.events.v1 import rights_events_pb2 as ev
from sqlalchemy import ColumnElement, DateTime, Index, String, Table, bindparam, exists, select
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column

from .db import utcnow
from .statements import core_table

SCOPES = ("subject", "ticket")
PLACED = "rights.hold.placed"
RELEASED = "rights.hold.released"
SUBJECTS = ["{region}.rights.hold.placed", "{region}.rights.hold.released"]
NONE = {"category": "none"}


class LegalHoldMixin:
    __tablename__ = "legal_holds"

    hold_id: Mapped[str] = mapped_column(String(32), primary_key=True, info=NONE)
    scope: Mapped[str] = mapped_column(String(10), info=NONE)
    # A subject id (Identity Data: an identifier) or a ticket id.
    target_id: Mapped[str] = mapped_column(String(32), info={"category": "3.2.1"})
    reason_code: Mapped[str] = mapped_column(String(30), info=NONE)
    review_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=NONE)
    placed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=NONE)
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, info=NONE)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Index, ...]:
        return (Index("ix_legal_holds_target", "target_id", "scope"),)


def not_held(model: type[LegalHoldMixin], scope: str, column: Any) -> ColumnElement[bool]:
    """SQL: no active hold of `scope` covers the value of `column` (for purge queries)."""
    return ~exists().where(model.scope == scope, model.target_id == column, model.released_at.is_(None))


class Hold(NamedTuple):
    """An active legal hold as an erasure reports it: plain values read by one statement, no ORM object."""

    hold_id: str
    target_id: str
    reason_code: str
    review_at: datetime


def kept_for(hold: Hold) -> str:
    """Why an erasure kept what `hold` covers, as the subject is told."""
    return (f"legal hold {hold.hold_id} ({hold.reason_code}; UK GDPR Art. 17(3)(e)), review on "
            f"{hold.review_at:%Y-%m-%d}")


def subject_holds(session: Session, model: type[LegalHoldMixin], subject_id: str) -> list[Hold]:
    """The active holds on the subject (an erasure's first read: its statement built once per table)."""
    rows = session.connection().execute(_subject_holds_of(core_table(model)), {"subject": subject_id})
    return [Hold(*row) for row in rows]


@functools.cache
def _subject_holds_of(table: Table) -> Any:
    return (select(table.c.hold_id, table.c.target_id, table.c.reason_code, table.c.review_at)
            .where(table.c.target_id == bindparam("subject", type_=String), table.c.scope == "subject",
                   table.c.released_at.is_(None)))


def placed(session: Session, model: type[LegalHoldMixin], hold_id: str, scope: str, target_id: str,
           reason_code: str, review_at: datetime, at: datetime | None = None) -> None:
    if session.get(model, hold_id) is not None:
        return  # already known (or already released: a release is final)
    row = model()
    row.hold_id, row.scope, row.target_id, row.reason_code = hold_id, scope, target_id, reason_code
    row.review_at, row.placed_at, row.released_at = review_at, at or utcnow(), None
    session.add(row)


def released(session: Session, model: type[LegalHoldMixin], hold_id: str, scope: str, target_id: str,
             at: datetime | None = None) -> None:
    row = session.get(model, hold_id)
    when = at or utcnow()
    if row is None:  # the release overtook the placement: record it released
        row = model()
        row.hold_id, row.scope, row.target_id, row.reason_code = hold_id, scope, target_id, ""
        row.review_at = row.placed_at = when
        session.add(row)
    if row.released_at is None:
        row.released_at = when


def handlers(model: type[LegalHoldMixin]) -> dict[str, Any]:
    """Event handlers for the projection (registered through the inbox; no commit here)."""

    def on_placed(uow: Any, env: envelope_pb2.Envelope) -> None:
        event = ev.HoldPlaced()
        env.payload.Unpack(event)
        placed(uow.session, model, event.hold_id, event.scope, event.target_id, event.reason_code,
               event.review_at.ToDatetime(tzinfo=UTC))

    def on_released(uow: Any, env: envelope_pb2.Envelope) -> None:
        event = ev.HoldReleased()
        env.payload.Unpack(event)
        released(uow.session, model, event.hold_id, event.scope, event.target_id)

    return {PLACED: on_placed, RELEASED: on_released}
