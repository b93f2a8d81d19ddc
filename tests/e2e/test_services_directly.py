"""Services over real gRPC: the region guard, caller identity, health and reflection."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import grpc
import jwt
import pytest
from consent.keys import Keys
from consent.models import SuppressionEntry
from consent.suppression import address_hashes
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from kaseum.identity.v1 import identity_pb2, identity_pb2_grpc
from kaseum.privacy.v1 import personal_data_pb2, personal_data_pb2_grpc
from kaseum.tickets.v1 import tickets_pb2, tickets_pb2_grpc
from servicekit import caller
from servicekit.db import make_engine
from servicekit.personal_data import joined
from sqlalchemy import select

from tests.support.api import PASSWORD, Api, sign_up_and_log_in
from tools.stack import SERVICES, Stack, generate_secrets


@pytest.fixture(scope="module")
def stack(system: Stack) -> Iterator[Stack]:
    yield system


def person_token(stack: Stack, region: str, role: str = "customer") -> str:
    """A token signed with the deployment's real key, for a subject of `region`."""
    from cryptography.hazmat.primitives import serialization
    from identity.tokens import TokenSigner

    pem = generate_secrets(stack.var / "kaseum.env")["IDENTITY_SIGNING_KEY"]
    signer = TokenSigner(pem, 300)
    _ = serialization
    token, _ = signer.sign("f" * 32, role, region, "e" * 32)
    return token


@pytest.mark.rule("R-XFER-2")
def test_a_uk_service_refuses_a_subject_homed_in_the_eu(stack: Stack) -> None:
    with grpc.insecure_channel(stack.grpc_addr("tickets")) as channel:
        stub = tickets_pb2_grpc.TicketsStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.OpenTicket(tickets_pb2.OpenTicketRequest(subject="s", body="b"),
                            metadata=caller.person_metadata(person_token(stack, "eu")), timeout=5)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "region" in (refused.value.details() or "")
    with grpc.insecure_channel(stack.grpc_addr("identity")) as channel, pytest.raises(grpc.RpcError) as signup:
        identity_pb2_grpc.IdentityStub(channel).SignUp(identity_pb2.SignUpRequest(
            username="eu_person", email="eu@example.com", password="x" * 16, first_name="A",
            last_name="B", company="C", job_title="D", country="FR"), timeout=5)
    assert signup.value.code() == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.rule("R-SEC-1")
def test_services_check_the_caller_themselves(stack: Stack) -> None:
    with grpc.insecure_channel(stack.grpc_addr("tickets")) as channel:
        stub = tickets_pb2_grpc.TicketsStub(channel)
        with pytest.raises(grpc.RpcError) as anonymous:
            stub.ListTickets(tickets_pb2.ListTicketsRequest(), timeout=5)
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
        forged = jwt.encode({"sub": "x", "role": "agent", "region": "uk", "sid": "s", "exp": time.time() + 60,
                             "iss": caller.ISSUER, "aud": caller.USER_AUDIENCE},
                            "not-the-deployment-key-but-long-enough-1234", algorithm="HS256")
        with pytest.raises(grpc.RpcError) as bad:
            stub.ListTickets(tickets_pb2.ListTicketsRequest(), metadata=caller.person_metadata(forged), timeout=5)
        assert bad.value.code() == grpc.StatusCode.UNAUTHENTICATED
        wrong_secret = caller.mint_service_token(b"x" * 40, "rights")
        with pytest.raises(grpc.RpcError) as service:
            list(personal_data_pb2_grpc.PersonalDataStub(channel).Export(
                personal_data_pb2.ExportRequest(subject_id="s"),
                metadata=((caller.SERVICE_HEADER, wrong_secret),), timeout=5))
        assert service.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.notice("13.1.1")
def test_only_the_rights_service_drives_the_personal_data_contract(stack: Stack) -> None:
    api = Api(stack.gateway_url)
    user, created, body = sign_up_and_log_in(api)
    secret = generate_secrets(stack.var / "kaseum.env")["KASEUM_SERVICE_SECRET"].encode()
    with grpc.insecure_channel(stack.grpc_addr("identity")) as channel:
        stub = personal_data_pb2_grpc.PersonalDataStub(channel)
        with pytest.raises(grpc.RpcError) as person:
            list(stub.Export(personal_data_pb2.ExportRequest(subject_id=created["id"]),
                             metadata=caller.person_metadata(user.token), timeout=5))
        assert person.value.code() == grpc.StatusCode.PERMISSION_DENIED
        exported = joined(stub.Export(personal_data_pb2.ExportRequest(subject_id=created["id"]),
                                      metadata=((caller.SERVICE_HEADER, caller.mint_service_token(secret, "rights")),),
                                      timeout=5))
    accounts = next(t for t in exported.tables if t.name == "accounts")
    assert "password_hash" not in accounts.columns
    row = dict(zip(accounts.columns, accounts.rows[0].values, strict=True))
    assert row["email"] == body["email"] and row["first_name"] == body["first_name"]
    assert any(t.name == "sign_ins" and t.rows for t in exported.tables)  # technical data of the login


@pytest.mark.rule("R-SEC-1")
def test_identity_refuses_an_agent_calling_create_user_directly(stack: Stack, admin: Api) -> None:
    api = Api(stack.gateway_url)
    name = f"agent_{uuid.uuid4().hex[:8]}"
    assert admin.call("POST", "/api/v1/admin/users", json={
        "role": "agent", "username": name, "email": f"{name}@kaseum.example", "password": PASSWORD}).status_code == 201
    login = api.call("POST", "/api/v1/sessions", json={"login": name, "password": PASSWORD})
    assert login.status_code == 200
    with grpc.insecure_channel(stack.grpc_addr("identity")) as channel, pytest.raises(grpc.RpcError) as refused:
        identity_pb2_grpc.IdentityStub(channel).CreateUser(identity_pb2.CreateUserRequest(
            role="admin", username=f"up_{name}", email=f"up_{name}@kaseum.example", password=PASSWORD),
            metadata=caller.person_metadata(login.json()["token"]), timeout=5)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert api.call("POST", "/api/v1/sessions", json={"login": f"up_{name}", "password": PASSWORD}).status_code == 401


@pytest.mark.notice("13.1.3")
@pytest.mark.rule("R-ERASE-1", "R-SEC-2")
def test_erasure_by_the_rights_service_ends_the_subjects_sessions_at_once(stack: Stack) -> None:
    api = Api(stack.gateway_url)
    user, created, body = sign_up_and_log_in(api)
    assert user.call("GET", "/api/v1/sessions/current").status_code == 200
    secret = generate_secrets(stack.var / "kaseum.env")["KASEUM_SERVICE_SECRET"].encode()
    with grpc.insecure_channel(stack.grpc_addr("identity")) as channel:
        erased = personal_data_pb2_grpc.PersonalDataStub(channel).Erase(
            personal_data_pb2.EraseRequest(subject_id=created["id"]),
            metadata=((caller.SERVICE_HEADER, caller.mint_service_token(secret, "rights")),), timeout=5)
    assert erased.erased_rows >= 3  # the account, its session, its sign-in (and the verification token)
    # Refused on the very next request, by the gateway's own check as well as by a service's.
    for path in ("/api/v1/sessions/current", "/api/v1/me"):
        assert user.call("GET", path).status_code == 401, path
    assert api.call("POST", "/api/v1/sessions", json={"login": body["username"],
                                                      "password": body["password"]}).status_code == 401


def listed(stack: Stack, emails: list[str]) -> set[str]:
    """Which of `emails` are on consent's suppression list (as their keyed hashes, reason erasure)."""
    keys = Keys.from_secret(generate_secrets(stack.var / "kaseum.env")["KASEUM_SERVICE_SECRET"].encode())
    by_hash = {h: e for e in emails for _, h in address_hashes(keys.suppression, e, "")}
    engine = make_engine(stack.database_url("consent"))
    try:
        with engine.connect() as conn:
            found = conn.execute(select(SuppressionEntry.hash).where(
                SuppressionEntry.hash.in_(by_hash), SuppressionEntry.reason == "erasure")).scalars()
            return {by_hash[h] for h in found}
    finally:
        engine.dispose()


@pytest.mark.notice("13.1.3")
@pytest.mark.rule("R-ERASE-1", "R-SEC-2", "R-MKT-6")
def test_every_holder_erases_a_batch_of_subjects_over_grpc_each_answered_in_order(stack: Stack) -> None:
    api = Api(stack.gateway_url)
    people = [sign_up_and_log_in(api) for _ in range(2)]
    for user, _, _ in people:
        opened = user.call("POST", "/api/v1/tickets", json={"subject": "Invoice", "body": "It is wrong."})
        assert opened.status_code == 201
    ids = [created["id"] for _, created, _ in people] + [uuid.uuid4().hex]  # the last is nobody
    emails = [body["email"] for _, _, body in people]
    assert listed(stack, emails) == set()
    asked = personal_data_pb2.EraseManyRequest(erasures=[
        personal_data_pb2.EraseRequest(subject_id=i, request_id=uuid.uuid4().hex) for i in ids])
    secret = generate_secrets(stack.var / "kaseum.env")["KASEUM_SERVICE_SECRET"].encode()
    rights = ((caller.SERVICE_HEADER, caller.mint_service_token(secret, "rights")),)
    erased: dict[str, list[int]] = {}
    for service in ("tickets", "consent", "analytics", "rights", "identity"):  # identity last, as the orchestrator
        with grpc.insecure_channel(stack.grpc_addr(service)) as channel:
            stub = personal_data_pb2_grpc.PersonalDataStub(channel)
            if service == "identity":
                with pytest.raises(grpc.RpcError) as refused:  # a person may not drive the contract
                    stub.EraseMany(asked, metadata=caller.person_metadata(people[0][0].token), timeout=5)
                assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
            answer = stub.EraseMany(asked, metadata=rights, timeout=30)
        assert [(r.subject_id, r.error, r.erased.service) for r in answer.results] == [(i, "", service) for i in ids]
        erased[service] = [r.erased.erased_rows for r in answer.results]
        if service == "consent":  # before identity's: consent read both addresses (GetContacts) and listed them
            assert listed(stack, emails) == set(emails)
    assert all(rows >= 1 for rows in erased["tickets"][:2])  # each one's ticket
    assert all(rows >= 3 for rows in erased["identity"][:2])  # the account, its session, its sign-in
    assert [rows[2] for rows in erased.values()] == [0] * 5  # nobody: nothing anywhere
    for user, _, body in people:
        assert user.call("GET", "/api/v1/me").status_code == 401
        assert api.call("POST", "/api/v1/sessions", json={"login": body["username"],
                                                          "password": body["password"]}).status_code == 401


def test_every_service_has_health_and_reflection(stack: Stack) -> None:
    for name in SERVICES:
        with grpc.insecure_channel(stack.grpc_addr(name)) as channel:
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status
            assert status == health_pb2.HealthCheckResponse.SERVING, name
            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
            [answer] = list(reflection.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5))
            names = {s.name for s in answer.list_services_response.service}
            assert "grpc.health.v1.Health" in names, name
            assert any(n.startswith(f"kaseum.{name}.v1.") for n in names), (name, names)


@pytest.mark.rule("R-SEC-2")
def test_a_revoked_session_is_refused_by_the_services_too(stack: Stack) -> None:
    api = Api(stack.gateway_url)
    user, _, _ = sign_up_and_log_in(api)
    with grpc.insecure_channel(stack.grpc_addr("tickets")) as channel:
        stub = tickets_pb2_grpc.TicketsStub(channel)
        stub.ListTickets(tickets_pb2.ListTicketsRequest(), metadata=caller.person_metadata(user.token), timeout=5)
        assert user.call("DELETE", "/api/v1/sessions/current").status_code == 204
        with pytest.raises(grpc.RpcError) as refused:
            stub.ListTickets(tickets_pb2.ListTicketsRequest(), metadata=caller.person_metadata(user.token),
                             timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
