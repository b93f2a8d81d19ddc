"""The governance rules every service shares (no gRPC here): who may ask, and the answers.

DPOs (persons with role "dpo" in this deployment's region) may ask everything; administrators
may read the retention schedule, purge runs and declarations; service tokens (the gateway has
none; the `kaseum` CLI and other services do) may ask everything. Everyone else is refused.
A DPO's audit query about one subject is itself recorded in the audit trail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from . import audit, chain
from .caller import Principal
from .declarations import ServiceDeclaration
from .errors import InvalidArgument, PermissionDenied, Unauthenticated
from .governance_models import GovernanceModels
from .region import RegionGuard
from .retention import PurgeRunMixin, RetentionRule
from .transfers import Decision, HostingProvider, HostingWatch, TransferLogMixin, TransferPolicy

DPO = ("dpo",)
DPO_OR_ADMIN = ("dpo", "admin")
MAX_PAGE = 500
DEFAULT_PAGE = 100
CHAINS = ("audit", "transfers")


def page_size(value: int, default: int = DEFAULT_PAGE, most: int = MAX_PAGE) -> int:
    if value < 0 or value > most:
        raise InvalidArgument(f"page_size must be between 1 and {most}", "invalid_page_size")
    return value or default


def after_seq(cursor: str) -> int:
    if not cursor:
        return 0
    if not cursor.isdigit() or len(cursor) > 18:
        raise InvalidArgument("cursor is not valid", "invalid_cursor")
    return int(cursor)


@dataclass
class Governance:
    service: str
    region: str
    session_factory: sessionmaker[Session]
    models: GovernanceModels
    declaration: ServiceDeclaration
    policy: TransferPolicy = field(default_factory=TransferPolicy)
    hosting: Sequence[tuple[HostingProvider, Decision]] = ()
    # When given, the hosting providers' latest decisions (re-checked while running) replace `hosting`.
    hosting_watch: HostingWatch | None = None

    def hosting_now(self) -> Sequence[tuple[HostingProvider, Decision]]:
        return self.hosting_watch.current if self.hosting_watch is not None else self.hosting

    def authorise(self, principal: Principal | None, roles: Sequence[str]) -> Principal:
        if principal is None:
            raise Unauthenticated("credentials required")
        if principal.is_service:
            return principal
        if principal.role not in roles:
            raise PermissionDenied("not allowed for this role")
        RegionGuard(self.region).check(principal.region)
        return principal

    @property
    def schedule(self) -> tuple[RetentionRule, ...]:
        return self.declaration.retention

    def retention_schedule(self, principal: Principal | None) -> tuple[RetentionRule, ...]:
        self.authorise(principal, DPO_OR_ADMIN)
        return self.schedule

    def purge_runs(self, principal: Principal | None, limit: int) -> list[PurgeRunMixin]:
        self.authorise(principal, DPO_OR_ADMIN)
        model = self.models.purge_runs
        with self.session_factory() as session:
            return list(session.scalars(select(model).order_by(model.started_at.desc(), model.id)
                                        .limit(page_size(limit, 20, 200))))

    def audit_entries(self, principal: Principal | None, f: audit.AuditFilter, cursor: str,
                      size: int) -> tuple[list[audit.AuditLogMixin], str]:
        who = self.authorise(principal, DPO)
        self._window(f.from_time, f.to_time)
        limit = page_size(size)
        with self.session_factory() as session:
            rows = audit.query(session, self.models.audit, f, after_seq(cursor), limit + 1)
            if f.subject_id and not who.is_service:
                audit.record(session, self.models.audit, self.models.heads, who,
                             [audit.Access(f.subject_id, "audit.read")])
                session.commit()
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, str(rows[-1].seq) if more else ""

    def accessed_subjects(self, principal: Principal | None, f: audit.AuditFilter) -> list[audit.Accessed]:
        self.authorise(principal, DPO)
        if not (f.actor_id or f.actor_organisation_id):
            raise InvalidArgument("give an actor_id or an actor_organisation_id", "missing_field")
        if f.from_time is None or f.to_time is None:
            raise InvalidArgument("give both ends of the time window", "missing_field")
        self._window(f.from_time, f.to_time)
        with self.session_factory() as session:
            return audit.accessed_subjects(session, self.models.audit, f)

    def verify(self, principal: Principal | None, name: str) -> chain.ChainCheck:
        self.authorise(principal, DPO)
        name = name or "audit"
        if name not in CHAINS:
            raise InvalidArgument(f"chain must be one of {', '.join(CHAINS)}", "invalid_chain")
        model: type[chain.ChainedMixin] = self.models.audit if name == "audit" else self.models.transfers
        with self.session_factory() as session:
            return chain.verify(session, model, self.models.heads)

    def transfer_log(self, principal: Principal | None, from_time: datetime | None, to_time: datetime | None,
                     cursor: str, size: int) -> tuple[list[TransferLogMixin], str]:
        self.authorise(principal, DPO)
        self._window(from_time, to_time)
        limit = page_size(size)
        model = self.models.transfers
        query = select(model).where(model.seq > after_seq(cursor))
        if from_time is not None:
            query = query.where(model.at >= from_time)
        if to_time is not None:
            query = query.where(model.at < to_time)
        with self.session_factory() as session:
            rows = list(session.scalars(query.order_by(model.seq).limit(limit + 1)))
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, str(rows[-1].seq) if more else ""

    def declarations(self, principal: Principal | None) -> ServiceDeclaration:
        self.authorise(principal, DPO_OR_ADMIN)
        return self.declaration

    @staticmethod
    def _window(start: datetime | None, end: datetime | None) -> None:
        if start is not None and end is not None and end <= start:
            raise InvalidArgument("to_time must be after from_time", "invalid_window")
