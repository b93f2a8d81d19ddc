"""Combining regions' aggregates: a query for several regions is answered from what each region
already shows its own analysts, summed here. Knows nothing of gRPC: peers are a port.

Pseudonymous events never leave their region; only released cells do (`AnalyticsQueries.region_cells`:
suppressed below each region's threshold and protected against differencing inside its own cube).
A combined cell is the sum of the regions' cells, and is suppressed when any region's part is
suppressed (or unknown). So every number a combined answer shows is a sum of numbers each region
already shows on its own: it adds nothing an analyst could subtract to recover a hidden cell
(summing a hidden part with shown ones instead would hand the hidden one out, as
"(uk + eu) − eu"). Re-running complementary suppression over the combined cube would not help:
it would have to show some combined cells whose parts were hidden, and those are the leak.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from servicekit.caller import Principal
from servicekit.errors import DomainError, InvalidArgument
from servicekit.logs import get_logger

from .periods import measure_of, period_starts
from .queries import AnalyticsQueries, ShownCell, Usage, point

log = get_logger(__name__)

ALL = "all"
MAX_REGIONS = 16
_CODE = re.compile(r"^[a-z]{2,8}$")
NOT_A_PEER = "not a configured peer region"


@dataclass(frozen=True)
class RegionAnswer:
    """One region's cells of a series, as that region shows them to its analysts."""

    region: str
    min_group_size: int
    measure: str
    cells: list[ShownCell]


class Peers(Protocol):
    """The other regions' analytics services (ANALYTICS_PEERS)."""

    def regions(self) -> list[str]: ...

    def ask(self, region: str, feature: str, from_date: str, to_date: str, granularity: str,
            dimension: str) -> RegionAnswer: ...


class NoPeers:
    def regions(self) -> list[str]:
        return []

    def ask(self, region: str, feature: str, from_date: str, to_date: str, granularity: str,
            dimension: str) -> RegionAnswer:
        raise LookupError(NOT_A_PEER)


def selection(region: str, own: str, peers: Collection[str]) -> list[str] | None:
    """The regions a query combines, in order; None when it is answered from this database alone
    (this region, "all" without peers, or a single code that is not a peer: what is held here)."""
    if "," in region:
        codes = [c.strip() for c in region.split(",") if c.strip()]
        if not codes or len(codes) > MAX_REGIONS or not all(_CODE.match(c) and c != ALL for c in codes):
            raise InvalidArgument(f"region must be empty, all, a region code or a list of at most {MAX_REGIONS} "
                                  "region codes separated by commas", "invalid_region")
        return list(dict.fromkeys(codes))
    if region == ALL:
        return [own, *sorted(p for p in peers if p != own)] if peers else None
    if region and region != own and region in peers:
        return [region]
    return None


def combine(answers: Sequence[RegionAnswer]) -> list[ShownCell]:
    """The sum of the regions' cells, per period and value; suppressed where any region's part is
    suppressed, or absent from a region whose period total is suppressed (its count unknown).
    A value absent from a region whose total is shown had no active user there: it counts 0."""
    periods: list[date] = []
    per_region: list[dict[date, dict[str, tuple[int, int, bool]]]] = []
    for answer in answers:
        cells: dict[date, dict[str, tuple[int, int, bool]]] = {}
        for day, value, users, active, hidden in answer.cells:
            if day not in cells and day not in periods:
                periods.append(day)
            cells.setdefault(day, {})[value] = (users, active, hidden or active <= 0)
        per_region.append(cells)
    periods.sort()
    combined: list[ShownCell] = []
    for day in periods:
        values = sorted({v for cells in per_region for v in cells.get(day, {})})  # "" (the total) first
        for value in values:
            users = active = 0
            hidden = False
            for cells in per_region:
                period = cells.get(day, {})
                part = period.get(value)
                if part is None:
                    total = period.get("")
                    hidden = hidden or total is None or total[2]
                    continue
                users, active, hidden = users + part[0], active + part[1], hidden or part[2]
            combined.append((day, value, 0, 0, True) if hidden else (day, value, users, active, False))
    return combined


class RegionalQueries:
    """Feature usage over one region or several: this region's from its own database, the others'
    asked of their analytics services in parallel, then combined. A peer that does not answer is
    named in the answer (`not_reporting`), never silently left out."""

    def __init__(self, queries: AnalyticsQueries, peers: Peers | None = None, workers: int = 8) -> None:
        self.queries = queries
        self.peers: Peers = peers or NoPeers()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="analytics-peers")

    def feature_usage(self, principal: Principal, feature: str, from_date: str, to_date: str,
                      granularity: str, dimension: str = "", region: str = "",
                      epsilon: float = 0.0, request_id: str = "") -> Usage:
        own = self.queries.region
        chosen = selection(region, own, self.peers.regions())
        if chosen is None:
            return self.queries.feature_usage(principal, feature, from_date, to_date, granularity, dimension,
                                              region, epsilon, request_id)
        self.queries.require_analyst(principal)
        if epsilon:
            # The budget is per analyst per region; a noisy combined answer would spend others' unseen.
            raise InvalidArgument("differential privacy applies to one region's answer: ask without epsilon, "
                                  "or for one region", "epsilon_one_region")
        first, last = self.queries.validate(feature, from_date, to_date, granularity, dimension)
        known = set(self.peers.regions())
        asks: dict[str, Callable[[], RegionAnswer]] = {}
        not_reporting: dict[str, str] = {}
        for code in chosen:
            if code == own:
                asks[code] = lambda: RegionAnswer(own, self.queries.k, measure_of(granularity),
                                                  self.queries.region_cells(feature, from_date, to_date,
                                                                            granularity, dimension))
            elif code in known:
                asks[code] = (lambda c: lambda: self.peers.ask(c, feature, from_date, to_date, granularity,
                                                               dimension))(code)
            else:
                not_reporting[code] = NOT_A_PEER
        futures = {code: self._pool.submit(ask) for code, ask in asks.items()}
        answers: list[RegionAnswer] = []
        for code, future in futures.items():
            try:
                answers.append(future.result())
            except Exception as exc:
                not_reporting[code] = _why(exc)
                log.warning("a peer region did not answer", region=code, error=type(exc).__name__)
        cells = combine(answers) or [(start, "", 0, 0, True) for start in period_starts(first, last, granularity)]
        series = [point(d, u, a, h, v) for d, v, u, a, h in cells]
        budget = self.queries.budget(principal)
        return Usage(series, dimension, 0.0, max(0.0, budget.total - budget.spent), measure_of(granularity),
                     regions=[a.region for a in answers], not_reporting=not_reporting,
                     min_group_size=max([a.min_group_size for a in answers], default=self.queries.k))


def _why(exc: BaseException) -> str:
    if isinstance(exc, DomainError):
        return exc.message
    text = str(exc)
    return text if text and len(text) <= 200 else type(exc).__name__
