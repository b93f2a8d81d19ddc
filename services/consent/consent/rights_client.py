"""Verification codes over gRPC: rights' ClaimVerificationCode, called with consent's credentials."""

from __future__ import annotations

from datetime import UTC

import grpc
from kaseum.rights.v1 import rights_pb2, rights_pb2_grpc
from servicekit import caller, clients

from .codes import ClaimedCode, CodeGone, CodesUnavailable

# What rights answers for a code already given out, or a request that no longer waits for one.
_GONE = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.ABORTED,
         grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT)


def _code(error: grpc.RpcError) -> grpc.StatusCode | None:
    return error.code() if isinstance(error, grpc.Call) else None


class RightsCodes:
    def __init__(self, addr: str, credentials: caller.ServiceCredentials) -> None:
        # ClaimVerificationCode works once, so it is never retried blindly (no idempotent methods).
        self._stub = rights_pb2_grpc.RightsStub(clients.channel(addr, "kaseum.rights.v1.Rights", [], deadline=5))
        self._credentials = credentials

    def claim_code(self, request_id: str) -> ClaimedCode:
        try:
            claimed = self._stub.ClaimVerificationCode(
                rights_pb2.ClaimVerificationCodeRequest(request_id=request_id),
                metadata=self._credentials.metadata())
        except grpc.RpcError as exc:
            if _code(exc) in _GONE:
                raise CodeGone(str(_code(exc))) from exc
            raise CodesUnavailable(str(_code(exc))) from exc
        return ClaimedCode(claimed.subject_id, claimed.code, claimed.expires_at.ToDatetime(tzinfo=UTC))
