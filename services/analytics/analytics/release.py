"""What an analyst may see of one period: the cells a query shows, after disclosure control.
Pure functions only.

A query and the roll-up share them: a daily series is read from cells released once, when the
day is rolled up (`released_cells`), and every other series is protected at query time with the
same functions, so both give the same answer for the same cube (a test holds them to it).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from .cube import ANY_FEATURE, Cube, day_cubes
from .disclosure import ALL_REGIONS, NONE, TOTAL, Key, protect
from .models import Cell, ReleasedCell

DIMENSIONS = ("", "product", "org_size_band")
# (value, users, active users, suppressed): one cell of a series; counts are 0 when suppressed
Shown = tuple[str, int, int, bool]


def wanted_keys(active: Cube, row: str, dimension: str) -> list[Key]:
    """The cells a query for one region row and dimension set shows: the total, then each value
    someone was active in."""
    keys: list[Key] = [(NONE, row, TOTAL)]
    if dimension:
        keys += sorted(k for k in active if k[0] == dimension and k[1] == row)
    return keys


def hidden_cells(used: Cube, active: Cube, k: int) -> tuple[set[Key], set[Key]]:
    """(hidden cells of `used`, hidden cells of `active`) for one period: small groups and enough
    others that none can be derived. A share is shown only with its denominator, so a hidden
    denominator hides its cell of `used` too."""
    hidden_active = protect(active, k)
    return protect(used, k, forced=hidden_active), hidden_active


def shown(used: Cube, active: Cube, hidden: set[Key], wanted: list[Key]) -> list[Shown]:
    """The wanted cells of one period, `hidden` ones (see `hidden_cells`) without counts."""
    cells: list[Shown] = []
    for key in wanted:
        users, total = used.get(key, 0), active.get(key, 0)
        if key in hidden or key not in active or total <= 0:
            cells.append((key[2], 0, 0, True))
        else:
            cells.append((key[2], users, total, False))
    return cells


def released_cells(cells: Iterable[Cell], day: date, k: int) -> list[ReleasedCell]:
    """Every cell any daily query can show for `day`: per feature, region row and dimension set.

    Feature "*" rows list the cells of the day with active users as released (for a feature
    nobody used that day, whose cells are then all suppressed).
    """
    cubes = day_cubes(c for c in cells if c[0] == day)
    active = cubes.pop(ANY_FEATURE, {})
    if not active:
        return []  # no one active: every query shows the day as suppressed
    hidden_active = protect(active, k)
    rows = [*sorted({r for _, r, _ in active if r != ALL_REGIONS}), ALL_REGIONS]
    views = [(row, dimension, wanted_keys(active, row, dimension)) for row in rows for dimension in DIMENSIONS]
    released: list[ReleasedCell] = []
    for row, dimension, wanted in views:
        for key in wanted:
            hide = key in hidden_active or key not in active
            n = 0 if hide else active[key]
            released.append((ANY_FEATURE, row, dimension, key[2], n, n, hide))
    for feature, used in sorted(cubes.items()):
        hidden = protect(used, k, forced=hidden_active)  # as hidden_cells, the denominator's part once a day
        for row, dimension, wanted in views:
            released += [(feature, row, dimension, value, users, total, hide)
                         for value, users, total, hide in shown(used, active, hidden, wanted)]
    return released
