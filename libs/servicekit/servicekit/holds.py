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
   in Erase call `active_holds(session, LegalHold, subject_id)` and report what was kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from kaseum.events.v1 import envelope_pb2
from kaseum.events.v1 import rights_events_pb2 as ev
from sqlalchemy import ColumnElement, DateTime, Index, String, exists, select
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column

from .db import utcnow

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


def active_holds(session: Session, model: type[LegalHoldMixin], target_ids: Iterable[str],
                 scope: str = "") -> list[LegalHoldMixin]:
    ids = list(set(target_ids))
    if not ids:
        return []
    query = select(model).where(model.target_id.in_(ids), model.released_at.is_(None))
    if scope:
        query = query.where(model.scope == scope)
    return list(session.scalars(query))


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
