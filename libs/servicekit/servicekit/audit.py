"""The audit trail (notice section 11; R-SEC-1, R-SEC-3): who accessed whose personal data, when, why.

Every read or change of personal data by staff, resellers and services acting for them is one
row of `audit_log`: hash-chained (chain.py) and append-only in the database (append_only.py).
The DPO queries it per subject, per actor, per actor organisation and time window (the breach
query: which subjects did X access between two times), and a subject's access export includes
who (role and organisation, not the staff member's own identity) accessed their data.

To adopt in a service:
1. in models.py, `gov = governance_models(Base)` (governance_models.py) gives `gov.audit` and
   `gov.heads`; the migration calls `governance_schema.create_v1(op)`;
2. where staff read personal data, in the same unit of work:
   `audit.record(uow.session, gov.audit, gov.heads, principal, [Access(subject, "ticket.read", id)])`
   and commit;
3. add `audit.export_table(session, gov.audit, subject_id)` to the service's Export.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from sqlalchemy import DateTime, Index, String, func, select
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column

from . import chain
from .caller import Principal
from .db import utcnow
from .subject_data import TableRows

RECORD = {"category": "access_records"}
ID = {"category": "3.2.1"}  # account ids are "username or similar identifier" (Identity Data)
# The purpose of most staff access: administering and protecting the business, support included.
SUPPORT = "4.1.3"


class AuditLogMixin(chain.ChainedMixin):
    __tablename__ = "audit_log"
    CHAIN: ClassVar[str] = "audit"
    CHAIN_FIELDS: ClassVar[tuple[str, ...]] = (
        "at", "actor_kind", "actor_id", "actor_role", "actor_organisation_id", "subject_id", "action",
        "resource_id", "purpose")

    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=RECORD)
    actor_kind: Mapped[str] = mapped_column(String(10), info=RECORD)
    actor_id: Mapped[str] = mapped_column(String(64), info=ID)
    actor_role: Mapped[str] = mapped_column(String(20), info=RECORD)
    actor_organisation_id: Mapped[str] = mapped_column(String(32), default="", info=RECORD)
    subject_id: Mapped[str] = mapped_column(String(32), info=ID)
    action: Mapped[str] = mapped_column(String(40), info=RECORD)
    resource_id: Mapped[str] = mapped_column(String(64), default="", info=RECORD)
    purpose: Mapped[str] = mapped_column(String(20), info=RECORD)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Index, ...]:
        return (Index("ix_audit_log_subject_at", "subject_id", "at"),
                Index("ix_audit_log_actor_at", "actor_id", "at"),
                Index("ix_audit_log_org_at", "actor_organisation_id", "at"),
                Index("ix_audit_log_at", "at"))


@dataclass(frozen=True)
class Access:
    """One access to one subject's data: what was done and to which record."""

    subject_id: str
    action: str
    resource_id: str = ""


def record(session: Session, model: type[AuditLogMixin], heads: type[chain.ChainHeadMixin],
           principal: Principal, accesses: Sequence[Access], purpose: str = SUPPORT,
           organisation_id: str = "", at: datetime | None = None) -> None:
    """Append one row per access, in the caller's transaction (commit it with the access)."""
    when = at or utcnow()
    rows = []
    for access in accesses:
        row = model()
        row.at = when
        row.actor_kind = principal.kind
        row.actor_id = principal.subject_id
        row.actor_role = principal.role
        row.actor_organisation_id = organisation_id
        row.subject_id = access.subject_id
        row.action = access.action
        row.resource_id = access.resource_id
        row.purpose = purpose
        rows.append(row)
    chain.append(session, heads, rows)


@dataclass(frozen=True)
class AuditFilter:
    subject_id: str = ""
    actor_id: str = ""
    actor_organisation_id: str = ""
    from_time: datetime | None = None
    to_time: datetime | None = None


def _where(model: type[AuditLogMixin], f: AuditFilter) -> list[object]:
    clauses: list[object] = []
    if f.subject_id:
        clauses.append(model.subject_id == f.subject_id)
    if f.actor_id:
        clauses.append(model.actor_id == f.actor_id)
    if f.actor_organisation_id:
        clauses.append(model.actor_organisation_id == f.actor_organisation_id)
    if f.from_time is not None:
        clauses.append(model.at >= f.from_time)
    if f.to_time is not None:
        clauses.append(model.at < f.to_time)
    return clauses


def query(session: Session, model: type[AuditLogMixin], f: AuditFilter, after_seq: int = 0,
          limit: int = 100) -> list[AuditLogMixin]:
    """Entries matching `f`, in chain order, after `after_seq` (keyset pages)."""
    statement = select(model).where(*_where(model, f), model.seq > after_seq)  # type: ignore[arg-type]
    return list(session.scalars(statement.order_by(model.seq).limit(limit)))


@dataclass(frozen=True)
class Accessed:
    subject_id: str
    accesses: int
    first_at: datetime
    last_at: datetime


def accessed_subjects(session: Session, model: type[AuditLogMixin], f: AuditFilter) -> list[Accessed]:
    """The breach-assessment query (R-SEC-3): distinct subjects accessed by an actor or organisation."""
    if not (f.actor_id or f.actor_organisation_id) or f.from_time is None or f.to_time is None:
        raise ValueError("an actor or organisation and both ends of the window are required")
    rows = session.execute(
        select(model.subject_id, func.count(), func.min(model.at), func.max(model.at))
        # Rows about no one subject (e.g. a DPO listing all holds) are not a subject accessed.
        .where(*_where(model, f), model.subject_id != "")  # type: ignore[arg-type]
        .group_by(model.subject_id).order_by(model.subject_id))
    return [Accessed(str(s), int(n), first, last) for s, n, first, last in rows]


EXPORT_COLUMNS = ["at", "actor_kind", "actor_role", "actor_organisation_id", "action", "resource_id", "purpose"]


def export_table(session: Session, model: type[AuditLogMixin], subject_id: str) -> TableRows:
    """Who accessed the subject's data, for their access export (Art. 15(1)(c): recipients).

    The staff member's own account id is left out: it is someone else's personal data; role and
    organisation say who received the data.
    """
    rows = session.scalars(select(model).where(model.subject_id == subject_id).order_by(model.seq))
    values = [[str(getattr(r, c)) for c in EXPORT_COLUMNS] for r in rows]
    return "access_log", "access_records", list(EXPORT_COLUMNS), values
