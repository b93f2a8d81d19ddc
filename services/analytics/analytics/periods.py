"""Calendar periods of a series (day, ISO week from Monday, month). Pure functions only."""

from __future__ import annotations

from datetime import date, timedelta

GRANULARITIES = ("day", "week", "month")
# What a period's figure counts. Pseudonym keys rotate daily, so a person is a new pseudonym every
# day and distinct users over a week or a month cannot be counted: a week or a month reports its
# busiest day's distinct users (cube.py), a lower bound of its distinct users.
DAILY_USERS = "daily_users"
PEAK_DAILY_USERS = "peak_daily_users"


def measure_of(granularity: str) -> str:
    return DAILY_USERS if granularity == "day" else PEAK_DAILY_USERS


def _calendar_start(day: date, granularity: str) -> date:
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    return day


def _next_start(day: date, granularity: str) -> date:
    if granularity == "week":
        return _calendar_start(day, "week") + timedelta(days=7)
    if granularity == "month":
        return date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return day + timedelta(days=1)


def period_of(day: date, granularity: str, first: date) -> date:
    """The start of `day`'s period, clipped to `first`.

    A range that begins mid-week or mid-month starts its first period on `first`: the label then
    says which days the figure really covers.
    """
    return max(_calendar_start(day, granularity), first)


def period_starts(first: date, last: date, granularity: str) -> list[date]:
    """Every period from `first` to `last` inclusive, so an empty period shows as suppressed
    rather than missing (a gap would itself say "fewer than the threshold")."""
    if granularity == "day":
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]
    starts: list[date] = []
    current = first
    while current <= last:
        starts.append(current)
        current = _next_start(current, granularity)
    return starts
