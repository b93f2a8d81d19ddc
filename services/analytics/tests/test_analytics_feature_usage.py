"""The analyst's only view: distinct users per period, small groups suppressed (N §3.3; R-DATA-3)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from analytics.config import AnalyticsSettings
from analytics.service import AnalyticsService, Point, point
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from servicekit.caller import Principal
from servicekit.errors import InvalidArgument, PermissionDenied

MONDAY = date(2025, 3, 3)


@pytest.mark.rule("R-DATA-3")
@pytest.mark.notice("3.3")
@pytest.mark.parametrize(("users", "shown"), [(9, False), (10, True), (11, True)])
def test_a_group_below_ten_users_is_suppressed(service: AnalyticsService, person: Any, daily: Any,
                                               users: int, shown: bool) -> None:
    daily(MONDAY, users=users, active=40)
    [cell] = service.feature_usage(person(), "tickets.open", "2025-03-03", "2025-03-03", "day")
    if shown:
        assert cell == Point(MONDAY, users, users / 40 * 100, False)
    else:
        assert cell == Point(MONDAY, 0, 0.0, True)


@pytest.mark.rule("R-DATA-3")
@pytest.mark.notice("3.3")
@given(users=st.integers(0, 500), extra=st.integers(0, 500), k=st.integers(5, 50))
def test_no_count_below_the_threshold_is_ever_shown(users: int, extra: int, k: int) -> None:
    cell = point(MONDAY, users, users + extra, k)
    assert cell.suppressed == (users < k)
    if cell.suppressed:
        assert (cell.users, cell.percentage) == (0, 0.0)
    else:
        assert cell.users == users >= k
        assert 0.0 < cell.percentage <= 100.0


@pytest.mark.rule("R-DATA-3")
def test_the_threshold_cannot_be_set_below_five() -> None:
    with pytest.raises(ValidationError):
        AnalyticsSettings(min_group_size=4)
    assert AnalyticsSettings(min_group_size=5).min_group_size == 5
    assert AnalyticsSettings().min_group_size == 10


@pytest.mark.rule("R-DATA-3")
def test_a_week_counts_its_busiest_day_not_the_sum(service: AnalyticsService, person: Any, daily: Any) -> None:
    # The same people return day after day: summing 12 + 15 + 11 would claim 38 distinct users.
    for offset, users in enumerate((12, 15, 11)):
        daily(date(2025, 3, 3 + offset), users=users, active=50)
    [week] = service.feature_usage(person(), "tickets.open", "2025-03-03", "2025-03-09", "week")
    assert week == Point(MONDAY, 15, 30.0, False)
    [month] = service.feature_usage(person(), "tickets.open", "2025-03-01", "2025-03-31", "month")
    assert (month.period, month.users, month.suppressed) == (date(2025, 3, 1), 15, False)


def test_every_period_is_present_and_empty_ones_are_suppressed(service: AnalyticsService, person: Any,
                                                               daily: Any) -> None:
    daily(date(2025, 3, 12), users=20, active=40)
    series = service.feature_usage(person(), "tickets.open", "2025-03-05", "2025-03-20", "week")
    # The first period starts where the range does (a Wednesday), the rest on Mondays.
    assert [p.period for p in series] == [date(2025, 3, 5), date(2025, 3, 10), date(2025, 3, 17)]
    assert [p.suppressed for p in series] == [True, False, True]
    months = service.feature_usage(person(), "tickets.open", "2024-11-15", "2025-02-01", "month")
    assert [p.period for p in months] == [date(2024, 11, 15), date(2024, 12, 1), date(2025, 1, 1), date(2025, 2, 1)]


def test_other_features_and_regions_do_not_count(service: AnalyticsService, person: Any, daily: Any) -> None:
    daily(MONDAY, users=30, active=60, feature="tickets.reply")
    daily(MONDAY, users=30, active=60, region="eu")
    [cell] = service.feature_usage(person(), "tickets.open", "2025-03-03", "2025-03-03", "day")
    assert cell.suppressed


@pytest.mark.rule("R-SEC-1")
@pytest.mark.parametrize("role", ["customer", "agent", "reseller", "dpo", "admin"])
def test_only_analysts_read_usage(service: AnalyticsService, person: Any, role: str) -> None:
    with pytest.raises(PermissionDenied):
        service.feature_usage(person(role), "tickets.open", "2025-03-03", "2025-03-03", "day")


def test_services_do_not_read_usage(service: AnalyticsService) -> None:
    with pytest.raises(PermissionDenied):
        service.feature_usage(Principal("service", "gateway", "service"), "tickets.open", "2025-03-03",
                              "2025-03-03", "day")


@pytest.mark.parametrize(("feature", "first", "last", "granularity"), [
    ("tickets.open", "2025-03-03", "2025-03-03", "year"),
    ("tickets.open", "2025-03-03", "2025-03-03", ""),
    ("", "2025-03-03", "2025-03-03", "day"),
    ("x" * 101, "2025-03-03", "2025-03-03", "day"),
    ("tickets.open", "20250303", "2025-03-03", "day"),
    ("tickets.open", "2025-3-3", "2025-03-03", "day"),
    ("tickets.open", "2025-02-30", "2025-03-03", "day"),
    ("tickets.open", "", "2025-03-03", "day"),
    ("tickets.open", "2025-03-04", "2025-03-03", "day"),   # from after to
    ("tickets.open", "2024-01-01", "2025-01-01", "month"),  # 367 days
])
def test_invalid_queries_are_refused(service: AnalyticsService, person: Any, feature: str, first: str,
                                     last: str, granularity: str) -> None:
    with pytest.raises(InvalidArgument):
        service.feature_usage(person(), feature, first, last, granularity)


def test_a_year_of_366_days_is_allowed(service: AnalyticsService, person: Any) -> None:
    series = service.feature_usage(person(), "tickets.open", "2024-01-01", "2024-12-31", "day")
    assert len(series) == 366 and all(p.suppressed for p in series)
