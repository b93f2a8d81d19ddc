"""From stored daily cells to one cube of counts per period. Pure functions only.

A day's cube has, per region, its total and its cells per value of each dimension, plus the
same summed over regions (distinct users of different regions are different people: a subject
has one home region). A week's or month's cube takes each cell's busiest day: with daily keys
the same person is a new pseudonym every day, so summing days would count a returning user
once per day (an over-count that could lift a small group over the threshold); the maximum is
a lower bound that never does. Answers say so: their measure is "peak_daily_users" (periods.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from .disclosure import ALL_REGIONS, NONE, TOTAL, Key
from .models import Cell
from .periods import period_of

Cube = dict[Key, int]
ANY_FEATURE = "*"  # the feature of active-user cells (the denominators)


def key_of(region: str, dimension: str, value: str) -> Key:
    return (NONE, region, TOTAL) if dimension == "all" else (dimension, region, value)


def add_cell(cube: Cube, region: str, dimension: str, value: str, users: int) -> None:
    """Count a stored cell in its region's place and in the margin over regions."""
    key = key_of(region, dimension, value)
    cube[key] = cube.get(key, 0) + users
    margin = key_of(ALL_REGIONS, dimension, value)
    cube[margin] = cube.get(margin, 0) + users


def day_cubes(cells: Iterable[Cell]) -> dict[str, Cube]:
    """One day's cube per feature ("*": active users); a feature's cube has a count (maybe 0) for
    every cell where someone was active, as in `period_cubes`."""
    cubes: dict[str, Cube] = {}
    for _, region, f, dimension, value, users in cells:
        add_cell(cubes.setdefault(f, {}), region, dimension, value, users)
    active = cubes.get(ANY_FEATURE, {})
    for f, cube in cubes.items():
        if f != ANY_FEATURE:
            for key in active:
                cube.setdefault(key, 0)
    return cubes


def period_cubes(cells: Iterable[Cell], feature: str, granularity: str, first: date
                 ) -> tuple[dict[date, Cube], dict[date, Cube]]:
    """(users of `feature`, active users) per period start, from the cells of `feature` and "*"."""
    days: dict[tuple[str, date], Cube] = {}
    for day, region, f, dimension, value, users in cells:
        add_cell(days.setdefault((f, day), {}), region, dimension, value, users)
    used: dict[date, Cube] = {}
    active: dict[date, Cube] = {}
    for (f, day), cube in days.items():
        target = used if f == feature else active
        period = target.setdefault(period_of(day, granularity, first), {})
        for key, users in cube.items():
            period[key] = max(period.get(key, 0), users)
    # A cell exists where someone was active; there, no use is a count of 0, not an absence.
    for start, denominators in active.items():
        numerators = used.setdefault(start, {})
        for key in denominators:
            numerators.setdefault(key, 0)
    return used, active
