"""Restriction of processing (Art. 18), recorded per service: data kept, not processed.

A service declares `class Restriction(RestrictionMixin, Base)` and asks
`is_restricted` before processing a subject's data for anything but storage.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, String, delete
from sqlalchemy.orm import Mapped, Session, mapped_column


class RestrictionMixin:
    __tablename__ = "restrictions"

    # A restriction is a record of a rights request's effect (declarations.py categories).
    subject_id: Mapped[str] = mapped_column(String(32), primary_key=True, info={"category": "3.2.1"})
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True), info={"category": "rights_requests"})


def set_restricted(session: Session, model: type[RestrictionMixin], subject_id: str, restricted: bool) -> bool:
    if restricted:
        if session.get(model, subject_id) is None:
            row = model()
            row.subject_id = subject_id
            row.since = datetime.now(UTC)
            session.add(row)
    else:
        session.execute(delete(model).where(model.subject_id == subject_id))
    return restricted


def is_restricted(session: Session, model: type[RestrictionMixin], subject_id: str) -> bool:
    return session.get(model, subject_id) is not None
