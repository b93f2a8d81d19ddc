"""Rights' rules. Knows nothing of gRPC, NATS or SQL: it works through a unit of work."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from kaseum.events.v1 import rights_events_pb2 as ev
from servicekit import audit, cursors
from servicekit.caller import Principal
from servicekit.db import UnitOfWorkFactory, as_utc, new_id, utcnow
from servicekit.errors import InvalidArgument, NotFound, PermissionDenied
from servicekit.region import RegionGuard
from servicekit.subject_data import Erasure, Export, SubjectDataRules
from servicekit.timestamps import to_timestamp

from .deadlines import due_date
from .models import Repository, RightsRequest

# The rights of notice section 13.1, in its order (13.1.1 … 13.1.7).
KINDS = ("access", "rectification", "erasure", "objection", "restriction", "portability",
         "withdraw_consent")
STATUSES = ("received", "verifying", "in_progress", "completed", "refused", "extended")
MAX_DETAILS = 5000
MAX_PAGE = 100

# Art. 17(3)(b): the request and what was done about it are the controller's evidence of compliance.
KEPT_AS_EVIDENCE = ("rights_requests",
                    "kept as evidence for 6 years after completion (legal obligation, UK GDPR Art. 17(3)(b))")


@dataclass(frozen=True)
class Page:
    items: list[RightsRequest]
    next_cursor: str


class RightsService(SubjectDataRules):
    def __init__(self, uow: UnitOfWorkFactory[Repository], region: str, page_size_default: int = 20,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.uow = uow
        self.guard = RegionGuard(region)
        self.region = region
        self.page_size_default = page_size_default
        self.clock = clock

    # --- the subject's requests --------------------------------------------------
    def file_request(self, principal: Principal, kind: str, details: str) -> RightsRequest:
        self._require(principal, "customer")
        if kind not in KINDS:
            raise InvalidArgument(f"kind must be one of {', '.join(KINDS)}", "invalid_kind")
        if len(details) > MAX_DETAILS:
            raise InvalidArgument(f"details must be at most {MAX_DETAILS} characters", "too_long")
        subject = principal.subject_id
        with self.uow() as uow:
            existing = uow.repo.open_request(subject, kind)
            if existing is not None:
                # Asking again does not restart the clock or open a second case: same request.
                return existing
            received = self.clock()
            row = RightsRequest(id=new_id(), subject_id=subject, kind=kind, details=details,
                                status="received", received_at=received, due_at=due_date(received),
                                completed_at=None, region=self.region)
            if uow.repo.insert_unless_duplicate(row):
                uow.events.publish("rights.request.received", subject, ev.RequestReceived(
                    request_id=row.id, kind=kind, subject_id=subject, due_at=to_timestamp(row.due_at)))
                uow.commit()
                return row
        # A concurrent filing of the same kind won the race: that one is the request.
        with self.uow() as uow:
            winner = uow.repo.open_request(subject, kind)
            if winner is None:
                raise RuntimeError("open request vanished after a duplicate insert")
            return winner

    def list_requests(self, principal: Principal, status: str = "", overdue: bool = False,
                      cursor: str = "", page_size: int = 0) -> Page:
        self._require(principal, "customer", "dpo")
        if status and status not in STATUSES:
            raise InvalidArgument(f"status must be one of {', '.join(STATUSES)}", "invalid_status")
        if page_size < 0 or page_size > MAX_PAGE:
            raise InvalidArgument(f"page_size must be between 1 and {MAX_PAGE}", "invalid_page_size")
        size = page_size or self.page_size_default
        with self.uow() as uow:
            rows = uow.repo.page(
                subject_id=None if principal.role == "dpo" else principal.subject_id,
                status=status, overdue_at=self.clock() if overdue else None,
                after=cursors.decode(cursor), limit=size + 1,
            )
            if principal.role == "dpo" and rows[:size]:
                # The DPO's queue shows whose requests they are: one access per request listed.
                uow.repo.audit(principal, [audit.Access(r.subject_id, "request.listed", r.id) for r in rows[:size]])
                uow.commit()
        items = rows[:size]
        more = len(rows) > size
        return Page(items, cursors.encode(as_utc(items[-1].due_at), items[-1].id) if more else "")

    def get_request(self, principal: Principal, request_id: str) -> RightsRequest:
        self._require(principal, "customer", "dpo")
        with self.uow() as uow:
            row = uow.repo.request(request_id) if request_id else None
            # Someone else's request answers exactly like a missing one: existence is not revealed.
            if row is None or (principal.role != "dpo" and row.subject_id != principal.subject_id):
                raise NotFound("request not found")
            if principal.role == "dpo":
                uow.repo.audit(principal, [audit.Access(row.subject_id, "request.read", row.id)])
                uow.commit()
            return row

    def _require(self, principal: Principal, *roles: str) -> None:
        # Deny by default: only the roles named may act, and only for this deployment's region.
        if principal.is_service or principal.role not in roles:
            raise PermissionDenied("not allowed for this role")
        self.guard.check(principal.region)

    # --- the personal-data contract ----------------------------------------------
    def export(self, subject_id: str) -> Export:
        with self.uow() as uow:
            return Export(uow.repo.rows_of(subject_id))

    def erase(self, subject_id: str) -> Erasure:
        """Nothing is deleted: every row rights holds is evidence of how a request was handled."""
        return Erasure(0, [KEPT_AS_EVIDENCE])

    def set_restricted(self, subject_id: str, restricted: bool) -> bool:
        # Recorded only: a restricted subject keeps their rights, so requests still proceed.
        with self.uow() as uow:
            result = uow.repo.set_restricted(subject_id, restricted)
            uow.commit()
            return result

