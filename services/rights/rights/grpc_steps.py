"""The orchestrator's StepRunner over gRPC: each step is a call to the service that owns the data.

Calls carry rights' service token and the request id (the contract's idempotency key); any gRPC
failure becomes a StepFailed with the status name only (messages could carry personal data).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc
from kaseum.consent.v1 import consent_pb2, consent_pb2_grpc
from kaseum.identity.v1 import identity_pb2, identity_pb2_grpc
from kaseum.privacy.v1 import governance_pb2, governance_pb2_grpc, personal_data_pb2_grpc
from kaseum.privacy.v1 import personal_data_pb2 as pd
from servicekit import clients
from servicekit.caller import ServiceCredentials
from servicekit.errors import Unavailable
from servicekit.settings import CommonSettings

from .export_parts import ExportWriter
from .orchestration import StepCall, StepFailed, StepResult
from .plans import HOLDERS

T = TypeVar("T")
# An export of a large history takes longer than the other calls; all stay below the step lease.
# A batch of erasures is done one subject after another in the service.
DEADLINES = {"export": 60.0, "erase_many": 60.0}
DEFAULT_DEADLINE = 20.0


class GrpcStepRunner:
    def __init__(self, settings: CommonSettings, credentials: ServiceCredentials, parts: ExportWriter) -> None:
        self.credentials = credentials
        # Where an export's pieces are stored as they arrive.
        self.parts = parts
        self.personal_data = {
            s: personal_data_pb2_grpc.PersonalDataStub(clients.channel(settings.addr_of(s))) for s in HOLDERS}
        self.governance = {
            s: governance_pb2_grpc.GovernanceStub(clients.channel(settings.addr_of(s))) for s in HOLDERS}
        self.consent = consent_pb2_grpc.ConsentStub(clients.channel(settings.addr_of("consent")))

    def run(self, call: StepCall) -> StepResult:
        deadline = DEADLINES.get(call.operation, DEFAULT_DEADLINE)
        meta = self.credentials.metadata()
        stub = self.personal_data[call.service]
        op = call.operation
        if op == "export":
            return self._export(call, stub, meta, deadline)
        if op == "erase":
            answer = self.run_many([call])[0]
            if isinstance(answer, StepFailed):
                raise answer
            return answer
        if op == "rectify":
            fixed = _call(lambda: stub.Rectify(pd.RectifyRequest(
                subject_id=call.subject_id, request_id=call.request_id, corrections=call.corrections),
                metadata=meta, timeout=deadline))
            applied = ", ".join(fixed.applied) or "nothing"
            return StepResult(f"corrected {applied}", [f"{r.field} not corrected: {r.reason}" for r in fixed.rejected])
        if op == "restrict":
            _call(lambda: stub.Restrict(pd.RestrictRequest(subject_id=call.subject_id, request_id=call.request_id),
                                        metadata=meta, timeout=deadline))
            return StepResult("restricted")
        if op == "lift":
            _call(lambda: stub.LiftRestriction(pd.LiftRestrictionRequest(
                subject_id=call.subject_id, request_id=call.request_id), metadata=meta, timeout=deadline))
            return StepResult("restriction lifted")
        if op in ("object", "withdraw"):
            objection = op == "object"
            try:
                _call(lambda: self.consent.RecordOptOut(consent_pb2.RecordOptOutRequest(
                    subject_id=call.subject_id, objection=objection, source="rights_request"),
                    metadata=meta, timeout=deadline))
            except StepFailed as failed:
                if failed.code != "NOT_FOUND":
                    raise
                return StepResult("no marketing preferences held: nothing to stop")
            return StepResult("objection to direct marketing recorded" if objection else "every consent withdrawn")
        raise StepFailed("UNKNOWN_OPERATION")

    def run_many(self, calls: list[StepCall]) -> list[StepResult | StepFailed]:
        """Erasures of one service in one EraseMany; a service that does not serve it yet (a rolling
        upgrade) is asked one Erase at a time."""
        stub = self.personal_data[calls[0].service]
        asked = [pd.EraseRequest(subject_id=c.subject_id, request_id=c.request_id) for c in calls]
        meta = self.credentials.metadata()
        try:
            answer = _call(lambda: stub.EraseMany(pd.EraseManyRequest(erasures=asked), metadata=meta,
                                                  timeout=DEADLINES["erase_many"]))
        except StepFailed as failed:
            if failed.code != "UNIMPLEMENTED":
                raise
            return [self._erase_one(stub, one, meta) for one in asked]
        if [r.subject_id for r in answer.results] != [c.subject_id for c in calls]:
            raise StepFailed("MISMATCHED_ANSWER")
        return [StepFailed(r.error) if r.error else _erased(r.erased) for r in answer.results]

    @staticmethod
    def _erase_one(stub: personal_data_pb2_grpc.PersonalDataStub, asked: pd.EraseRequest,
                   meta: Any) -> StepResult | StepFailed:
        try:
            return _erased(_call(lambda: stub.Erase(asked, metadata=meta, timeout=DEFAULT_DEADLINE)))
        except StepFailed as failed:
            return failed

    def _export(self, call: StepCall, stub: personal_data_pb2_grpc.PersonalDataStub, meta: Any,
                deadline: float) -> StepResult:
        """The service's answer, stored piece by piece as it streams in (export_parts.py): one piece in
        memory at a time, however long the subject's history."""
        declarations = self._declarations(call.service)
        stream = stub.Export(pd.ExportRequest(subject_id=call.subject_id, request_id=call.request_id),
                             metadata=meta, timeout=deadline)
        tables, rows, last = 0, 0, ""

        def pieces() -> Iterator[bytes]:
            nonlocal tables, rows, last
            for piece in stream:
                for k, table in enumerate(piece.tables):
                    tables += 0 if k == 0 and table.name == last else 1  # a table going on is one table
                    rows += len(table.rows)
                    last = table.name
                yield piece.SerializeToString()

        try:
            self.parts.write(call, pieces(), declarations)
        except grpc.RpcError as exc:
            raise StepFailed(_code(exc)) from exc
        finally:
            # A step that stopped early (lease lost) leaves the service nothing more to send: a raw call
            # is cancelled; the tracing wrapper (a generator) is closed, and its call with it.
            stop = getattr(stream, "cancel", None) or getattr(stream, "close", None)
            if stop is not None:
                stop()
        return StepResult(f"exported {tables} tables, {rows} rows")

    def _declarations(self, service: str) -> bytes:
        """What the service declares (purposes, recipients, retention, transfers) for report.html."""
        try:
            declared = self.governance[service].GetDeclarations(
                governance_pb2.GetDeclarationsRequest(), metadata=self.credentials.metadata(),
                timeout=DEFAULT_DEADLINE)
        except grpc.RpcError as exc:
            if isinstance(exc, grpc.Call) and exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                return b""  # a service that does not declare yet: the report says so
            raise StepFailed(_code(exc)) from exc
        return bytes(declared.SerializeToString())


def _erased(erased: pd.EraseResponse) -> StepResult:
    return StepResult(f"erased {erased.erased_rows} rows", [f"{k.what}: {k.reason}" for k in erased.kept],
                      rows=erased.erased_rows)


def _code(exc: grpc.RpcError) -> str:
    return exc.code().name if isinstance(exc, grpc.Call) else "UNAVAILABLE"


def _call(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except grpc.RpcError as exc:
        raise StepFailed(_code(exc)) from exc


class IdentityDirectory:
    """Whose account has this address (identity's FindAccount): for requests that came by e-mail."""

    def __init__(self, settings: CommonSettings, credentials: ServiceCredentials) -> None:
        self.credentials = credentials
        self.stub = identity_pb2_grpc.IdentityStub(clients.channel(settings.addr_of("identity")))

    def __call__(self, email: str) -> str | None:
        try:
            found = self.stub.FindAccount(identity_pb2.FindAccountRequest(email=email),
                                          metadata=self.credentials.metadata(), timeout=DEFAULT_DEADLINE)
        except grpc.RpcError as exc:
            if isinstance(exc, grpc.Call) and exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise Unavailable("cannot reach identity to find the account; try again") from exc
        return str(found.subject_id)
