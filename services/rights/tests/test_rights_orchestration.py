"""The orchestration rules with a fake step runner (the other services are faked here, and only here:
the whole-system tests in tests/e2e/test_rights_orchestration.py drive the real ones)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from consent import events as consent_events
from kaseum.events.v1 import envelope_pb2
from kaseum.events.v1 import identity_events_pb2 as identity_events
from kaseum.events.v1 import rights_events_pb2 as rights_pb
from rights import events as rights_events
from rights.models import AuditLog, ChainHead, Inbox, Repository, RightsRequest
from rights.orchestration import Backoff, Orchestrator, StepCall, StepFailed, StepResult
from rights.service import RightsService
from servicekit import chain
from servicekit.bus import Subscription, apply_once
from servicekit.caller import Principal
from servicekit.db import UnitOfWorkFactory, as_utc
from servicekit.errors import Conflict, InvalidArgument, NotFound, PermissionDenied
from servicekit.outbox import envelope
from servicekit.testing import Clock
from sqlalchemy import select, text

from .conftest import REGION


class FakeServices:
    """Answers steps like the owning services would; `down` services fail with UNAVAILABLE."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str, str]] = Counter()
        self.order: list[str] = []
        self.down: set[str] = set()
        self.lock = threading.Lock()

    def run(self, call: StepCall) -> StepResult:
        with self.lock:
            self.calls[(call.request_id, call.service, call.operation)] += 1
            self.order.append(f"{call.service}/{call.operation}")
        if call.service in self.down:
            raise StepFailed("UNAVAILABLE")
        if call.operation == "export":
            return StepResult("exported 0 tables, 0 rows", export=b"", declarations=b"")
        return StepResult(f"{call.operation} done", rows=2)


class BatchingServices(FakeServices):
    """As FakeServices, taking erasures in batches as the gRPC runner does (EraseMany); `refuse` names the
    subjects whose erasure fails in their batch (a service answering that one UNAVAILABLE)."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[tuple[str, int]] = []
        self.refuse: set[tuple[str, str]] = set()

    def run_many(self, calls: list[StepCall]) -> list[StepResult | StepFailed]:
        with self.lock:
            self.batches.append((calls[0].service, len(calls)))
        answers: list[StepResult | StepFailed] = []
        for call in calls:
            if (call.service, call.subject_id) in self.refuse:
                answers.append(StepFailed("UNAVAILABLE"))
                continue
            try:
                answers.append(self.run(call))
            except StepFailed as failed:
                answers.append(failed)
        return answers


def unpacked(data: bytes) -> rights_pb.RequestStatusChanged:
    env = envelope_pb2.Envelope.FromString(data)
    event = rights_pb.RequestStatusChanged()
    env.payload.Unpack(event)
    return event


@pytest.fixture
def services() -> FakeServices:
    return FakeServices()


@pytest.fixture
def orchestrator(uow: UnitOfWorkFactory[Repository], services: FakeServices, clock: Clock) -> Orchestrator:
    return Orchestrator(uow, services, clock, Backoff(first_seconds=1, max_seconds=8, max_attempts=4))


@pytest.fixture
def rights(uow: UnitOfWorkFactory[Repository], clock: Clock, services: FakeServices) -> RightsService:
    emails = {"ada@example.com": "a" * 32}
    return RightsService(uow, REGION, clock=clock, runner=services, directory=emails.get,
                         code_key=b"k" * 32, lift_notice=timedelta(hours=24))


def status(rights: RightsService, dpo: Principal, request_id: str) -> Any:
    return rights.get_request(dpo, request_id)


@pytest.mark.notice("13.1.3")
@pytest.mark.rule("R-ERASE-1")
def test_an_erasure_runs_every_service_once_and_identity_last(
        rights: RightsService, orchestrator: Orchestrator, services: FakeServices,
        person: Callable[..., Principal], uow: UnitOfWorkFactory[Repository]) -> None:
    customer = person()
    filed = rights.file_request(customer, "erasure", "")
    assert orchestrator.run_once() == 5  # phase 1, then (due at once) identity's phase 2
    assert services.order[-1] == "identity/erase" and "identity/erase" not in services.order[:4]
    assert orchestrator.run_once() == 0
    done = rights.get_request(customer, filed.id)
    assert done.status == "completed" and all(s.status == "done" and s.attempts == 1 for s in done.steps)
    assert set(services.calls.values()) == {1}
    with uow() as u:
        assert [e.subject_id for e in u.repo.erasure_ledger()] == [customer.subject_id]
        subjects = Counter(u.session.scalars(text("SELECT subject FROM outbox")))
        step_events = [unpacked(data) for data in u.session.scalars(
            text("SELECT data FROM outbox WHERE subject = :s ORDER BY created_at"),
            {"s": f"{REGION}.rights.request.step_changed"})]
    # The steps' progress is an event of its own kind, which consent (telling the subject) does not take: one
    # per request and recording, naming every step it covers (here phase 1's four, then identity's).
    assert [(e.change, sorted(e.steps), e.step) for e in step_events] == [
        ("step_done", ["analytics/erase", "consent/erase", "rights/erase", "tickets/erase"], step_events[0].steps[0]),
        ("step_done", ["identity/erase"], "identity/erase")]
    assert subjects[f"{REGION}.rights.request.status_changed"] == 2  # filed, completed
    assert all("step_changed" not in s for s in consent_events.SUBJECTS)
    # Every change is an audit record too, the steps' included, on an intact chain.
    with uow() as u:
        trail = [(a.action, a.resource_id) for a in u.session.scalars(select(AuditLog).order_by(AuditLog.seq))]
        assert chain.verify(u.session, AuditLog, ChainHead).intact
    assert trail[0] == ("request.filed", filed.id) and trail[-1] == ("request.completed", filed.id)
    assert sorted(r for a, r in trail if a == "request.step_done") == sorted(
        f"{filed.id}/{s}/erase" for s in ("identity", "tickets", "consent", "analytics", "rights"))


@pytest.mark.notice("13.2")
@pytest.mark.rule("R-RIGHTS-1")
def test_a_service_down_is_retried_with_back_off_then_shown_to_the_dpo_who_retries(
        rights: RightsService, orchestrator: Orchestrator, services: FakeServices, clock: Clock,
        person: Callable[..., Principal]) -> None:
    customer, dpo = person(), person("dpo")
    filed = rights.file_request(customer, "restriction", "")
    services.down.add("tickets")
    orchestrator.run_once()
    step = next(s for s in status(rights, dpo, filed.id).steps if s.service == "tickets")
    assert (step.status, step.attempts, step.last_error) == ("pending", 1, "UNAVAILABLE")
    assert orchestrator.run_once() == 0  # not due before its back-off
    delays = []
    for _ in range(3):
        step = next(s for s in status(rights, dpo, filed.id).steps if s.service == "tickets")
        if step.next_attempt_at is not None:
            delays.append(as_utc(step.next_attempt_at) - clock.now)
            clock.advance(seconds=delays[-1].total_seconds())
        orchestrator.run_once()
    assert delays == [timedelta(seconds=1), timedelta(seconds=2), timedelta(seconds=4)]
    step = next(s for s in status(rights, dpo, filed.id).steps if s.service == "tickets")
    assert (step.status, step.attempts) == ("failed", 4)  # the DPO sees it, with its error and attempts
    assert status(rights, dpo, filed.id).status == "in_progress"
    with pytest.raises(PermissionDenied):
        rights.retry(customer, filed.id)
    services.down.clear()
    rights.retry(dpo, filed.id)
    orchestrator.run_once()
    assert status(rights, dpo, filed.id).status == "completed"
    assert services.calls[(filed.id, "identity", "restrict")] == 1  # the others ran once


@pytest.mark.notice("13.2")
@pytest.mark.rule("R-RIGHTS-1")
def test_two_replicas_never_run_a_step_twice(
        rights: RightsService, uow: UnitOfWorkFactory[Repository], services: FakeServices, clock: Clock,
        person: Callable[..., Principal]) -> None:
    filed = [rights.file_request(person(), "access", "") for _ in range(10)]
    replicas = [Orchestrator(uow, services, clock, batch=4, workers=4) for _ in range(2)]
    threads = [threading.Thread(target=r.run_once) for r in replicas for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for replica in replicas:
        replica.run_once()
    assert len(services.calls) == 50 and set(services.calls.values()) == {1}
    dpo = person("dpo")
    assert {status(rights, dpo, f.id).status for f in filed} == {"completed"}


@pytest.mark.notice("13.2")
@pytest.mark.rule("R-RIGHTS-1")
def test_a_request_by_email_waits_for_the_code_the_subject_returns(
        rights: RightsService, orchestrator: Orchestrator, services: FakeServices,
        person: Callable[..., Principal]) -> None:
    dpo, consent = person("dpo"), Principal("service", "consent", "service")
    with pytest.raises(NotFound):
        rights.file_on_behalf(dpo, "nobody@example.com", "access", "")
    with pytest.raises(PermissionDenied):
        rights.file_on_behalf(person(), "ada@example.com", "access", "")
    filed = rights.file_on_behalf(dpo, "ada@example.com", "access", "sent by e-mail")
    assert (filed.status, filed.channel, filed.subject_id) == ("verifying", "dpo", "a" * 32)
    assert orchestrator.run_once() == 0  # nothing runs before verification
    with pytest.raises(PermissionDenied):
        rights.claim_code(Principal("service", "tickets", "service"), filed.id)
    subject, code, _ = rights.claim_code(consent, filed.id)
    assert subject == "a" * 32 and len(code) == 6 and code.isdigit()
    with pytest.raises(Conflict):
        rights.claim_code(consent, filed.id)  # given out once
    wrong = "000000" if code != "000000" else "111111"
    with pytest.raises(InvalidArgument):
        rights.verify(dpo, filed.id, wrong)
    assert rights.verify(dpo, filed.id, code).status == "in_progress"
    assert orchestrator.run_once() == 5
    assert status(rights, dpo, filed.id).status == "completed"


@pytest.mark.notice("13.2")
def test_five_wrong_codes_void_the_code_until_a_new_one_is_sent(
        rights: RightsService, person: Callable[..., Principal]) -> None:
    dpo, consent = person("dpo"), Principal("service", "consent", "service")
    filed = rights.file_on_behalf(dpo, "ada@example.com", "erasure", "")
    _, code, _ = rights.claim_code(consent, filed.id)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        with pytest.raises(InvalidArgument):
            rights.verify(dpo, filed.id, wrong)
    with pytest.raises(InvalidArgument):
        rights.verify(dpo, filed.id, code)  # right, but used up
    rights.verify(dpo, filed.id, "")  # a new code is sent
    _, fresh, _ = rights.claim_code(consent, filed.id)
    assert rights.verify(dpo, filed.id, fresh).status == "in_progress"


@pytest.mark.notice("13.2")
@pytest.mark.rule("R-RIGHTS-2")
def test_the_clock_stops_for_a_clarification_and_the_due_date_moves_by_that_time(
        rights: RightsService, orchestrator: Orchestrator, clock: Clock, person: Callable[..., Principal]) -> None:
    customer, dpo = person(), person("dpo")
    filed = rights.file_request(customer, "access", "")
    due = as_utc(filed.due_at)
    rights.stop_clock(dpo, filed.id, True)
    with pytest.raises(Conflict):
        rights.stop_clock(dpo, filed.id, True)
    assert orchestrator.run_once() == 0  # the work waits for the answer
    clock.advance(days=5)
    restarted = rights.stop_clock(dpo, filed.id, False)
    assert as_utc(restarted.due_at) == due + timedelta(days=5) and restarted.clock_stopped_at is None
    assert orchestrator.run_once() == 5


@pytest.mark.notice("13.2")
@pytest.mark.rule("R-RIGHTS-2")
def test_an_extension_counts_from_receipt_once(
        rights: RightsService, person: Callable[..., Principal]) -> None:
    # Received 31 January 2025: due 28 February; extended by two months: 30 April, not 28 April.
    filed = rights.file_request(person(), "access", "")
    dpo = person("dpo")
    extended = rights.extend(dpo, filed.id, 2, "many requests at once")
    assert as_utc(extended.due_at).date().isoformat() == "2025-04-30"
    assert extended.status == "extended" and extended.extension_reason == "many requests at once"
    with pytest.raises(Conflict):
        rights.extend(dpo, filed.id, 1, "again")


@pytest.mark.notice("13.1.5")
@pytest.mark.rule("R-RESTRICT-1")
def test_a_restriction_is_lifted_only_after_the_subject_is_told(
        rights: RightsService, orchestrator: Orchestrator, services: FakeServices, clock: Clock,
        person: Callable[..., Principal], uow: UnitOfWorkFactory[Repository]) -> None:
    customer, dpo = person(), person("dpo")
    filed = rights.file_request(customer, "restriction", "")
    with pytest.raises(Conflict):
        rights.lift_restriction(dpo, filed.id)  # not completed yet
    orchestrator.run_once()
    lifting = rights.lift_restriction(dpo, filed.id)
    assert as_utc(lifting.lift_at) == clock.now + timedelta(hours=24)
    with uow() as u:
        subjects = list(u.session.scalars(text("SELECT subject FROM outbox")))
    assert "uk.rights.request.status_changed" in subjects  # consent tells the subject now
    assert orchestrator.run_once() == 0  # not before the notice period
    clock.advance(hours=24, seconds=1)
    assert orchestrator.run_once() == 5
    assert {(s, o) for (_, s, o) in services.calls if o == "lift"} == {
        (s, "lift") for s in ("identity", "tickets", "consent", "analytics", "rights")}
    assert status(rights, dpo, filed.id).status == "completed"


@pytest.mark.notice("13.2")
@pytest.mark.rule("R-RIGHTS-2")
def test_the_dpo_is_warned_once_a_week_before_a_due_date(
        rights: RightsService, clock: Clock, person: Callable[..., Principal]) -> None:
    rights.file_request(person(), "access", "")
    assert rights.warn_due_soon() == 0
    clock.advance(days=22)  # due 28 February: within a week from 21 February
    assert rights.warn_due_soon() == 1
    assert rights.warn_due_soon() == 0


@pytest.mark.notice("13.1.3")
@pytest.mark.rule("R-ERASE-1")
def test_the_replay_erases_every_ledger_subject_again_in_plan_order(
        rights: RightsService, orchestrator: Orchestrator, services: FakeServices,
        person: Callable[..., Principal]) -> None:
    customer = person()
    rights.file_request(customer, "erasure", "")
    orchestrator.run_once()
    orchestrator.run_once()
    services.order.clear()
    with pytest.raises(PermissionDenied):
        rights.replay_erasures(person("agent"))
    replay = rights.replay_erasures(person("dpo"))
    assert (replay.subjects, replay.erased_rows, replay.failures) == (1, 10, [])
    assert services.order[-1] == "identity/erase"
    services.down.add("consent")
    assert rights.replay_erasures(Principal("service", "cli", "service")).failures == ["consent: UNAVAILABLE"]


@pytest.mark.notice("13.2")
@pytest.mark.rule("R-RIGHTS-1")
def test_an_unverified_request_changes_nothing_anywhere_and_an_extension_waits_with_it(
        rights: RightsService, uow: UnitOfWorkFactory[Repository], person: Callable[..., Principal]) -> None:
    dpo, consent = person("dpo"), Principal("service", "consent", "service")
    filed = rights.file_on_behalf(dpo, "ada@example.com", "withdraw_consent", "")

    def published() -> list[str]:
        with uow() as u:
            return list(u.session.scalars(text("SELECT subject FROM outbox")))

    # Services act on rights.request.received at once (consent withdraws): not before the code.
    assert "uk.rights.request.received" not in published()
    assert "uk.rights.verification.requested" in published()
    assert rights.extend(dpo, filed.id, 1, "waiting for the subject").status == "verifying"
    _, code, _ = rights.claim_code(consent, filed.id)
    assert rights.verify(dpo, filed.id, code).status == "extended"
    assert "uk.rights.request.received" in published()


@pytest.mark.notice("12.1")
@pytest.mark.rule("R-RET-1")
def test_a_dormant_account_is_erased_everywhere_once_however_often_the_event_comes(
        rights: RightsService, orchestrator: Orchestrator, services: FakeServices,
        uow: UnitOfWorkFactory[Repository]) -> None:
    subject = "d" * 32
    env = envelope("identity.account.dormant", REGION, subject, identity_events.AccountDormant(account_id=subject))
    sub = Subscription("rights", [], rights_events.handlers(rights), uow, Inbox)
    assert apply_once(sub, env) is True
    assert apply_once(sub, env) is False  # redelivered: nothing filed twice
    assert orchestrator.run_once() == 5
    with uow() as u:
        [request] = list(u.session.scalars(select(RightsRequest).where(RightsRequest.subject_id == subject)))
        assert (request.kind, request.channel, request.status) == ("erasure", "retention", "completed")
        assert [e.subject_id for e in u.repo.erasure_ledger()] == [subject]
    assert services.order[-1] == "identity/erase"


@pytest.mark.notice("13.2")
@pytest.mark.rule("R-RIGHTS-1")
def test_answers_that_cannot_be_recorded_release_their_steps_to_run_again(
        rights: RightsService, uow: UnitOfWorkFactory[Repository], services: FakeServices, clock: Clock,
        person: Callable[..., Principal]) -> None:
    class Flaky(Orchestrator):
        failures = 1

        def _record(self, lease_id: str, outcomes: list[Any]) -> None:
            if self.failures:
                self.failures -= 1
                raise RuntimeError("database is locked")
            super()._record(lease_id, outcomes)

    customer = person()
    filed = rights.file_request(customer, "restriction", "")
    flaky = Flaky(uow, services, clock)
    with pytest.raises(RuntimeError):
        flaky.run_once()
    steps = rights.get_request(customer, filed.id).steps
    assert {(s.status, s.lease_id, s.attempts) for s in steps} == {("pending", "", 0)}  # free at once
    flaky.run_once()
    assert rights.get_request(customer, filed.id).status == "completed"


@pytest.mark.notice("13.1.3")
@pytest.mark.rule("R-ERASE-1")
def test_erasures_go_to_each_service_in_one_batch_and_a_refused_subject_alone_is_tried_again(
        rights: RightsService, uow: UnitOfWorkFactory[Repository], clock: Clock,
        person: Callable[..., Principal]) -> None:
    services = BatchingServices()
    orchestrator = Orchestrator(uow, services, clock, Backoff(first_seconds=1, max_seconds=8, max_attempts=4),
                                batch=64)
    customers = [person() for _ in range(10)]
    filed = [rights.file_request(c, "erasure", "") for c in customers]
    services.refuse = {("consent", customers[3].subject_id)}
    orchestrator.run_once()
    # Phase 1: one call per service for all ten; phase 2 (identity) for the nine whose phase 1 is done.
    assert sorted(services.batches) == sorted(
        [("analytics", 10), ("consent", 10), ("rights", 10), ("tickets", 10), ("identity", 9)])
    dpo = person("dpo")
    waiting = status(rights, dpo, filed[3].id)
    step = next(s for s in waiting.steps if s.service == "consent")
    assert (waiting.status, step.status, step.attempts, step.last_error) == ("in_progress", "pending", 1, "UNAVAILABLE")
    assert {status(rights, dpo, f.id).status for i, f in enumerate(filed) if i != 3} == {"completed"}
    services.refuse.clear()
    clock.advance(seconds=1)
    orchestrator.run_once()
    assert status(rights, dpo, filed[3].id).status == "completed"
    assert services.batches[-2:] == [("consent", 1), ("identity", 1)]
    # Each erasure applied once: the refused subject's consent erasure ran on the step's second attempt only.
    assert services.calls[(filed[3].id, "consent", "erase")] == 1
    assert set(services.calls.values()) == {1}
