"""Directory over gRPC: identity's GetContact and ClaimMessageToken, called with consent's credentials."""

from __future__ import annotations

import grpc
from kaseum.identity.v1 import identity_pb2, identity_pb2_grpc
from servicekit import caller, clients

from .directory import ClaimedToken, Contact, DirectoryUnavailable, TokenGone

_GONE = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.ABORTED,
         grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT)


def _code(error: grpc.RpcError) -> grpc.StatusCode | None:
    return error.code() if isinstance(error, grpc.Call) else None


class IdentityDirectory:
    def __init__(self, addr: str, credentials: caller.ServiceCredentials) -> None:
        # GetContact is a read (retried); ClaimMessageToken works once, so it is never retried blindly.
        self._stub = identity_pb2_grpc.IdentityStub(
            clients.channel(addr, "kaseum.identity.v1.Identity", ["GetContact"], deadline=5))
        self._credentials = credentials

    def contact(self, subject_id: str) -> Contact | None:
        try:
            found = self._stub.GetContact(identity_pb2.GetContactRequest(subject_id=subject_id),
                                          metadata=self._credentials.metadata())
        except grpc.RpcError as exc:
            if _code(exc) == grpc.StatusCode.NOT_FOUND:
                return None
            raise DirectoryUnavailable(str(_code(exc))) from exc
        return Contact(found.email, found.phone, found.restricted)

    def claim_token(self, token_id: str) -> ClaimedToken:
        try:
            claimed = self._stub.ClaimMessageToken(identity_pb2.ClaimMessageTokenRequest(token_id=token_id),
                                                   metadata=self._credentials.metadata())
        except grpc.RpcError as exc:
            if _code(exc) in _GONE:
                raise TokenGone(str(_code(exc))) from exc
            raise DirectoryUnavailable(str(_code(exc))) from exc
        return ClaimedToken(claimed.token, claimed.purpose, claimed.email)
