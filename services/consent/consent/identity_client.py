"""Directory over gRPC: identity's GetContact(s) and ClaimMessageToken, called with consent's credentials."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from kaseum.identity.v1 import identity_pb2, identity_pb2_grpc
from servicekit import caller, clients

from .directory import ClaimedToken, Contact, DirectoryUnavailable, TokenGone

_GONE = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.ABORTED,
         grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT)
MAX_CONTACTS = 500  # ids per GetContacts (identity's bound)


def _code(error: grpc.RpcError) -> grpc.StatusCode | None:
    return error.code() if isinstance(error, grpc.Call) else None


class IdentityDirectory:
    def __init__(self, addr: str, credentials: caller.ServiceCredentials) -> None:
        # GetContact(s) are reads (retried); ClaimMessageToken works once, so it is never retried blindly.
        self._stub = identity_pb2_grpc.IdentityStub(
            clients.channel(addr, "kaseum.identity.v1.Identity", ["GetContact", "GetContacts"], deadline=5))
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

    def contacts(self, subject_ids: Sequence[str]) -> list[Contact | DirectoryUnavailable | None]:
        answers: list[Contact | DirectoryUnavailable | None] = []
        for start in range(0, len(subject_ids), MAX_CONTACTS):
            chunk = subject_ids[start:start + MAX_CONTACTS]
            try:
                found = self._stub.GetContacts(identity_pb2.GetContactsRequest(subject_ids=chunk),
                                               metadata=self._credentials.metadata())
            except grpc.RpcError as exc:
                if _code(exc) == grpc.StatusCode.UNIMPLEMENTED:  # identity not upgraded yet (a rolling upgrade)
                    answers += [self._one(subject_id) for subject_id in chunk]
                    continue
                raise DirectoryUnavailable(str(_code(exc))) from exc
            # An id refused is taken as `contact` takes GetContact's refusal: NOT_FOUND is no account; any
            # other (a subject homed in another region) cannot be answered now.
            answers += [Contact(r.contact.email, r.contact.phone, r.contact.restricted) if not r.error
                        else None if r.error == grpc.StatusCode.NOT_FOUND.name else DirectoryUnavailable(r.error)
                        for r in found.results]
        return answers

    def _one(self, subject_id: str) -> Contact | DirectoryUnavailable | None:
        try:
            return self.contact(subject_id)
        except DirectoryUnavailable as refused:
            return refused

    def claim_token(self, token_id: str) -> ClaimedToken:
        try:
            claimed = self._stub.ClaimMessageToken(identity_pb2.ClaimMessageTokenRequest(token_id=token_id),
                                                   metadata=self._credentials.metadata())
        except grpc.RpcError as exc:
            if _code(exc) in _GONE:
                raise TokenGone(str(_code(exc))) from exc
            raise DirectoryUnavailable(str(_code(exc))) from exc
        return ClaimedToken(claimed.token, claimed.purpose, claimed.email)
