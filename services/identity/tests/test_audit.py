"""Identity's audit trail (section 11): staff and services' access to a subject's data, through the
real gRPC servicers (the caller as servicekit's request context carries it), on a real database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from identity.grpc_api import IdentityApi
from identity.models import Account, AuditLog, ChainHead
from identity.service import IdentityService
from kaseum.identity.v1 import identity_pb2 as pb
from kaseum.privacy.v1 import personal_data_pb2 as pd
from servicekit import caller, chain
from servicekit.caller import Principal
from servicekit.errors import InvalidArgument, PermissionDenied, WrongRegion
from servicekit.personal_data import PersonalDataApi, joined
from servicekit.testing import person
from sqlalchemy import event, select, update

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


def contacts(api: IdentityApi, *subject_ids: str) -> list[tuple[str, str, str]]:
    """GetContacts' answers as (id, address, error)."""
    answer = api.GetContacts(pb.GetContactsRequest(subject_ids=subject_ids), None)
    return [(r.subject_id, r.contact.email, r.error) for r in answer.results]


@pytest.mark.notice("11")
@pytest.mark.rule("R-SEC-1", "R-XFER-2")
def test_a_service_reads_several_addresses_at_once_each_as_getcontact_would_answer(service: IdentityService) -> None:
    ada, bob, eve = (service.sign_up(signup(username=n, email=f"{n}@example.com")) for n in ("ada", "bob", "eve"))
    with service.uow() as uow:  # a subject homed elsewhere (sign-up refuses one: set it behind the rules' back)
        uow.session.execute(update(Account).where(Account.id == eve.id).values(region="eu"))
        uow.commit()
    nobody = uuid.uuid4().hex
    api = IdentityApi(service)
    with calling_as(CONSENT):
        answers = contacts(api, bob.id, nobody, ada.id, eve.id, bob.id)
        with pytest.raises(WrongRegion):
            api.GetContact(pb.GetContactRequest(subject_id=eve.id), None)
    # In the order asked; an unknown id and one of another region refused as GetContact refuses them.
    assert answers == [(bob.id, "bob@example.com", ""), (nobody, "", "NOT_FOUND"), (ada.id, "ada@example.com", ""),
                       (eve.id, "", "FAILED_PRECONDITION"), (bob.id, "bob@example.com", "")]
    # Only the subjects read are on the trail, once each, with the purpose GetContact records.
    assert trail(service) == [("consent", "service", bob.id, "contact.read", "4.1.5"),
                              ("consent", "service", ada.id, "contact.read", "4.1.5")]
    with calling_as(RIGHTS):
        assert contacts(api, ada.id) == [(ada.id, "ada@example.com", "")]
    assert trail(service)[-1] == ("rights", "service", ada.id, "contact.read", "13")


@pytest.mark.notice("11")
@pytest.mark.rule("R-SEC-1")
def test_getcontacts_reads_and_audits_a_batch_by_the_statements_of_one(service: IdentityService) -> None:
    """One query for every subject and one append to the audit chain (a record each), one commit."""
    subjects = [service.sign_up(signup(username=f"person{i}", email=f"person{i}@example.com")).id for i in range(4)]
    api = IdentityApi(service)
    engine = service.uow.session_factory.kw["bind"]
    with calling_as(CONSENT):  # the audit chain's head made (the first append to it makes it)
        api.GetContact(pb.GetContactRequest(subject_id=subjects[0]), None)
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        with calling_as(CONSENT):
            contacts(api, subjects[0])
            one = len(statements)
            contacts(api, *subjects[1:])
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 2 * one
    with service.uow() as uow:
        records = list(uow.session.scalars(select(AuditLog).order_by(AuditLog.seq)))
    assert [r.subject_id for r in records] == [subjects[0], *subjects]
    assert len({r.at for r in records[2:]}) == 1  # the batch's records: one append


@pytest.mark.rule("R-SEC-1")
def test_getcontacts_is_for_consent_and_rights_only_and_bounded(service: IdentityService) -> None:
    ada = service.sign_up(signup())
    api = IdentityApi(service)
    for someone in (person(ada.id), person("a" * 32, "admin"), Principal("service", "tickets", "service")):
        with calling_as(someone), pytest.raises(PermissionDenied):
            api.GetContacts(pb.GetContactsRequest(subject_ids=[ada.id]), None)
    with calling_as(CONSENT), pytest.raises(InvalidArgument):
        api.GetContacts(pb.GetContactsRequest(subject_ids=[ada.id] * 501), None)
    with calling_as(CONSENT):
        assert len(contacts(api, *[ada.id] * 500)) == 500
    assert trail(service) == [("consent", "service", ada.id, "contact.read", "4.1.5")]
