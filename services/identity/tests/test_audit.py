"""Identity's audit trail (section 11): staff and services' access to a subject's data, through the
real gRPC servicers (the caller as servicekit's request context carries it), on a real database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from identity.grpc_api import IdentityApi
from identity.models import AuditLog, ChainHead
from identity.service import IdentityService
from kaseum.identity.v1 import identity_pb2 as pb
from kaseum.privacy.v1 import personal_data_pb2 as pd
from servicekit import caller, chain
from servicekit.caller import Principal
from servicekit.personal_data import PersonalDataApi, joined
from servicekit.testing import person
from sqlalchemy import select

from .conftest import signup

CONSENT = Principal("service", "consent", "service")
RIGHTS = Principal("service", "rights", "service")


@contextmanager
def calling_as(principal: Principal) -> Iterator[None]:
    token = caller.set_current(principal)
    try:
        yield
    finally:
        caller.reset_current(token)


def trail(service: IdentityService) -> list[tuple[str, str, str, str, str]]:
    with service.uow() as uow:
        assert chain.verify(uow.session, AuditLog, ChainHead).intact
        return [(r.actor_id, r.actor_role, r.subject_id, r.action, r.purpose)
                for r in uow.session.scalars(select(AuditLog).order_by(AuditLog.seq))]


@pytest.mark.notice("11")
@pytest.mark.rule("R-SEC-1")
def test_a_service_reading_an_address_is_recorded_with_its_purpose(service: IdentityService) -> None:
    account = service.sign_up(signup())
    api = IdentityApi(service)
    with calling_as(CONSENT):
        contact = api.GetContact(pb.GetContactRequest(subject_id=account.id), None)
    with calling_as(RIGHTS):
        api.GetContact(pb.GetContactRequest(subject_id=account.id), None)
    assert contact.email == "ada@example.com"
    assert trail(service) == [("consent", "service", account.id, "contact.read", "4.1.5"),
                              ("rights", "service", account.id, "contact.read", "13")]


@pytest.mark.notice("11")
@pytest.mark.rule("R-SEC-1")
def test_an_admin_creating_a_user_is_recorded(service: IdentityService) -> None:
    api = IdentityApi(service)
    admin = person("a" * 32, "admin")
    with calling_as(admin):
        created = api.CreateUser(pb.CreateUserRequest(role="agent", username="agent1", email="agent1@example.com",
                                                      password="correct horse battery staple"), None)
    with calling_as(Principal("service", "cli", "service")):
        by_cli = api.CreateUser(pb.CreateUserRequest(role="admin", username="root", email="root@example.com",
                                                     password="correct horse battery staple"), None)
    assert trail(service) == [(admin.subject_id, "admin", created.id, "account.created", "4.1.3"),
                              ("cli", "service", by_cli.id, "account.created", "4.1.3")]


@pytest.mark.notice("11", "13.1.1")
@pytest.mark.rule("R-SEC-1", "R-ACCESS-1")
def test_the_subjects_export_says_who_accessed_their_data_and_is_itself_recorded(service: IdentityService) -> None:
    account = service.sign_up(signup())
    other = service.sign_up(signup(username="bob", email="bob@example.com"))
    api = IdentityApi(service)
    with calling_as(CONSENT):
        api.GetContact(pb.GetContactRequest(subject_id=account.id), None)
        api.GetContact(pb.GetContactRequest(subject_id=other.id), None)
    contract = PersonalDataApi("identity", service)
    with calling_as(RIGHTS):
        exported = joined(contract.Export(pd.ExportRequest(subject_id=account.id), None))
        contract.Restrict(pd.RestrictRequest(subject_id=account.id), None)
        contract.Rectify(pd.RectifyRequest(subject_id=account.id, corrections={"last_name": "Byron"}), None)
    log = next(t for t in exported.tables if t.name == "access_log")
    entries = [dict(zip(log.columns, r.values, strict=True)) for r in log.rows]
    assert [(e["actor_kind"], e["actor_role"], e["action"], e["purpose"]) for e in entries] == [
        ("service", "service", "contact.read", "4.1.5"), ("service", "service", "account.exported", "13")]
    assert "actor_id" not in log.columns and other.id not in str(log)  # nobody else's data
    assert [(a, s, act) for a, _, s, act, _ in trail(service)][-2:] == [
        ("rights", account.id, "account.restricted"), ("rights", account.id, "account.rectified")]


@pytest.mark.notice("11", "13.1.3")
@pytest.mark.rule("R-SEC-1", "R-ERASE-1")
def test_the_access_log_outlives_an_erasure(service: IdentityService) -> None:
    account = service.sign_up(signup())
    contract = PersonalDataApi("identity", service)
    with calling_as(RIGHTS):
        erased = contract.Erase(pd.EraseRequest(subject_id=account.id), None)
        exported = joined(contract.Export(pd.ExportRequest(subject_id=account.id), None))
    assert erased.erased_rows == 2 and [k.what for k in erased.kept] == ["access_log"]
    tables = {t.name: t for t in exported.tables}
    assert not tables["accounts"].rows
    assert [r.values[list(tables["access_log"].columns).index("action")] for r in tables["access_log"].rows] == [
        "account.erased", "account.exported"]
