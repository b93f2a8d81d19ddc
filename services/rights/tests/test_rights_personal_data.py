"""Rights' part of the PersonalData contract, and the gRPC translation of its own API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kaseum.privacy.v1 import personal_data_pb2 as pd
from kaseum.rights.v1 import rights_pb2 as pb
from rights.grpc_api import RightsApi
from rights.service import RightsService
from servicekit import caller
from servicekit.caller import Principal
from servicekit.errors import NotFound, PermissionDenied
from servicekit.personal_data import PersonalDataApi, joined


@pytest.fixture
def as_caller() -> Iterator[object]:
    tokens: list[object] = []

    def use(principal: Principal) -> None:
        tokens.append(caller.set_current(principal))

    yield use
    for token in reversed(tokens):
        caller.reset_current(token)


def rights_service_principal(name: str = "rights") -> Principal:
    return Principal("service", name, "service")


@pytest.mark.rule("R-ACCESS-1")
@pytest.mark.notice("13.1.1")
def test_export_returns_the_subjects_requests(person: Any, service: RightsService, as_caller: Any) -> None:
    customer = person()
    filed = service.file_request(customer, "access", "everything please")
    service.file_request(person(), "access", "someone else")
    as_caller(rights_service_principal())
    response = joined(PersonalDataApi("rights", service).Export(
        pd.ExportRequest(subject_id=customer.subject_id), None))
    tables = {t.name: t for t in response.tables}
    requests = tables["rights_requests"]
    rows = [dict(zip(requests.columns, row.values, strict=True)) for row in requests.rows]
    assert [(r["id"], r["details"], r["subject_id"]) for r in rows] == [
        (filed.id, "everything please", customer.subject_id)]
    assert list(tables["restrictions"].rows) == []


@pytest.mark.rule("R-ERASE-1", "R-RET-1")
@pytest.mark.notice("13.1.3")
def test_erase_keeps_requests_as_evidence(person: Any, service: RightsService, as_caller: Any) -> None:
    customer = person()
    filed = service.file_request(customer, "erasure", "")
    as_caller(rights_service_principal("cli"))
    response = PersonalDataApi("rights", service).Erase(pd.EraseRequest(subject_id=customer.subject_id), None)
    assert response.erased_rows == 0
    assert [(k.what, k.reason) for k in response.kept] == [
        ("rights_requests", "kept as evidence for 6 years after completion (legal obligation, UK GDPR Art. 17(3)(b))")]
    assert service.get_request(customer, filed.id).id == filed.id


@pytest.mark.rule("R-RESTRICT-1")
@pytest.mark.notice("13.1.5")
def test_restriction_is_recorded_and_requests_still_proceed(
        person: Any, service: RightsService, as_caller: Any) -> None:
    customer = person()
    api = PersonalDataApi("rights", service)
    as_caller(rights_service_principal())
    assert api.Restrict(pd.RestrictRequest(subject_id=customer.subject_id), None).restricted is True
    assert api.Restrict(pd.RestrictRequest(subject_id=customer.subject_id), None).restricted is True  # idempotent
    with service.uow() as u:
        assert u.repo.is_restricted(customer.subject_id)
    assert service.file_request(customer, "objection", "").status == "in_progress"
    lifted = api.LiftRestriction(pd.LiftRestrictionRequest(subject_id=customer.subject_id), None)
    assert lifted.restricted is False
    with service.uow() as u:
        assert not u.repo.is_restricted(customer.subject_id)


@pytest.mark.parametrize("principal", [
    Principal("service", "tickets", "service"),
    Principal("person", "someone", "dpo", "uk"),
])
def test_only_the_rights_service_or_cli_may_call_the_contract(service: RightsService, as_caller: Any,
                                                              principal: Principal) -> None:
    as_caller(principal)
    with pytest.raises(PermissionDenied):
        PersonalDataApi("rights", service).Export(pd.ExportRequest(subject_id="x"), None)


def test_grpc_api_files_lists_and_gets_for_the_calling_person(
        person: Any, service: RightsService, as_caller: Any) -> None:
    customer = person()
    api = RightsApi(service)
    as_caller(customer)
    filed = api.FileRequest(pb.FileRequestRequest(kind="portability", details="to my new provider"), None)
    assert (filed.kind, filed.status, filed.subject_id) == ("portability", "in_progress", customer.subject_id)
    assert sorted(s.service for s in filed.steps) == ["analytics", "consent", "identity", "rights", "tickets"]
    assert filed.due_at.ToDatetime() > filed.received_at.ToDatetime()
    listed = api.ListRequests(pb.ListRequestsRequest(), None)
    assert [r.id for r in listed.items] == [filed.id] and listed.next_cursor == ""
    assert api.GetRequest(pb.GetRequestRequest(id=filed.id), None).details == "to my new provider"
    as_caller(person())
    with pytest.raises(NotFound):
        api.GetRequest(pb.GetRequestRequest(id=filed.id), None)


def test_grpc_api_refuses_services_as_callers(service: RightsService, as_caller: Any) -> None:
    as_caller(Principal("service", "consent", "service"))
    with pytest.raises(PermissionDenied):
        RightsApi(service).ListRequests(pb.ListRequestsRequest(), None)
