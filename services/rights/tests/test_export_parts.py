"""An export step's answer stored piece by piece as it streams in (export_parts.py), under the step's
lease: what the requester downloads is one attempt's pieces, whole and in order, never a duplicate.
The other services' streams are faked with servicekit's own piece maker (the real streams: tests/e2e)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from kaseum.privacy.v1 import governance_pb2
from rights import export_zip
from rights.export_parts import ExportWriter
from rights.models import Repository
from rights.orchestration import Orchestrator, StepCall, StepFailed, StepResult
from rights.service import RightsService
from servicekit.caller import Principal
from servicekit.db import UnitOfWorkFactory
from servicekit.personal_data import pieces
from servicekit.subject_data import Export
from servicekit.testing import Clock
from sqlalchemy import event

from .conftest import REGION

DECLARED = governance_pb2.Declarations(service="tickets").SerializeToString()
REPLIES = [[f"reply {i}", "x" * (i % 50)] for i in range(2500)]


def answer(call: StepCall) -> Iterator[bytes]:
    tables = [("replies", "ticket_content", ["body", "pad"], iter(REPLIES))] if call.service == "tickets" else []
    for piece in pieces(call.service, Export(tables, f"{call.service} answered"), max_rows=1000):
        yield piece.SerializeToString()


class StreamingServices:
    """Each service answers an export as a stream, stored through the writer as the gRPC runner does."""

    def __init__(self, writer: ExportWriter) -> None:
        self.writer = writer
        self.attempts = 0

    def run(self, call: StepCall) -> StepResult:
        if call.operation == "export":
            self.attempts += 1
            stored = self.writer.write(call, answer(call), DECLARED if call.service == "tickets" else b"")
            return StepResult(f"exported in {stored} pieces")
        return StepResult(f"{call.operation} done")


@pytest.fixture
def rights(uow: UnitOfWorkFactory[Repository], clock: Clock) -> RightsService:
    return RightsService(uow, REGION, clock=clock, runner=None, directory=lambda _: None,
                         code_key=b"k" * 32, lift_notice=timedelta(hours=24))


def downloaded(rights: RightsService, customer: Principal, request_id: str) -> dict[str, bytes]:
    row, keys = rights.export_pieces(customer, request_id)
    fields = export_zip.request_fields(row.id, row.kind, row.received_at, row.completed_at)
    with rights.export_loader(row.id) as load:
        chunks = b"".join(export_zip.build(fields, keys, load))
    archive = zipfile.ZipFile(io.BytesIO(chunks))
    return {name: archive.read(name) for name in archive.namelist()}


@pytest.mark.rule("R-ACCESS-1")
@pytest.mark.notice("13.1.1")
def test_a_streamed_answer_is_stored_in_pieces_and_downloads_whole(
        rights: RightsService, uow: UnitOfWorkFactory[Repository], clock: Clock,
        person: Callable[..., Principal]) -> None:
    customer = person()
    filed = rights.file_request(customer, "access", "")
    services = StreamingServices(ExportWriter(uow, clock))
    Orchestrator(uow, services, clock).run_once()
    with uow() as u:
        keys = u.repo.export_pieces(filed.id)
    assert [seq for s, seq in keys if s == "tickets"] == [0, 1, 2]  # 2,500 rows: three pieces of 1,000
    assert rights.get_request(customer, filed.id).status == "completed"

    engine = uow.session_factory.kw["bind"]
    checkouts: list[object] = []

    def checked_out(connection: object, record: object, proxy: object) -> None:
        checkouts.append(connection)

    event.listen(engine, "checkout", checked_out)
    try:
        files = downloaded(rights, customer, filed.id)
    finally:
        event.remove(engine, "checkout", checked_out)
    # Every piece through one pooled connection (one page cache warmed, not one per pooled connection):
    # the visibility check, then one checkout for the whole run of pieces.
    assert len(checkouts) == 2, len(checkouts)
    data = json.loads(files["data.json"])["services"]
    assert [[r["body"], r["pad"]] for r in data["tickets"]["tables"]["replies"]] == REPLIES
    assert data["identity"] == {"note": "identity answered", "tables": {}}
    assert files["tickets/replies.csv"].decode().count("\r\n") == 1 + len(REPLIES)
    assert "<td>tickets</td><td>replies</td><td>ticket_content</td><td>2500</td>" in files["report.html"].decode()


@pytest.mark.rule("R-ACCESS-1")
@pytest.mark.notice("13.1.1")
def test_a_repeated_step_replaces_its_pieces_and_a_lost_lease_writes_nothing_more(
        rights: RightsService, uow: UnitOfWorkFactory[Repository], clock: Clock,
        person: Callable[..., Principal]) -> None:
    filed = rights.file_request(person(), "access", "")
    with uow() as u:
        leased = u.repo.claim_due_steps(clock.now, "lease-1", clock.now + timedelta(minutes=2), 10)
        assert ("tickets", "export") in {(s.service, s.operation) for s in leased}
        u.commit()
    call = StepCall(filed.id, filed.subject_id, "tickets", "export", lease_id="lease-1")
    writer = ExportWriter(uow, clock)
    assert writer.write(call, answer(call), DECLARED) == 3
    assert writer.write(call, answer(call), DECLARED) == 3  # the same step again (e.g. its record was lost)
    with uow() as u:
        assert u.repo.export_pieces(filed.id) == [("tickets", 0), ("tickets", 1), ("tickets", 2)]

    def taken_over_after_one() -> Iterator[bytes]:
        stream = answer(call)
        yield next(stream)
        with uow() as u:  # the lease expired and another worker claimed the step
            taken = u.repo.step(filed.id, "tickets", "export")
            assert taken is not None
            taken.lease_id = "lease-2"
            u.commit()
        yield from stream

    with pytest.raises(StepFailed) as lost:
        writer.write(call, taken_over_after_one(), DECLARED)
    assert lost.value.code == "LEASE_LOST"
    with uow() as u:  # only what was written under the lease: the other worker starts again from nothing
        assert u.repo.export_pieces(filed.id) == [("tickets", 0)]
    with pytest.raises(StepFailed):
        writer.write(call, answer(call), DECLARED)  # no longer this worker's step: nothing is touched
    with uow() as u:
        assert u.repo.export_pieces(filed.id) == [("tickets", 0)]
