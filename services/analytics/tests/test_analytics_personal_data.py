"""Analytics' part of the PersonalData contract (N §13.1; R-ACCESS-1, R-ERASE-1, R-RESTRICT-1)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from analytics.service import KEY_MEMORY, NO_PERSONAL_DATA, AnalyticsService, Use
from kaseum.privacy.v1 import personal_data_pb2 as pd
from servicekit import caller
from servicekit.bus import Bus
from servicekit.caller import Principal
from servicekit.errors import PermissionDenied
from servicekit.personal_data import PersonalDataApi, joined
from servicekit.pseudonyms import Exclusions, PseudonymKeys, exclusions_bucket, pseudonym
from servicekit.testing import Clock

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


@pytest.mark.rule("R-ERASE-1")
@pytest.mark.notice("13.1.3")
def test_erase_deletes_the_subjects_events_of_both_live_days_and_no_one_elses(
        api: PersonalDataApi, service: AnalyticsService, keys: PseudonymKeys) -> None:
    yesterday = TODAY - timedelta(days=1)
    uses = []
    for day in (yesterday, TODAY):
        key = keys.key(day, create=True)
        assert key is not None
        uses += [Use(uuid.uuid4().hex, day, service.region, "tickets.open", pseudonym(key, who))
                 for who in ("s1", "s2")]
    service.ingest(uses)
    assert api.Erase(pd.EraseRequest(subject_id="s1"), None).erased_rows == 2
    assert api.Erase(pd.EraseRequest(subject_id="s2"), None).erased_rows == 2
    assert api.Erase(pd.EraseRequest(subject_id="s1"), None).erased_rows == 0


@pytest.mark.rule("R-DATA-3")
@pytest.mark.notice("3.3")
def test_a_key_read_before_its_days_roll_up_is_not_used_from_memory_after_it(
        api: PersonalDataApi, service: AnalyticsService, keys: PseudonymKeys, clock: Clock) -> None:
    yesterday = TODAY - timedelta(days=1)
    key = keys.key(yesterday, create=True)
    assert key is not None
    late = Use(uuid.uuid4().hex, yesterday, service.region, "tickets.open", pseudonym(key, "s1"))
    clock.now = datetime(2025, 3, 10, 0, 59, 30, tzinfo=UTC)  # yesterday is not due before 01:00 (the grace)
    assert api.Erase(pd.EraseRequest(subject_id="s1"), None).erased_rows == 0  # its key is read now
    clock.advance(seconds=40)  # within KEY_MEMORY of that read, but yesterday is due
    assert service.rollup_finished_days() == [] and keys.key(yesterday) is None
    # An event of yesterday arriving late is kept for the next roll-up; yesterday is still a live day
    # to an erasure, but its pseudonym can no longer be recomputed, from the bucket or from memory.
    assert service.ingest([late]) == 1
    assert api.Erase(pd.EraseRequest(subject_id="s1"), None).erased_rows == 0
    assert service.rollup_finished_days() == [yesterday]


class CountedKeys:
    """The real keys, counting the reads that reach the bucket."""

    def __init__(self, keys: PseudonymKeys) -> None:
        self.inner, self.reads = keys, Counter[date]()

    def key(self, day: date, create: bool = False) -> bytes | None:
        self.reads[day] += 1
        return self.inner.key(day, create)

    def destroy_through(self, last: date, days_back: int = 7) -> list[date]:
        return self.inner.destroy_through(last, days_back)


@pytest.mark.rule("R-DATA-3")
def test_keys_are_read_from_the_bucket_once_a_key_memory_and_a_destroyed_ones_absence_once(
        service: AnalyticsService, keys: PseudonymKeys, exclusions: Exclusions, clock: Clock) -> None:
    yesterday = TODAY - timedelta(days=1)
    counted = CountedKeys(keys)
    assert keys.key(TODAY, create=True) is not None  # yesterday has no key: it is 12:00, due and rolled up
    erasing = AnalyticsService(service.uow, service.region, counted, exclusions, clock=clock)
    for n in range(3):
        erasing.erase(f"s{n}")
    assert counted.reads == {TODAY: 1, yesterday: 1}
    clock.advance(seconds=KEY_MEMORY.total_seconds() + 1)
    erasing.erase("s9")
    assert counted.reads == {TODAY: 2, yesterday: 1}


@pytest.mark.rule("R-ERASE-1")
@pytest.mark.notice("13.1.3")
def test_an_erased_account_leaves_nothing_named_after_it_in_the_exclusion_bucket(
        service: AnalyticsService, exclusions: Exclusions, bus: Bus, region: str) -> None:
    exclusions.set("s2", "objected", True)  # the bucket exists, and holds someone else
    service.account_erased("s1")
    bucket = exclusions_bucket(region)

    async def stored(subject: str) -> int:
        assert bus.js is not None
        info = await bus.js.stream_info(f"KV_{bucket}", subjects_filter=f"$KV.{bucket}.*.{subject}")
        return len(info.state.subjects or {})

    assert asyncio.run_coroutine_threadsafe(stored("s1"), bus.loop).result(5) == 0
    service.account_erased("s2")
    assert exclusions.reasons("s2") == []
    # Nor one that was: its entry goes with every message of it, no purge marker naming it left behind.
    assert asyncio.run_coroutine_threadsafe(stored("s2"), bus.loop).result(5) == 0


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


