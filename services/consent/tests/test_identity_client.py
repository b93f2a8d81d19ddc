"""The directory's batch read falls back to one read per subject from an identity that does not serve
GetContacts yet (a rolling upgrade). A unit test of that one rule: the identity here is a stand-in
serving GetContact only, over real gRPC (the whole-system tests use the real identity)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from consent.directory import Contact
from consent.identity_client import IdentityDirectory
from kaseum.identity.v1 import identity_pb2, identity_pb2_grpc
from servicekit.caller import ServiceCredentials

ADA = "a" * 32


class OlderIdentity(identity_pb2_grpc.IdentityServicer):  # type: ignore[misc]
    """Answers GetContact; every other method, GetContacts included, is UNIMPLEMENTED."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def GetContact(self, request: identity_pb2.GetContactRequest, context: Any) -> identity_pb2.GetContactResponse:
        self.asked.append(request.subject_id)
        if request.subject_id != ADA:
            context.abort(grpc.StatusCode.NOT_FOUND, "subject not found")
        return identity_pb2.GetContactResponse(email="ada@example.com", phone="+447700900123")


@pytest.fixture
def older() -> Iterator[tuple[str, OlderIdentity]]:
    identity = OlderIdentity()
    server = grpc.server(futures.ThreadPoolExecutor(2))
    identity_pb2_grpc.add_IdentityServicer_to_server(identity, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", identity
    server.stop(0)


@pytest.mark.notice("13.1.3")
@pytest.mark.rule("R-MKT-6")
def test_an_identity_without_get_contacts_is_asked_one_subject_at_a_time(
        older: tuple[str, OlderIdentity]) -> None:
    addr, identity = older
    directory = IdentityDirectory(addr, ServiceCredentials(b"s" * 32, "consent"))
    assert directory.contacts([ADA, "b" * 32]) == [Contact("ada@example.com", "+447700900123", False), None]
    assert identity.asked == [ADA, "b" * 32]
