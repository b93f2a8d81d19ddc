"""Statistical disclosure control for one period's cube of counts. Pure functions only.

The cube holds, for one period, distinct users per region and per value of each fixed
dimension, with margins: the region's total, each value's total over regions, and the grand
total. Every query any analyst can make (a dimension or none, a region or all) reads its cells
from this one cube, so two queries can only be subtracted along its additive relations:
a row (a region's values and its total) or a column (a value's regions and its total).

Primary suppression hides every cell below the minimum group size. Complementary suppression
then makes sure no hidden cell can be recovered by subtraction: in every relation whose total
either nothing is hidden or at least two of its cells are (one equation cannot be solved for
two unknowns), and when its total is shown the hidden parts together hold at least the minimum
group size (so the difference reveals a group, never a person). It hides the smallest shown
part of a relation until that holds, or, when no part is left to hide, the relation's total;
and repeats until every relation holds. This is the published
"at least two suppressions per relation" rule (Hundepool et al., Statistical Disclosure
Control, 2012, ch. 7), with the sum condition added for protection intervals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

ALL_REGIONS = "all"
TOTAL = ""  # the value of a total cell
NONE = ""   # the dimension of a region's (or the grand) total

# (dimension, region, value): ("", r, "") a region's total, ("", "all", "") the grand total,
# (d, r, v) a value of dimension d in region r, (d, "all", v) that value over every region.
Key = tuple[str, str, str]
Relation = tuple[Key, list[Key]]  # (total, its parts)


def relations(keys: Iterable[Key]) -> list[Relation]:
    """The additive relations among the cube's cells (parts may be missing: they count as absent)."""
    present = set(keys)
    regions = sorted({r for _, r, _ in present if r != ALL_REGIONS})
    dimensions = sorted({d for d, _, _ in present if d != NONE})
    found: list[Relation] = [((NONE, ALL_REGIONS, TOTAL), [(NONE, r, TOTAL) for r in regions])]
    for d in dimensions:
        values = sorted({v for dd, _, v in present if dd == d})
        for r in [*regions, ALL_REGIONS]:
            found.append(((NONE, r, TOTAL), [(d, r, v) for v in values]))
        for v in values:
            found.append(((d, ALL_REGIONS, v), [(d, r, v) for r in regions]))
    return [(total, [p for p in parts if p in present]) for total, parts in found]


def protect(cube: Mapping[Key, int], k: int, forced: Iterable[Key] = ()) -> set[Key]:
    """The cells to hide: those below `k`, those in `forced`, and enough others that none of them
    can be derived from what is shown."""
    hidden = {key for key, users in cube.items() if users < k} | (set(forced) & set(cube))
    links = [(total, parts) for total, parts in relations(cube) if total in cube and parts]
    while True:
        grew = False
        for total, parts in links:
            while _exposed(cube, k, hidden, total, parts):
                shown = [p for p in parts if p not in hidden]
                if shown:
                    hidden.add(min(shown, key=lambda p: (cube[p], p)))
                elif total not in hidden:
                    # Hiding every part was not enough: the total would give them away.
                    hidden.add(total)
                else:
                    break
                grew = True
        if not grew:
            return hidden


def _exposed(cube: Mapping[Key, int], k: int, hidden: set[Key], total: Key, parts: list[Key]) -> bool:
    """Whether a hidden cell of this relation could be solved from it: one unknown alone, or
    hidden parts under a shown total that add up to a small group."""
    secret = [p for p in parts if p in hidden]
    unknowns = len(secret) + (total in hidden)
    if unknowns == 0:
        return False
    if unknowns < 2:
        return True
    return total not in hidden and sum(cube[p] for p in secret) < k
