"""Rights' rules. Knows nothing of gRPC, NATS or SQL: it works through a unit of work."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from dateutil.relativedelta import relativedelta
from kaseum.events.v1 import rights_events_pb2 as ev
from servicekit import audit, cursors
from servicekit.caller import Principal
from servicekit.db import UnitOfWork, UnitOfWorkFactory, as_utc, new_id, utcnow
from servicekit.errors import Conflict, InvalidArgument, NotFound, PermissionDenied
from servicekit.logs import get_logger
from servicekit.region import RegionGuard
from servicekit.subject_data import Erasure, Export, SubjectDataRules
from servicekit.timestamps import to_timestamp

from . import export_zip
from .deadlines import due_date
from .models import Repository, RequestStep, RightsRequest
from .orchestration import StepCall, StepFailed, StepRunner, new_steps, publish_change
from .plans import HOLDERS, OBJECTION_PURPOSES, RECTIFIABLE, PlannedStep, plan

log = get_logger(__name__)

# The rights of notice section 13.1, in its order (13.1.1 … 13.1.7).
KINDS = ("access", "rectification", "erasure", "objection", "restriction", "portability",
         "withdraw_consent")
STATUSES = ("received", "verifying", "in_progress", "completed", "refused", "extended")
MAX_DETAILS = 5000
MAX_PAGE = 100
MAX_REASON = 2000
MAX_CORRECTION = 500
CODE_DIGITS = 6
CODE_VALIDITY = timedelta(hours=72)
MAX_CODE_FAILURES = 5
DUE_SOON = timedelta(days=7)
CLOSED = ("completed", "refused")

# Art. 17(3)(b): the request and what was done about it are the controller's evidence of compliance.
KEPT_AS_EVIDENCE = ("rights_requests",
                    "kept as evidence for 6 years after completion (legal obligation, UK GDPR Art. 17(3)(b))")


@dataclass(frozen=True)
class Page:
    items: list[RightsRequest]
    next_cursor: str
    steps: dict[str, list[RequestStep]]


@dataclass(frozen=True)
class Destination:
    """Another controller to receive a portability request's data (Art. 20(2))."""

    url: str
    country: str

    @classmethod
    def parse(cls, url: str, country: str) -> Destination | None:
        if not url and not country:
            return None
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname or len(url) > 2000 or parts.username or parts.password:
            raise InvalidArgument("destination_url must be an https:// URL (no credentials in it)",
                                  "invalid_destination")
        if len(country) != 2 or not country.isalpha():
            raise InvalidArgument("destination_country must be an ISO 3166-1 alpha-2 code", "invalid_destination")
        return cls(url, country.upper())


@dataclass(frozen=True)
class Replay:
    subjects: int
    erased_rows: int
    failures: list[str]


@dataclass(frozen=True)
class RequestView:
    """A request with its steps; reads through to the request's own fields (view.id, view.status)."""

    request: RightsRequest
    steps: list[RequestStep]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.request, name)


class RightsService(SubjectDataRules):
    def __init__(self, uow: UnitOfWorkFactory[Repository], region: str, page_size_default: int = 20,
                 clock: Callable[[], datetime] = utcnow, runner: StepRunner | None = None,
                 directory: Callable[[str], str | None] | None = None, code_key: bytes = b"",
                 lift_notice: timedelta = timedelta(hours=24)) -> None:
        self.uow = uow
        # Identity's answer to "whose account has this address" (a request that came by e-mail).
        self.directory = directory
        # Keys the one-time codes' hashes (derived from the service secret).
        self.code_key = code_key or secrets.token_bytes(32)
        # How long before a restriction is lifted the subject is told (Art. 18(3)).
        self.lift_notice = lift_notice
        # Tells this process's orchestrator that steps became due (set by the bootstrap).
        self.wake: Callable[[], None] = lambda: None
        # How the erasure ledger's replay reaches the other services (the orchestrator's runner).
        self.runner = runner
        self.guard = RegionGuard(region)
        self.region = region
        self.page_size_default = page_size_default
        self.clock = clock

    # --- the subject's requests --------------------------------------------------
    def file_request(self, principal: Principal, kind: str, details: str, purpose: str = "",
                     corrections: dict[str, str] | None = None, destination: Destination | None = None
                     ) -> RequestView:
        """A signed-in customer's request: verified by their session, so its steps start at once."""
        self._require(principal, "customer")
        return self._file(principal.subject_id, kind, details, purpose, corrections or {}, "portal", destination)

    def file_on_behalf(self, principal: Principal, email: str, kind: str, details: str, purpose: str = "",
                       corrections: dict[str, str] | None = None) -> RequestView:
        """A request that came by e-mail (notice 13.2), filed by the DPO for the account with that address.
        Nothing is done until the subject proves it is theirs: a one-time code goes to the account's own
        address (consent claims it at send time) and the DPO enters the code the subject sends back."""
        self._require(principal, "dpo")
        if self.directory is None:
            raise RuntimeError("no directory configured")
        if not email or len(email) > 320:
            raise InvalidArgument("email is required (at most 320 characters)", "invalid_email")
        subject = self.directory(email)
        if subject is None:
            raise NotFound("no account has that address", "no_account")
        view = self._file(subject, kind, details, purpose, corrections or {}, "dpo")
        with self.uow() as uow:
            uow.repo.audit(principal, [audit.Access(subject, "request.filed_on_behalf", view.id)])
            uow.commit()
        return view

    def _file(self, subject: str, kind: str, details: str, purpose: str, corrections: dict[str, str],
              channel: str, destination: Destination | None = None) -> RequestView:
        if kind not in KINDS:
            raise InvalidArgument(f"kind must be one of {', '.join(KINDS)}", "invalid_kind")
        if len(details) > MAX_DETAILS:
            raise InvalidArgument(f"details must be at most {MAX_DETAILS} characters", "too_long")
        purpose, fixes = _check_specifics(kind, purpose, corrections)
        if destination is not None and kind != "portability":
            raise InvalidArgument("a destination is only for a portability request", "invalid_destination")
        with self.uow() as uow:
            view = self._insert(uow, subject, kind, details, purpose, fixes, channel, destination)
            if view is not None:
                uow.commit()
                self.wake()
                return view
        # A concurrent filing of the same kind won the race: that one is the request.
        with self.uow() as uow:
            winner = uow.repo.open_request(subject, kind)
            if winner is None:
                raise RuntimeError("open request vanished after a duplicate insert")
            return RequestView(winner, uow.repo.steps(winner.id))

    def _insert(self, uow: UnitOfWork[Repository], subject: str, kind: str, details: str, purpose: str,
                fixes: dict[str, str], channel: str, destination: Destination | None = None) -> RequestView | None:
        """The request and its plan in `uow` (not committed); the open one if the subject already has one
        of that kind (asking again does not restart the clock or open a second case); None on a race."""
        existing = uow.repo.open_request(subject, kind)
        if existing is not None:
            return RequestView(existing, uow.repo.steps(existing.id))
        received = self.clock()
        # The portal's session and the retention schedule need no code; an e-mail does (notice 13.2).
        verified = channel != "dpo"
        row = RightsRequest(id=new_id(), subject_id=subject, kind=kind, details=details,
                            status="in_progress" if verified else "verifying", received_at=received,
                            due_at=due_date(received), completed_at=None, region=self.region, purpose=purpose,
                            corrections=json.dumps(fixes, sort_keys=True), extension_reason="",
                            refusal_reason="", export_expires_at=None, channel=channel, code_hash="",
                            code_failures=0, destination_url=destination.url if destination else "",
                            destination_country=destination.country if destination else "")
        if not uow.repo.insert_unless_duplicate(row):
            return None
        # Steps of an unverified request wait (no due time) until the code is entered.
        steps = new_steps(row.id, plan(kind, purpose, destination is not None), received if verified else None)
        uow.repo.add_steps(steps)
        if verified:
            _publish_received(uow, row)
        else:
            uow.events.publish("rights.verification.requested", subject,
                               ev.VerificationRequested(request_id=row.id, kind=kind))
        publish_change(uow, row, "filed")
        return RequestView(row, steps)

    def erase_dormant(self, uow: UnitOfWork[Repository], subject_id: str) -> None:
        """Retention (notice 12; identity.account.dormant): an account unused for two years whose holder
        did not answer the warning is erased everywhere, as an erasure request the schedule files. In the
        event consumer's transaction, so a redelivered event files nothing twice."""
        self._insert(uow, subject_id, "erasure", "inactive account: erased by the retention schedule (notice 12)",
                     "", {}, "retention")

    # --- verification of a request that came by e-mail ------------------------------------
    def claim_code(self, principal: Principal, request_id: str) -> tuple[str, str, datetime]:
        """Consent, at send time, once: a fresh code whose keyed hash alone is kept."""
        if not (principal.is_service and principal.subject_id == "consent"):
            raise PermissionDenied("only the consent service sends verification codes")
        now = self.clock()
        with self.uow() as uow:
            row = uow.repo.request(request_id) if request_id else None
            if row is None or row.status != "verifying":
                raise NotFound("no request waits for a code", "no_code")
            if row.code_claimed_at is not None:
                raise Conflict("the code was already sent", "code_claimed")
            code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
            row.code_hash, row.code_claimed_at = self._code_hash(row.id, code), now
            row.code_expires_at, row.code_failures = now + CODE_VALIDITY, 0
            uow.commit()
            return row.subject_id, code, as_utc(row.code_expires_at)

    def verify(self, principal: Principal, request_id: str, code: str) -> RequestView:
        """The DPO enters the code the subject returned; an empty code asks for a new one to be sent."""
        self._require(principal, "dpo")
        now = self.clock()
        with self.uow() as uow:
            row = self._visible(uow, principal, request_id)
            if row.status != "verifying":
                raise Conflict("the request is not waiting for verification", "not_verifying")
            if not code:
                row.code_hash, row.code_claimed_at, row.code_expires_at, row.code_failures = "", None, None, 0
                uow.events.publish("rights.verification.requested", row.subject_id,
                                   ev.VerificationRequested(request_id=row.id, kind=row.kind))
                uow.repo.audit(principal, [audit.Access(row.subject_id, "request.code_resent", row.id)])
                uow.commit()
                return RequestView(row, uow.repo.steps(row.id))
            good = (row.code_hash and row.code_expires_at is not None and as_utc(row.code_expires_at) > now
                    and row.code_failures < MAX_CODE_FAILURES
                    and hmac.compare_digest(row.code_hash, self._code_hash(row.id, code.strip())))
            if not good:
                row.code_failures += 1
                uow.commit()
                raise InvalidArgument("the code is wrong, expired or used up; send an empty code for a new one",
                                      "invalid_code")
            row.status, row.code_hash = "extended" if row.extension_reason else "in_progress", ""
            if row.clock_stopped_at is None:
                uow.repo.schedule_steps(row.id, now)
            # Only now may the services act on it (a forged e-mail must change nothing).
            _publish_received(uow, row)
            uow.repo.audit(principal, [audit.Access(row.subject_id, "request.verified", row.id)])
            publish_change(uow, row, "verified")
            uow.commit()
            self.wake()
            return RequestView(row, uow.repo.steps(row.id))

    def _code_hash(self, request_id: str, code: str) -> str:
        return hmac.new(self.code_key, f"{request_id}:{code}".encode(), hashlib.sha256).hexdigest()

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
            steps = uow.repo.steps_of([r.id for r in items])
        more = len(rows) > size
        return Page(items, cursors.encode(as_utc(items[-1].due_at), items[-1].id) if more else "", steps)

    def get_request(self, principal: Principal, request_id: str) -> RequestView:
        self._require(principal, "customer", "dpo")
        with self.uow() as uow:
            row = self._visible(uow, principal, request_id, lock=False)
            if principal.role == "dpo":
                uow.repo.audit(principal, [audit.Access(row.subject_id, "request.read", row.id)])
                uow.commit()
            return RequestView(row, uow.repo.steps(row.id))

    @staticmethod
    def _visible(uow: UnitOfWork[Repository], principal: Principal, request_id: str,
                 lock: bool = True) -> RightsRequest:
        """The request if the principal may see it; locked for a change unless `lock` is False."""
        row = uow.repo.request(request_id, lock) if request_id else None
        # Someone else's request answers exactly like a missing one: existence is not revealed.
        if row is None or (principal.role != "dpo" and row.subject_id != principal.subject_id):
            raise NotFound("request not found")
        return row

    def _open(self, uow: UnitOfWork[Repository], principal: Principal, request_id: str) -> RightsRequest:
        """The request, locked for a change, unless it is already closed (completed or refused)."""
        row = self._visible(uow, principal, request_id)
        if row.status in CLOSED:
            raise Conflict(f"the request is already {row.status}", "request_closed")
        return row

    # --- the DPO's actions ---------------------------------------------------------------
    def retry(self, principal: Principal, request_id: str) -> RequestView:
        """Failed steps get a fresh round of attempts now; a request never sits stuck and unseen."""
        self._require(principal, "dpo")
        now = self.clock()
        with self.uow() as uow:
            row = self._open(uow, principal, request_id)
            steps = uow.repo.steps(row.id)
            for step in steps:
                if step.status == "failed":
                    step.status, step.attempts, step.next_attempt_at, step.updated_at = "pending", 0, now, now
            uow.repo.audit(principal, [audit.Access(row.subject_id, "request.retried", row.id)])
            publish_change(uow, row, "retried")
            uow.commit()
            self.wake()
            return RequestView(row, steps)

    def extend(self, principal: Principal, request_id: str, months: int, reason: str) -> RequestView:
        """Art. 12(3): once, by up to two further months, with a reason the subject is told."""
        self._require(principal, "dpo")
        if months not in (1, 2):
            raise InvalidArgument("months must be 1 or 2 (at most two further months)", "invalid_months")
        reason = _told_reason(reason)
        with self.uow() as uow:
            row = self._open(uow, principal, request_id)
            if row.extension_reason:
                raise Conflict("a request's deadline can be extended only once", "already_extended")
            # Counted from receipt (31 Jan + 3 months = 30 Apr, not 28 Feb + 2 months), keeping any time
            # the clock stood still for a clarification.
            received = as_utc(row.received_at)
            stood_still = as_utc(row.due_at) - due_date(received)
            row.due_at = received + relativedelta(months=1 + months) + stood_still
            # A request still waiting for its code keeps waiting: the extension is noted on it.
            row.extension_reason = reason
            if row.status != "verifying":
                row.status = "extended"
            uow.repo.audit(principal, [audit.Access(row.subject_id, "request.extended", row.id)])
            publish_change(uow, row, "extended")
            uow.commit()
            return RequestView(row, uow.repo.steps(row.id))

    def refuse(self, principal: Principal, request_id: str, reason: str) -> RequestView:
        """Art. 12(5): a manifestly unfounded or excessive request, refused with a reason the subject is
        told together with their right to complain to the ICO (notice 13.3)."""
        self._require(principal, "dpo")
        reason = _told_reason(reason)
        now = self.clock()
        with self.uow() as uow:
            row = self._open(uow, principal, request_id)
            row.status, row.refusal_reason, row.completed_at = "refused", reason, now
            steps = uow.repo.steps(row.id)
            for step in steps:
                if step.status != "done":
                    step.status, step.next_attempt_at, step.outcome = "done", None, "not run: the request was refused"
            uow.repo.audit(principal, [audit.Access(row.subject_id, "request.refused", row.id)])
            uow.events.publish("rights.request.completed", row.subject_id, ev.RequestCompleted(
                request_id=row.id, status="refused", kind=row.kind))
            publish_change(uow, row, "refused")
            uow.commit()
            return RequestView(row, steps)

    def stop_clock(self, principal: Principal, request_id: str, stop: bool) -> RequestView:
        """The clock stands still while the DPO waits for the subject's clarification (ICO guidance on
        Art. 12(3)); on the answer it restarts and the due date moves by the time it stood still. The
        request's steps wait meanwhile: what the subject meant may change them."""
        self._require(principal, "dpo")
        now = self.clock()
        with self.uow() as uow:
            row = self._open(uow, principal, request_id)
            if stop == (row.clock_stopped_at is not None):
                raise Conflict("the clock is already " + ("stopped" if stop else "running"), "clock_unchanged")
            if stop:
                row.clock_stopped_at = now
                uow.repo.schedule_steps(row.id, None)
            else:
                row.due_at = as_utc(row.due_at) + (now - as_utc(row.clock_stopped_at or now))
                row.clock_stopped_at = None
                if row.status != "verifying":
                    uow.repo.schedule_steps(row.id, now)
            change = "clock_stopped" if stop else "clock_restarted"
            uow.repo.audit(principal, [audit.Access(row.subject_id, f"request.{change}", row.id)])
            publish_change(uow, row, change)
            uow.commit()
            self.wake()
            return RequestView(row, uow.repo.steps(row.id))

    def lift_restriction(self, principal: Principal, request_id: str) -> RequestView:
        """Art. 18(3): the subject is told before a restriction is lifted. The announcement goes now
        (consent mails it); every service lifts it when the notice period has passed."""
        self._require(principal, "dpo")
        now = self.clock()
        with self.uow() as uow:
            row = self._visible(uow, principal, request_id)
            if row.kind != "restriction" or row.status != "completed":
                raise Conflict("only a completed restriction can be lifted", "not_restricted")
            if row.lift_at is not None:
                raise Conflict("the restriction is already being lifted", "already_lifting")
            row.lift_at = now + self.lift_notice
            uow.repo.add_steps(new_steps(row.id, [PlannedStep(s, "lift") for s in HOLDERS], row.lift_at))
            uow.repo.audit(principal, [audit.Access(row.subject_id, "request.lift_announced", row.id)])
            publish_change(uow, row, "lift_announced")
            uow.commit()
            return RequestView(row, uow.repo.steps(row.id))

    def warn_due_soon(self, limit: int = 100) -> int:
        """Open requests due within a week: the DPO is warned once each (an event, an audit record
        and a log line; the DPO's list shows them as due soon)."""
        now = self.clock()
        with self.uow() as uow:
            rows = uow.repo.due_soon_unwarned(now + DUE_SOON, limit)
            for row in rows:
                row.warned_at = now
                publish_change(uow, row, "due_soon")
                log.warning("rights request due within a week", request_id=row.id, kind=row.kind,
                            due_at=as_utc(row.due_at).isoformat())
            uow.commit()
            return len(rows)

    def replay_erasures(self, principal: Principal) -> Replay:
        """After a restore: erase again every subject on the erasure ledger, in plan order (identity
        last). Erase is idempotent, so what was not restored costs nothing; run again on failures."""
        if not (principal.is_service and principal.subject_id == "cli"):  # the operator CLI, or:
            self._require(principal, "admin", "dpo")
        if self.runner is None:
            raise RuntimeError("no step runner configured")
        with self.uow() as uow:
            ledger = [(e.subject_id, e.request_id) for e in uow.repo.erasure_ledger()]
        steps = sorted(plan("erasure"), key=lambda s: s.phase)
        erased, failures = 0, []
        for subject_id, request_id in ledger:
            for step in steps:
                try:
                    outcome = self.runner.run(StepCall(request_id, subject_id, step.service, "erase"))
                except StepFailed as failed:
                    failures.append(f"{step.service}: {failed.code}")
                    continue
                erased += outcome.rows
                log.info("erasure replayed", service=step.service, rows=outcome.rows)
        with self.uow() as uow:
            uow.repo.audit(principal, [audit.Access(s, "erasure.replayed", r) for s, r in ledger])
            uow.commit()
        return Replay(len(ledger), erased, failures)

    # --- the requester's download ---------------------------------------------------------
    def export_pieces(self, principal: Principal, request_id: str) -> tuple[RightsRequest, list[tuple[str, int]]]:
        """The stored pieces (service, seq) that make up an access/portability export, for its requester
        only, while the link is valid; the pieces themselves are read one at a time (`export_part`) as the
        ZIP is written."""
        self._require(principal, "customer")
        now = self.clock()
        with self.uow() as uow:
            row = self._visible(uow, principal, request_id, lock=False)
            if row.kind not in ("access", "portability"):
                raise NotFound("this request has no export")
            if row.status != "completed" or row.export_expires_at is None:
                raise Conflict("the export is not ready yet", "export_not_ready")
            if as_utc(row.export_expires_at) <= now:
                raise NotFound("the download link has expired (exports are kept 7 days)", "export_expired")
            return row, uow.repo.export_pieces(row.id)

    @contextmanager
    def export_loader(self, request_id: str) -> Iterator[Callable[[str, int], export_zip.Part]]:
        """Loads the request's stored pieces by (service, seq), one at a time, all through one connection
        held for the block (UnitOfWorkFactory.pinned: memory stays flat however long the export)."""
        with self.uow.pinned() as pinned:
            def load(service: str, seq: int) -> export_zip.Part:
                with pinned() as uow:
                    part = uow.repo.export_part(request_id, service, seq)
                    if part is None:  # purged while the ZIP was being written (the link expired meanwhile)
                        raise NotFound("the export is no longer kept", "export_expired")
                    return export_zip.Part(part.service, part.export, part.declarations)

            yield load

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
        """Exports built for the subject go; the requests themselves are evidence of how each was handled."""
        with self.uow() as uow:
            erased = uow.repo.erase_exports(subject_id)
            uow.commit()
        return Erasure(erased, [KEPT_AS_EVIDENCE])

    def set_restricted(self, subject_id: str, restricted: bool) -> bool:
        # Recorded only: a restricted subject keeps their rights, so requests still proceed.
        with self.uow() as uow:
            result = uow.repo.set_restricted(subject_id, restricted)
            uow.commit()
            return result



def _check_specifics(kind: str, purpose: str, corrections: dict[str, str]) -> tuple[str, dict[str, str]]:
    """An objection's purpose (direct marketing when unsaid) and a rectification's corrections."""
    if kind == "objection":
        purpose = purpose or "direct_marketing"
        if purpose not in OBJECTION_PURPOSES:
            raise InvalidArgument(f"purpose must be one of {', '.join(OBJECTION_PURPOSES)}", "invalid_purpose")
    elif purpose:
        raise InvalidArgument("purpose is only for an objection", "invalid_purpose")
    if kind == "rectification":
        unknown = sorted(set(corrections) - set(RECTIFIABLE))
        if unknown or not corrections:
            raise InvalidArgument(f"corrections must name at least one of {', '.join(RECTIFIABLE)}",
                                  "invalid_corrections")
        if any(len(v) > MAX_CORRECTION for v in corrections.values()):
            raise InvalidArgument(f"a corrected value is at most {MAX_CORRECTION} characters", "too_long")
    elif corrections:
        raise InvalidArgument("corrections are only for a rectification", "invalid_corrections")
    return purpose, corrections


def _publish_received(uow: UnitOfWork[Repository], row: RightsRequest) -> None:
    uow.events.publish("rights.request.received", row.subject_id, ev.RequestReceived(
        request_id=row.id, kind=row.kind, subject_id=row.subject_id, due_at=to_timestamp(as_utc(row.due_at))))


def _told_reason(reason: str) -> str:
    """A DPO's reason for an extension or a refusal: required, since the subject is told it."""
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise InvalidArgument(f"a reason (1 to {MAX_REASON} characters) is required: the subject is told it",
                              "invalid_reason")
    return reason
