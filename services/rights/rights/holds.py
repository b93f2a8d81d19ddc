"""Legal holds (notice section 12.1; R-RET-2): the DPO places and releases them; rights owns them.

A hold names a scope ("subject": all of a subject's data; "ticket": one ticket), a reason code,
a note for the DPO's file and a review date. Placing and releasing publish rights.hold.placed /
rights.hold.released (ids, scope, reason code, review date: never the note) so that every service
updates its projection; every change, and every listing, is recorded in rights' audit trail.
Only the DPO (a person with role "dpo" in this region) or the operator CLI may call.
Knows nothing of gRPC or SQL: it works through the unit of work.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from kaseum.events.v1 import rights_events_pb2 as ev
from servicekit import audit
from servicekit.caller import Principal
from servicekit.db import UnitOfWork, UnitOfWorkFactory, as_utc, new_id, utcnow
from servicekit.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from servicekit.holds import SCOPES
from servicekit.region import RegionGuard
from servicekit.timestamps import to_timestamp

from .models import LegalHold, Repository

REASONS = ("complaint", "litigation", "regulator_inquiry", "other")
MAX_NOTE = 2000
SERVICES = frozenset({"cli"})


def _accesses(hold: LegalHold, action: str) -> list[audit.Access]:
    # A subject hold concerns that subject; a ticket hold names the ticket (rights does not know its owner).
    subject = hold.target_id if hold.scope == "subject" else ""
    return [audit.Access(subject, action, f"{hold.scope}:{hold.target_id}")]


class HoldRules:
    def __init__(self, uow: UnitOfWorkFactory[Repository], region: str,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.uow = uow
        self.guard = RegionGuard(region)
        self.clock = clock

    def _dpo(self, principal: Principal | None) -> Principal:
        if principal is None:
            raise Unauthenticated("sign-in required")
        if principal.is_service:
            if principal.subject_id not in SERVICES:
                raise PermissionDenied("not allowed for this caller")
            return principal
        if principal.role != "dpo":
            raise PermissionDenied("only the DPO manages legal holds")
        self.guard.check(principal.region)
        return principal

    def place(self, principal: Principal | None, scope: str, target_id: str, reason_code: str, note: str,
              review_at: datetime | None) -> LegalHold:
        who = self._dpo(principal)
        if scope not in SCOPES:
            raise InvalidArgument(f"scope must be one of {', '.join(SCOPES)}", "invalid_scope")
        target = target_id.strip()
        if not target or len(target) > 32 or not (target.isascii() and target.isalnum()):
            raise InvalidArgument("target_id must be a subject or ticket id", "invalid_target")
        if reason_code not in REASONS:
            raise InvalidArgument(f"reason_code must be one of {', '.join(REASONS)}", "invalid_reason")
        if len(note) > MAX_NOTE:
            raise InvalidArgument(f"note must be at most {MAX_NOTE} characters", "too_long")
        now = self.clock()
        if review_at is None or as_utc(review_at) <= now:
            raise InvalidArgument("review_at must be a date in the future", "invalid_review_date")
        hold = LegalHold(hold_id=new_id(), scope=scope, target_id=target, reason_code=reason_code,
                         review_at=as_utc(review_at), placed_at=now, released_at=None, note=note.strip(),
                         placed_by=who.subject_id, released_by="")
        with self.uow() as uow:
            uow.repo.add(hold)
            uow.repo.audit(who, _accesses(hold, "hold.placed"))
            uow.events.publish("rights.hold.placed", hold.target_id if scope == "subject" else "", ev.HoldPlaced(
                hold_id=hold.hold_id, scope=scope, target_id=target, reason_code=reason_code,
                review_at=to_timestamp(hold.review_at)))
            uow.commit()
        return hold

    def release(self, principal: Principal | None, hold_id: str) -> LegalHold:
        who = self._dpo(principal)
        with self.uow() as uow:
            hold = self._existing(uow, hold_id)
            if hold.released_at is not None:
                return hold  # releasing twice changes nothing
            hold.released_at, hold.released_by = self.clock(), who.subject_id
            uow.repo.audit(who, _accesses(hold, "hold.released"))
            uow.events.publish("rights.hold.released", hold.target_id if hold.scope == "subject" else "",
                               ev.HoldReleased(hold_id=hold.hold_id, scope=hold.scope, target_id=hold.target_id))
            uow.commit()
            return hold

    def list(self, principal: Principal | None, include_released: bool, target_id: str) -> list[LegalHold]:
        who = self._dpo(principal)
        with self.uow() as uow:
            found = uow.repo.holds(include_released, target_id.strip())
            uow.repo.audit(who, [audit.Access(target_id.strip(), "holds.listed")])
            uow.commit()
            return found

    @staticmethod
    def _existing(uow: UnitOfWork[Repository], hold_id: str) -> LegalHold:
        hold = uow.repo.hold(hold_id)
        if hold is None:
            raise NotFound("hold not found")
        return hold
