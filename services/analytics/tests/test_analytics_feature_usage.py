"""The analyst's only view: distinct users per period and fixed dimension, small groups suppressed,
complements hidden so no subtraction reveals a person (N §3.3; R-DATA-3)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from analytics.config import AnalyticsSettings
from analytics.models import Repository, UsageDaily
from analytics.queries import AnalyticsQueries, Point, point
from analytics.service import AnalyticsService, release_day
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from servicekit.caller import Principal
from servicekit.db import UnitOfWorkFactory
from servicekit.errors import InvalidArgument, PermissionDenied, Throttled
from servicekit.testing import solve_by_differences
from sqlalchemy import delete

MONDAY = date(2025, 3, 3)


def usage(queries: AnalyticsQueries, person: Any, first: str = "2025-03-03", last: str = "2025-03-03",
          granularity: str = "day", **kw: Any) -> list[Point]:
    return queries.feature_usage(person(), "tickets.open", first, last, granularity, **kw).series


@pytest.mark.rule("R-DATA-3")
@pytest.mark.notice("3.3")
@pytest.mark.parametrize(("users", "shown"), [(9, False), (10, True), (11, True)])
def test_a_group_below_ten_users_is_suppressed(queries: AnalyticsQueries, person: Any, daily: Any,
                                               users: int, shown: bool) -> None:
    daily(MONDAY, users=users)
    daily(MONDAY, users=40, feature="*")
    [cell] = usage(queries, person)
    assert cell == (Point(MONDAY, users, users / 40 * 100, False) if shown else Point(MONDAY, 0, 0.0, True))


@pytest.mark.rule("R-DATA-3")
@pytest.mark.notice("3.3")
@given(users=st.integers(0, 500), extra=st.integers(0, 500), hidden=st.booleans())
def test_no_suppressed_cell_carries_a_count(users: int, extra: int, hidden: bool) -> None:
    cell = point(MONDAY, users, users + extra, hidden)
    assert cell.suppressed == (hidden or users + extra == 0)
    if cell.suppressed:
        assert (cell.users, cell.percentage) == (0, 0.0)
    else:
        assert cell.users == users and 0.0 <= cell.percentage <= 100.0


@pytest.mark.rule("R-DATA-3")
def test_the_threshold_cannot_be_set_below_five() -> None:
    with pytest.raises(ValidationError):
        AnalyticsSettings(min_group_size=4)
    assert AnalyticsSettings(min_group_size=5).min_group_size == 5
    assert AnalyticsSettings().min_group_size == 10


@pytest.mark.rule("R-DATA-3")
def test_a_week_counts_its_busiest_day_not_the_sum(queries: AnalyticsQueries, person: Any, daily: Any) -> None:
    # The same people return day after day: summing 12 + 15 + 11 would claim 38 distinct users.
    for offset, users in enumerate((12, 15, 11)):
        daily(date(2025, 3, 3 + offset), users=users)
        daily(date(2025, 3, 3 + offset), users=50, feature="*")
    [week] = usage(queries, person, "2025-03-03", "2025-03-09", "week")
    assert week == Point(MONDAY, 15, 30.0, False)
    [month] = usage(queries, person, "2025-03-01", "2025-03-31", "month")
    assert (month.period, month.users, month.suppressed) == (date(2025, 3, 1), 15, False)
    # And the answer says what it counts: the busiest day's users, not distinct users over the week.
    analyst = person()
    for granularity, measure in (("day", "daily_users"), ("week", "peak_daily_users"), ("month", "peak_daily_users")):
        answer = queries.feature_usage(analyst, "tickets.open", "2025-03-03", "2025-03-09", granularity)
        assert answer.measure == measure
        noisy_answer = queries.feature_usage(analyst, "tickets.open", "2025-03-03", "2025-03-09", granularity,
                                             epsilon=0.5)
        assert noisy_answer.measure == measure


def test_every_period_is_present_and_empty_ones_are_suppressed(queries: AnalyticsQueries, person: Any,
                                                               daily: Any) -> None:
    daily(date(2025, 3, 12), users=20)
    daily(date(2025, 3, 12), users=40, feature="*")
    series = usage(queries, person, "2025-03-05", "2025-03-20", "week")
    assert [p.period for p in series] == [date(2025, 3, 5), date(2025, 3, 10), date(2025, 3, 17)]
    assert [p.suppressed for p in series] == [True, False, True]


def band_day(daily: Any, bands: dict[str, int], active: dict[str, int], region: str = "uk") -> None:
    """One day of size-band cells for tickets.open and for all features (*), with the totals."""
    daily(MONDAY, users=sum(bands.values()), region=region)
    daily(MONDAY, users=sum(active.values()), feature="*", region=region)
    for band, users in bands.items():
        daily(MONDAY, users=users, dimension="org_size_band", value=band, region=region)
    for band, users in active.items():
        daily(MONDAY, users=users, feature="*", dimension="org_size_band", value=band, region=region)


@pytest.mark.rule("R-DATA-3")
@pytest.mark.notice("3.3")
def test_a_breakdown_by_size_band_shows_large_groups_with_their_share(queries: AnalyticsQueries, person: Any,
                                                                       daily: Any) -> None:
    band_day(daily, {"1-9": 12, "250+": 20}, {"1-9": 24, "250+": 40})
    series = usage(queries, person, dimension="org_size_band")
    assert [(p.value, p.users, p.percentage, p.suppressed) for p in series] == [
        ("", 32, 50.0, False), ("1-9", 12, 50.0, False), ("250+", 20, 50.0, False)]


# --- differencing -------------------------------------------------------------------------------
# The target: the one customer of a 1–9 organisation who used the feature on Monday.
BANDS = {"1-9": 1, "10-49": 14, "250+": 20}
ACTIVE = {"1-9": 3, "10-49": 30, "250+": 40}


def naive_count(rows: list[tuple[str, str]], where: Callable[[str], bool]) -> int:
    """The naive service: any filter the analyst likes, suppression of small results only."""
    n = len({who for who, band in rows if where(band)})
    return n if n >= 10 else -1  # -1: "suppressed"


@pytest.mark.rule("R-DATA-3")
@pytest.mark.notice("3.3")
def test_a_differencing_attack_works_against_a_naive_service() -> None:
    rows = [(f"{band}-{i}", band) for band, n in BANDS.items() for i in range(n)]
    everyone = naive_count(rows, lambda band: True)
    all_but_small = naive_count(rows, lambda band: band != "1-9")
    assert everyone - all_but_small == 1  # the target used the feature: their behaviour is out


@pytest.mark.rule("R-DATA-3")
@pytest.mark.notice("3.3")
@pytest.mark.parametrize("second_region", [False, True])
def test_the_same_attack_fails_against_ours(queries: AnalyticsQueries, person: Any, daily: Any,
                                            second_region: bool) -> None:
    band_day(daily, BANDS, ACTIVE)
    if second_region:
        band_day(daily, {"1-9": 11, "10-49": 12}, {"1-9": 20, "10-49": 20}, region="eu")
    known: dict[tuple[str, str], int] = {}
    # Every question the API allows: each region and all, each fixed dimension or none.
    for region in ("", "eu", "all") if second_region else ("", "all"):
        for dimension in ("", "org_size_band", "product"):
            for p in usage(queries, person, dimension=dimension, region=region):
                if not p.suppressed:
                    known[(region or "uk", p.value)] = p.users
    regions = ["uk", "eu"] if second_region else ["uk"]
    bands = sorted(set(BANDS) | ({"1-9", "10-49"} if second_region else set()))
    relations = [((r, ""), [(r, b) for b in bands]) for r in [*regions, "all"]]
    relations += [(("all", b), [(r, b) for r in regions]) for b in [*bands, ""]]
    derived = solve_by_differences(known, relations)
    assert ("uk", "1-9") not in derived
    # And what is shown is exact, not noise: the protection costs cells, not truth.
    assert all(derived[c] == v for c, v in known.items())


@pytest.mark.rule("R-DATA-3")
@given(cells=st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 40), min_size=1),
       other=st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 40)))
def test_no_small_cell_can_ever_be_derived_by_subtraction(cells: dict[str, int], other: dict[str, int]) -> None:
    from analytics.disclosure import ALL_REGIONS, protect

    cube: dict[tuple[str, str, str], int] = {}
    for region, values in (("uk", cells), ("eu", other)):
        for v, n in values.items():
            cube[("band", region, v)] = n
        if values:
            cube[("", region, "")] = sum(values.values())
    for v in set(cells) | set(other):
        cube[("band", ALL_REGIONS, v)] = cells.get(v, 0) + other.get(v, 0)
    cube[("", ALL_REGIONS, "")] = sum(cells.values()) + sum(other.values())
    hidden = protect(cube, 10)
    known = {(k[1], k[2]): n for k, n in cube.items() if k not in hidden}
    regions = [r for r, vals in (("uk", cells), ("eu", other)) if vals]
    values = sorted(set(cells) | set(other))
    relations = [((r, ""), [(r, v) for v in values if ("band", r, v) in cube]) for r in [*regions, ALL_REGIONS]]
    relations += [((ALL_REGIONS, v), [(r, v) for r in regions if ("band", r, v) in cube]) for v in values]
    relations += [((ALL_REGIONS, ""), [(r, "") for r in regions])]
    derived = solve_by_differences(known, relations)
    for key, n in cube.items():
        if n < 10:
            assert (key[1], key[2]) not in derived


# --- who may ask, and what -------------------------------------------------------------------------
@pytest.mark.rule("R-SEC-1", "R-DATA-3")
@pytest.mark.parametrize("role", ["customer", "agent", "reseller", "dpo", "admin"])
def test_only_analysts_read_usage(queries: AnalyticsQueries, person: Any, role: str) -> None:
    with pytest.raises(PermissionDenied):
        queries.feature_usage(person(role), "tickets.open", "2025-03-03", "2025-03-03", "day")
    with pytest.raises(PermissionDenied):
        queries.features(person(role))


def test_services_do_not_read_usage(queries: AnalyticsQueries) -> None:
    with pytest.raises(PermissionDenied):
        queries.feature_usage(Principal("service", "gateway", "service"), "tickets.open", "2025-03-03",
                              "2025-03-03", "day")


@pytest.mark.parametrize(("feature", "first", "last", "granularity", "extra"), [
    ("tickets.open", "2025-03-03", "2025-03-03", "year", {}),
    ("", "2025-03-03", "2025-03-03", "day", {}),
    ("*", "2025-03-03", "2025-03-03", "day", {}),
    ("x" * 101, "2025-03-03", "2025-03-03", "day", {}),
    ("tickets.open", "20250303", "2025-03-03", "day", {}),
    ("tickets.open", "2025-02-30", "2025-03-03", "day", {}),
    ("tickets.open", "2025-03-04", "2025-03-03", "day", {}),
    ("tickets.open", "2024-01-01", "2025-01-01", "month", {}),
    ("tickets.open", "2025-03-03", "2025-03-03", "day", {"dimension": "company"}),
    ("tickets.open", "2025-03-03", "2025-03-03", "day", {"region": "UK!"}),
    ("tickets.open", "2025-03-03", "2025-03-03", "day", {"epsilon": -1.0}),
    ("tickets.open", "2025-03-03", "2025-03-03", "day", {"epsilon": 5.0}),
])
def test_invalid_queries_are_refused(queries: AnalyticsQueries, person: Any, feature: str, first: str,
                                     last: str, granularity: str, extra: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        queries.feature_usage(person(), feature, first, last, granularity, **extra)


def test_a_year_of_366_days_is_allowed(queries: AnalyticsQueries, person: Any) -> None:
    series = usage(queries, person, "2024-01-01", "2024-12-31")
    assert len(series) == 366 and all(p.suppressed for p in series)


# --- differential privacy ----------------------------------------------------------------------------
@pytest.mark.rule("R-DATA-3")
@pytest.mark.notice("3.3")
def test_noisy_answers_spend_the_analysts_budget_until_it_is_refused(queries: AnalyticsQueries, person: Any,
                                                                     daily: Any) -> None:
    band_day(daily, {"1-9": 400, "250+": 600}, {"1-9": 800, "250+": 1200})
    analyst = person(subject_id="analyst-1")
    exact = queries.feature_usage(analyst, "tickets.open", "2025-03-03", "2025-03-03", "day", "org_size_band")
    noisy = [queries.feature_usage(analyst, "tickets.open", "2025-03-03", "2025-03-03", "day", "org_size_band",
                                   epsilon=1.0) for _ in range(3)]
    assert [n.budget_remaining for n in noisy] == [2.0, 1.0, 0.0] and exact.epsilon_spent == 0.0
    # Noise of scale 4/1 on counts in the hundreds: close to the truth, yet not the exact count every time.
    values = [[p.users for p in n.series] for n in noisy]
    assert all(abs(v - e.users) < 80 for row in values for v, e in zip(row, exact.series, strict=True))
    assert any(row != [p.users for p in exact.series] for row in values)
    with pytest.raises(Throttled):
        queries.feature_usage(analyst, "tickets.open", "2025-03-03", "2025-03-03", "day", epsilon=0.5)
    assert queries.budget(analyst).spent == pytest.approx(3.0)
    # Another analyst has a budget of their own; exact answers cost nothing.
    other = person(subject_id="analyst-2")
    assert queries.feature_usage(other, "tickets.open", "2025-03-03", "2025-03-03", "day",
                                 epsilon=0.5).budget_remaining == pytest.approx(2.5)


# --- released day cells --------------------------------------------------------------------------
DAY_CELLS = st.dictionaries(
    st.tuples(st.sampled_from(["uk", "eu"]), st.sampled_from(["tickets.open", "tickets.reply", "*"]),
              st.sampled_from([("all", ""), ("org_size_band", "1-9"), ("org_size_band", "250+"),
                               ("product", "billing"), ("product", "none")])),
    st.integers(0, 40), max_size=30)


@pytest.mark.rule("R-DATA-3")
@pytest.mark.notice("3.3")
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cells=DAY_CELLS)
def test_a_daily_series_read_from_released_cells_is_the_one_protected_at_query_time(
        queries: AnalyticsQueries, person: Any, uow: UnitOfWorkFactory[Repository],
        cells: dict[tuple[str, str, tuple[str, str]], int]) -> None:
    with uow() as u:
        u.session.execute(delete(UsageDaily))
        u.session.add_all([UsageDaily(day=MONDAY, region=r, feature=f, dimension=d, value=v, users=n)
                           for (r, f, (d, v)), n in cells.items()])
        u.session.flush()
        release_day(u.repo, MONDAY, queries.k)
        u.commit()
    for region in ("", "eu", "all", "fr"):
        for dimension in ("", "org_size_band", "product"):
            for feature in ("tickets.open", "tickets.reply", "tickets.close"):
                day = queries.feature_usage(person(), feature, "2025-03-03", "2025-03-03", "day", dimension, region)
                # A week that starts and ends on Monday is protected when asked, from the raw counts.
                week = queries.feature_usage(person(), feature, "2025-03-03", "2025-03-03", "week", dimension,
                                             region)
                assert day.series == week.series, (region, dimension, feature)


@pytest.mark.rule("R-DATA-3")
def test_cells_released_under_another_threshold_are_not_shown_and_are_redone(
        uow: UnitOfWorkFactory[Repository], person: Any, daily: Any, service: AnalyticsService,
        clock: Any) -> None:
    daily(MONDAY, users=11)  # released with 10: shown
    daily(MONDAY, users=40, feature="*")
    stricter = AnalyticsQueries(uow, "uk", min_group_size=12, budget_epsilon=3.0, max_epsilon=1.0,
                                ledger_key=b"k" * 32, clock=clock)
    assert usage(stricter, person) == [Point(MONDAY, 0, 0.0, True)]
    service.min_group_size = 12
    assert service.release_stale_days() == [MONDAY]
    with uow() as u:
        assert {r[5] for r in u.repo.released("tickets.open", "uk", "", MONDAY, MONDAY)} == {12}
    assert usage(stricter, person) == [Point(MONDAY, 0, 0.0, True)]
    assert service.release_stale_days() == []


# --- a retried noisy query ---------------------------------------------------------------------------
def noisy(queries: AnalyticsQueries, analyst: Principal, request_id: str, epsilon: float = 1.0,
          dimension: str = "org_size_band") -> Any:
    return queries.feature_usage(analyst, "tickets.open", "2025-03-03", "2025-03-03", "day", dimension,
                                 epsilon=epsilon, request_id=request_id)


@pytest.mark.rule("R-DATA-3")
@pytest.mark.notice("3.3")
def test_a_retried_noisy_query_gets_its_first_answer_and_is_charged_once(
        queries: AnalyticsQueries, person: Any, daily: Any) -> None:
    band_day(daily, {"1-9": 400, "250+": 600}, {"1-9": 800, "250+": 1200})
    analyst = person(subject_id="analyst-r")
    first = noisy(queries, analyst, "req-1")
    again = noisy(queries, analyst, "req-1")  # the gateway's retry after a lost reply
    assert again.series == first.series and again.budget_remaining == first.budget_remaining == 2.0
    assert queries.budget(analyst).spent == pytest.approx(1.0)
    # Another analyst's id is theirs alone; and every new id is a new query, charged.
    assert noisy(queries, person(subject_id="analyst-s"), "req-1").budget_remaining == 2.0
    assert noisy(queries, analyst, "req-2").budget_remaining == pytest.approx(1.0)
    assert noisy(queries, analyst, "").budget_remaining == pytest.approx(0.0)
    # With the budget spent, an answered request is still answered the same (it costs nothing more);
    # a new one is refused.
    assert noisy(queries, analyst, "req-1").series == first.series
    with pytest.raises(Throttled):
        noisy(queries, analyst, "req-3")
    assert queries.budget(analyst).spent == pytest.approx(3.0)


@pytest.mark.rule("R-DATA-3")
def test_a_request_id_names_one_question(queries: AnalyticsQueries, person: Any, daily: Any) -> None:
    band_day(daily, {"1-9": 400, "250+": 600}, {"1-9": 800, "250+": 1200})
    analyst = person(subject_id="analyst-q")
    noisy(queries, analyst, "req-1")
    with pytest.raises(InvalidArgument):
        noisy(queries, analyst, "req-1", dimension="")  # another question under the same id
    with pytest.raises(InvalidArgument):
        noisy(queries, analyst, "req-1", epsilon=0.5)
    with pytest.raises(InvalidArgument):
        noisy(queries, analyst, "x" * 65)
    assert queries.budget(analyst).spent == pytest.approx(1.0)
