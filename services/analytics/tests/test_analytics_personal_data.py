"""Analytics' part of the PersonalData contract, and the gRPC translation of its query."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from analytics.grpc_api import AnalyticsApi
from analytics.service import NO_PERSONAL_DATA, AnalyticsService
from kaseum.analytics.v1 import analytics_pb2 as pb
from kaseum.privacy.v1 import personal_data_pb2 as pd
from servicekit import caller
from servicekit.caller import Principal
from servicekit.errors import PermissionDenied
from servicekit.personal_data import PersonalDataApi

RIGHTS = Principal("service", "rights", "service")


@pytest.fixture
def as_caller() -> Iterator[Any]:
    tokens: list[object] = []
    yield lambda principal: tokens.append(caller.set_current(principal))
    for token in reversed(tokens):
        caller.reset_current(token)


@pytest.mark.rule("R-DATA-3", "R-ACCESS-1")
@pytest.mark.notice("3.3", "13.1.1")
def test_export_has_no_tables_and_says_why(service: AnalyticsService, as_caller: Any) -> None:
    as_caller(RIGHTS)
    response = PersonalDataApi("analytics", service).Export(pd.ExportRequest(subject_id="s1"), None)
    assert (response.service, list(response.tables), response.note) == ("analytics", [], NO_PERSONAL_DATA)
    assert NO_PERSONAL_DATA == (
        "Analytics keeps no personal data: usage is held under a daily-rotated pseudonym until it is rolled up "
        "into aggregates, then deleted; aggregates cannot be linked to a person.")


@pytest.mark.rule("R-ERASE-1")
@pytest.mark.notice("13.1.3")
def test_erase_has_nothing_to_erase_and_keeps_nothing(service: AnalyticsService, as_caller: Any) -> None:
    as_caller(RIGHTS)
    response = PersonalDataApi("analytics", service).Erase(pd.EraseRequest(subject_id="s1"), None)
    assert (response.erased_rows, list(response.kept)) == (0, [])


@pytest.mark.rule("R-RESTRICT-1")
@pytest.mark.notice("13.1.5")
def test_restriction_is_recorded_lifted_and_shown_in_an_export(service: AnalyticsService, as_caller: Any) -> None:
    as_caller(RIGHTS)
    api = PersonalDataApi("analytics", service)
    assert api.Restrict(pd.RestrictRequest(subject_id="s1"), None).restricted is True
    with service.uow() as u:
        assert u.repo.is_restricted("s1") and not u.repo.is_restricted("s2")
    exported = api.Export(pd.ExportRequest(subject_id="s1"), None)
    assert [t.name for t in exported.tables] == ["restrictions"]
    assert exported.note.startswith(NO_PERSONAL_DATA)
    assert api.LiftRestriction(pd.LiftRestrictionRequest(subject_id="s1"), None).restricted is False
    with service.uow() as u:
        assert not u.repo.is_restricted("s1")


@pytest.mark.parametrize("principal", [Principal("service", "gateway", "service"),
                                       Principal("person", "p", "analyst", "uk")])
def test_only_the_rights_service_or_cli_may_call_the_contract(service: AnalyticsService, as_caller: Any,
                                                              principal: Principal) -> None:
    as_caller(principal)
    with pytest.raises(PermissionDenied):
        PersonalDataApi("analytics", service).Erase(pd.EraseRequest(subject_id="s1"), None)


@pytest.mark.rule("R-DATA-3")
def test_grpc_feature_usage_for_an_analyst(service: AnalyticsService, as_caller: Any, person: Any,
                                           daily: Any) -> None:
    daily(date(2025, 3, 3), users=10, active=40)
    daily(date(2025, 3, 4), users=9, active=40)
    as_caller(person("analyst"))
    response = AnalyticsApi(service).FeatureUsage(pb.FeatureUsageRequest(
        feature="tickets.open", from_date="2025-03-03", to_date="2025-03-04", granularity="day"), None)
    assert [(p.period, p.users, p.percentage, p.suppressed) for p in response.series] == [
        ("2025-03-03", 10, 25.0, False), ("2025-03-04", 0, 0.0, True)]
    as_caller(Principal("service", "gateway", "service"))
    with pytest.raises(PermissionDenied):
        AnalyticsApi(service).FeatureUsage(pb.FeatureUsageRequest(feature="tickets.open"), None)
