"""The statutory clock: one calendar month, clipped to the month's last day (R-RIGHTS-2)."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rights.deadlines import due_date

pytestmark = pytest.mark.rule("R-RIGHTS-2")


@pytest.mark.parametrize(
    ("received", "due"),
    [
        ((2025, 1, 31), (2025, 2, 28)),  # no 31 February: the last day of February
        ((2024, 1, 31), (2024, 2, 29)),  # leap year
        ((2024, 1, 29), (2024, 2, 29)),
        ((2024, 2, 29), (2024, 3, 29)),  # from the leap day: the corresponding date
        ((2025, 4, 30), (2025, 5, 30)),  # not the end of May: the corresponding date exists
        ((2025, 3, 31), (2025, 4, 30)),
        ((2025, 12, 15), (2026, 1, 15)),  # across the year end
        ((2025, 8, 31), (2025, 9, 30)),
    ],
)
def test_due_date_is_the_corresponding_date_one_month_later(received: tuple[int, int, int],
                                                            due: tuple[int, int, int]) -> None:
    assert due_date(datetime(*received, 14, 5, tzinfo=UTC)) == datetime(*due, 14, 5, tzinfo=UTC)


@given(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2200, 12, 31), timezones=st.just(UTC)))
def test_due_date_is_in_the_next_month_on_the_same_or_last_day(received: datetime) -> None:
    due = due_date(received)
    year, month = (received.year + 1, 1) if received.month == 12 else (received.year, received.month + 1)
    assert (due.year, due.month) == (year, month)
    assert due.day == min(received.day, calendar.monthrange(year, month)[1])
    assert due.timetz() == received.timetz()
    assert 28 <= (due - received).days <= 31
