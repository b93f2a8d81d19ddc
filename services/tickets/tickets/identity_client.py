"""Asking identity for a reseller's scope over gRPC (translation only; caching is scopes.py)."""

from __future__ import annotations

from collections.abc import Callable

import grpc
from kaseum.identity.v1 import organisations_pb2, organisations_pb2_grpc
from servicekit import clients, errors
from servicekit.caller import ServiceCredentials

from .visibility import Scope

ORGANISATIONS = "kaseum.identity.v1.Organisations"


def reseller_scope_source(identity_addr: str, credentials: ServiceCredentials) -> Callable[[str], Scope]:
    stub = organisations_pb2_grpc.OrganisationsStub(
        clients.channel(identity_addr, ORGANISATIONS, ["ResellerScope"], deadline=3))

    def fetch(reseller_account_id: str) -> Scope:
        try:
            answer = stub.ResellerScope(organisations_pb2.ResellerScopeRequest(
                reseller_account_id=reseller_account_id), metadata=credentials.metadata())
        except grpc.RpcError as exc:
            if isinstance(exc, grpc.Call) and exc.code() == grpc.StatusCode.NOT_FOUND:
                return Scope()  # not a reseller in a reseller organisation: sees nothing
            raise errors.Unavailable("cannot confirm the reseller's customers right now; try again") from exc
        return Scope(answer.reseller_id, frozenset(answer.customer_organisation_ids), frozenset(answer.countries))

    return fetch
