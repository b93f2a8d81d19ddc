"""Analytics' part of the PersonalData contract (N §13.1; R-ACCESS-1, R-ERASE-1, R-RESTRICT-1)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date

import pytest
from analytics.service import NO_PERSONAL_DATA, AnalyticsService, Use
from kaseum.privacy.v1 import personal_data_pb2 as pd
from servicekit import caller
from servicekit.caller import Principal
from servicekit.errors import PermissionDenied
from servicekit.personal_data import PersonalDataApi, joined
from servicekit.pseudonyms import Exclusions, PseudonymKeys, pseudonym

RIGHTS = Principal("service", "rights", "service")
TODAY = date(2025, 3, 10)


@pytest.fixture
def api(service: AnalyticsService) -> Iterator[PersonalDataApi]:
    token = caller.set_current(RIGHTS)
    yield PersonalDataApi("analytics", service)
    caller.reset_current(token)


@pytest.mark.rule("R-DATA-3", "R-ACCESS-1")
@pytest.mark.notice("3.3", "13.1.1")
def test_export_returns_nothing_and_says_why(api: PersonalDataApi) -> None:
    response = joined(api.Export(pd.ExportRequest(subject_id="s1"), None))
    assert (response.service, list(response.tables), response.note) == ("analytics", [], NO_PERSONAL_DATA)
    assert "destroyed when the day is rolled up" in NO_PERSONAL_DATA and "cannot be recomputed" in NO_PERSONAL_DATA


@pytest.mark.rule("R-ERASE-1")
@pytest.mark.notice("13.1.3")
def test_erase_deletes_the_subjects_unrolled_events_by_recomputing_todays_pseudonym(
        api: PersonalDataApi, service: AnalyticsService, keys: PseudonymKeys) -> None:
    key = keys.key(TODAY, create=True)
    assert key is not None
    service.ingest([Use(uuid.uuid4().hex, TODAY, service.region, "tickets.open", pseudonym(key, who))
                    for who in ("s1", "s1", "s2")])
    response = api.Erase(pd.EraseRequest(subject_id="s1"), None)
    assert (response.erased_rows, list(response.kept)) == (2, [])
    assert api.Erase(pd.EraseRequest(subject_id="s1"), None).erased_rows == 0


@pytest.mark.rule("R-RESTRICT-1")
@pytest.mark.notice("13.1.5")
def test_restriction_goes_on_the_exclusion_list_and_shows_in_an_export(
        api: PersonalDataApi, exclusions: Exclusions) -> None:
    assert api.Restrict(pd.RestrictRequest(subject_id="s1"), None).restricted is True
    assert exclusions.reasons("s1") == ["restricted"] and exclusions.reasons("s2") == []
    exported = joined(api.Export(pd.ExportRequest(subject_id="s1"), None))
    assert [(t.name, [list(r.values) for r in t.rows]) for t in exported.tables] == [
        ("analytics_exclusions", [["restricted"]])]
    assert exported.note.startswith(NO_PERSONAL_DATA)
    assert api.LiftRestriction(pd.LiftRestrictionRequest(subject_id="s1"), None).restricted is False
    assert exclusions.reasons("s1") == []


@pytest.mark.parametrize("principal", [Principal("service", "gateway", "service"),
                                       Principal("person", "p", "analyst", "uk")])
def test_only_the_rights_service_or_cli_may_call_the_contract(service: AnalyticsService, principal: Principal) -> None:
    token = caller.set_current(principal)
    try:
        with pytest.raises(PermissionDenied):
            PersonalDataApi("analytics", service).Erase(pd.EraseRequest(subject_id="s1"), None)
    finally:
        caller.reset_current(token)


