"""The analyst's questions: feature usage over periods and fixed dimensions, nothing finer.

Only aggregates leave this service, never one below the small-group threshold (R-DATA-3), and
never one that could be derived by subtracting two answers (complementary suppression over the
one cube every query reads, see disclosure.py); or, when the analyst asks for it, with
differential-privacy noise charged to a monthly budget (noise.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import NamedTuple

from servicekit.caller import Principal
from servicekit.db import UnitOfWorkFactory, utcnow
from servicekit.errors import Collision, InvalidArgument, PermissionDenied, Throttled

from .cube import ANY_FEATURE, Cube, period_cubes
from .disclosure import ALL_REGIONS, Key
from .models import ReleasedRow, Repository
from .noise import noisy_counts
from .periods import GRANULARITIES, measure_of, period_starts
from .release import DIMENSIONS, hidden_cells, shown, wanted_keys
from .service import MAX_FEATURE

MAX_SPAN_DAYS = 366
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_REGION = re.compile(r"^[a-z]{2,8}$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{0,64}$")


class Point(NamedTuple):
    # A tuple rather than a dataclass: a year's series makes hundreds per query.
    period: date
    users: int
    percentage: float
    suppressed: bool
    value: str = ""


@dataclass(frozen=True)
class Usage:
    series: list[Point]
    dimension: str
    epsilon_spent: float
    budget_remaining: float
    # What `users` counts: "daily_users", or for a week or month "peak_daily_users" (periods.py).
    measure: str
    # Combined over several regions (regions.py): those in the answer, and those that did not answer.
    regions: list[str] = field(default_factory=list)
    not_reporting: dict[str, str] = field(default_factory=dict)
    # The smallest group shown; 0 means this region's threshold.
    min_group_size: int = 0


@dataclass(frozen=True)
class Budget:
    period: date
    total: float
    spent: float
    max_per_query: float


# (period, value, users, active users, suppressed): one cell as shown, before it becomes a Point
ShownCell = tuple[date, str, int, int, bool]


def point(period: date, users: int, active: int, hidden: bool, value: str = "") -> Point:
    """One cell; hidden (or empty) says only "suppressed": no count, no share."""
    if hidden or active <= 0:
        return Point(period, 0, 0.0, True, value)
    return Point(period, users, min(100.0, users / active * 100), False, value)


class AnalyticsQueries:
    def __init__(self, uow: UnitOfWorkFactory[Repository], region: str, min_group_size: int,
                 budget_epsilon: float, max_epsilon: float, ledger_key: bytes,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.uow = uow
        self.region = region
        self.k = min_group_size
        self.budget_epsilon = budget_epsilon
        self.max_epsilon = max_epsilon
        self.ledger_key = ledger_key
        self.clock = clock

    @staticmethod
    def require_analyst(principal: Principal) -> None:
        # No region guard: aggregates are not personal data and may be read from any region.
        if principal.is_service or principal.role != "analyst":
            raise PermissionDenied("only analysts may read usage statistics")

    def feature_usage(self, principal: Principal, feature: str, from_date: str, to_date: str,
                      granularity: str, dimension: str = "", region: str = "",
                      epsilon: float = 0.0, request_id: str = "") -> Usage:
        """Usage of `feature` per period. With `epsilon`, a noisy answer charged to the analyst's
        budget; `request_id` makes it safe to retry (see `_answer_noisily`)."""
        self.require_analyst(principal)
        first, last = self._validate(feature, from_date, to_date, granularity, dimension, region, epsilon,
                                     request_id)
        row = ALL_REGIONS if region == "all" else (region or self.region)
        measure = measure_of(granularity)
        analyst = self._analyst(principal)
        if epsilon:
            starts = period_starts(first, last, granularity)
            with self.uow() as uow:
                cells = uow.repo.cells(feature, first, last)
            used, active = period_cubes(cells, feature, granularity, first)
            wanted = {start: wanted_keys(active.get(start, {}), row, dimension) for start in starts}
            query = hashlib.sha256(repr((feature, first, last, granularity, dimension, row, epsilon)).encode())
            return self._answer_noisily(analyst, request_id, query.hexdigest(), dimension, measure, epsilon,
                                        lambda: self._noisy(starts, wanted, used, active, dimension, epsilon))
        with self.uow() as uow:
            remaining = max(0.0, self.budget_epsilon - uow.repo.spent(analyst, self._budget_period()))
            exact = self._exact(uow.repo, feature, first, last, granularity, dimension, row)
        return Usage([point(d, u, a, h, v) for d, v, u, a, h in exact], dimension, 0.0, remaining, measure)

    def region_cells(self, feature: str, from_date: str, to_date: str, granularity: str,
                     dimension: str = "") -> list[ShownCell]:
        """This region's cells of a series exactly as its analysts are shown them (suppressed and
        protected), for a peer region to combine (regions.py). The caller is a peer, checked by the
        gRPC layer; nothing here is finer than what an analyst of this region sees."""
        first, last = self._validate(feature, from_date, to_date, granularity, dimension, "", 0.0, "")
        with self.uow() as uow:
            return self._exact(uow.repo, feature, first, last, granularity, dimension, self.region)

    def _exact(self, repo: Repository, feature: str, first: date, last: date, granularity: str,
               dimension: str, row: str) -> list[ShownCell]:
        """The exact (not noisy) cells of a series for one region row, protected."""
        starts = period_starts(first, last, granularity)
        if granularity == "day":
            # Each day's cells were protected when it was rolled up: a range read or two.
            mine = repo.released(feature, row, dimension, first, last)
            days_used = {r[0] for r in mine}
            anyone = ([] if len(days_used) == len(starts) else
                      [r for r in repo.released(ANY_FEATURE, row, dimension, first, last)
                       if r[0] not in days_used])
            if all(r[5] == self.k for r in mine) and all(r[5] == self.k for r in anyone):
                return released_series(starts, mine, anyone)
            # Released under another threshold (the roll-up job will redo them): protect now.
        cells = repo.cells(feature, first, last)
        used, active = period_cubes(cells, feature, granularity, first)
        series: list[ShownCell] = []
        for start in starts:
            u, a = used.get(start, {}), active.get(start, {})
            hidden, _ = hidden_cells(u, a, self.k)
            series += [(start, value, users, total, hide)
                       for value, users, total, hide in shown(u, a, hidden, wanted_keys(a, row, dimension))]
        return series

    def _answer_noisily(self, analyst: str, request_id: str, query: str, dimension: str, measure: str,
                        epsilon: float, draw: Callable[[], list[Point]]) -> Usage:
        """Charge the budget and draw the noisy answer in one transaction.

        A retried request (same analyst and `request_id`, e.g. the gateway's retry after a lost
        reply) gets the answer it was first given and is not charged again. A fresh draw instead
        would be a second noisy look at the same counts: a second spend that went unrecorded.
        Without a request id every call is a new query, charged.
        """
        try:
            return self._charge_and_draw(analyst, request_id, query, dimension, measure, epsilon, draw)
        except Collision:
            # The same request arrived twice at once and the other one was answered first.
            return self._charge_and_draw(analyst, request_id, query, dimension, measure, epsilon, draw)

    def _charge_and_draw(self, analyst: str, request_id: str, query: str, dimension: str, measure: str,
                         epsilon: float, draw: Callable[[], list[Point]]) -> Usage:
        with self.uow() as uow:
            # The ledger row is locked from here: a concurrent query of this analyst waits.
            total = uow.repo.spend(analyst, self._budget_period(), epsilon)
            kept = uow.repo.noisy_answer(analyst, request_id) if request_id else None
            if kept is not None:
                if kept.query != query:
                    raise InvalidArgument("request_id was already used for another query", "request_id_reused")
                # Answered before: the same answer, and this spend rolls back (no commit).
                return Usage(_series_of(kept.answer), dimension, epsilon,
                             max(0.0, self.budget_epsilon - (total - epsilon)), measure)
            if total > self.budget_epsilon + 1e-9:
                # Nothing is released and nothing is charged (the transaction rolls back).
                raise Throttled("privacy budget for this month is spent", retry_after=_to_month_end(
                    self.clock()), code="privacy_budget_spent")
            series = draw()
            if request_id:
                uow.repo.keep_noisy_answer(analyst, request_id, query, _json_of(series), self.clock())
            uow.commit()
        return Usage(series, dimension, epsilon, max(0.0, self.budget_epsilon - total), measure)

    def _noisy(self, starts: list[date], wanted: dict[date, list[Key]], used: dict[date, Cube],
               active: dict[date, Cube], dimension: str, epsilon: float) -> list[Point]:
        """Noisy users and active users for the wanted cells; small noisy counts still suppressed."""
        keys = [(s, k) for s in starts for k in wanted[s]]
        exact = [used.get(s, {}).get(k, 0) for s, k in keys] + [active.get(s, {}).get(k, 0) for s, k in keys]
        # Per period a person counts in the total and in one value (a size band) or, for products,
        # in up to every product listed; both for users and active users.
        per_period = 2 * (1 + (max((len(w) - 1 for w in wanted.values()), default=0)
                               if dimension == "product" else 1 if dimension else 0))
        noisy = noisy_counts(exact, per_period * len(starts), epsilon)
        half = len(keys)
        return [point(s, noisy[i], noisy[half + i], noisy[i] < self.k or noisy[half + i] < self.k, k[2])
                for i, (s, k) in enumerate(keys)]

    # --- budget ------------------------------------------------------------------------------
    def _analyst(self, principal: Principal) -> str:
        return hmac.new(self.ledger_key, principal.subject_id.encode(), hashlib.sha256).hexdigest()

    def _budget_period(self) -> date:
        return self.clock().date().replace(day=1)

    def budget(self, principal: Principal) -> Budget:
        self.require_analyst(principal)
        with self.uow() as uow:
            spent = uow.repo.spent(self._analyst(principal), self._budget_period())
        return Budget(self._budget_period(), self.budget_epsilon, spent, self.max_epsilon)

    def features(self, principal: Principal) -> list[str]:
        self.require_analyst(principal)
        with self.uow() as uow:
            return uow.repo.features()

    # --- validation -----------------------------------------------------------------------------
    def validate(self, feature: str, from_date: str, to_date: str, granularity: str, dimension: str
                 ) -> tuple[date, date]:
        """The first and last day of an exact query, or InvalidArgument."""
        return self._validate(feature, from_date, to_date, granularity, dimension, "", 0.0, "")

    def _validate(self, feature: str, from_date: str, to_date: str, granularity: str, dimension: str,
                  region: str, epsilon: float, request_id: str) -> tuple[date, date]:
        if not _REQUEST_ID.match(request_id):
            raise InvalidArgument("request_id is at most 64 letters, digits, '-' or '_'", "invalid_request_id")
        if not feature or len(feature) > MAX_FEATURE or feature == "*":
            raise InvalidArgument("feature name is missing or too long", "invalid_feature")
        if granularity not in GRANULARITIES:
            raise InvalidArgument(f"granularity must be one of {', '.join(GRANULARITIES)}",
                                  "invalid_granularity")
        if dimension not in DIMENSIONS:
            raise InvalidArgument("dimension must be empty, product or org_size_band", "invalid_dimension")
        if region and region != "all" and not _REGION.match(region):
            raise InvalidArgument("region must be empty, all or a region code", "invalid_region")
        if not (epsilon == 0 or 0 < epsilon <= self.max_epsilon):
            raise InvalidArgument(f"epsilon must be 0 (exact) or in (0, {self.max_epsilon}]",
                                  "invalid_epsilon")
        first, last = _day("from_date", from_date), _day("to_date", to_date)
        if first > last:
            raise InvalidArgument("from_date must not be after to_date", "invalid_range")
        if (last - first).days + 1 > MAX_SPAN_DAYS:
            raise InvalidArgument(f"the range may span at most {MAX_SPAN_DAYS} days", "range_too_long")
        return first, last


def released_series(days: list[date], mine: list[ReleasedRow], anyone: list[ReleasedRow]) -> list[ShownCell]:
    """A daily series from released cells: a day's cells of the feature (`mine`), or, on a day
    nobody used it, the day's cells with active users (`anyone`), all suppressed; a day with
    neither is suppressed."""
    cells: dict[date, list[ReleasedRow]] = {}
    for r in mine:
        cells.setdefault(r[0], []).append(r)
    for r in anyone:
        cells.setdefault(r[0], []).append((r[0], r[1], 0, 0, True, r[5]))
    series: list[ShownCell] = []
    for day in days:
        found = cells.get(day)
        if not found:
            series.append((day, "", 0, 0, True))
            continue
        # The total ("") first, then each value (in code point order on every database).
        found.sort(key=_value)
        series += [(day, value, users, active, hidden) for _, value, users, active, hidden, _ in found]
    return series


def _value(row: ReleasedRow) -> str:
    return row[1]


def _json_of(series: list[Point]) -> str:
    return json.dumps([[p.period.isoformat(), p.users, p.percentage, p.suppressed, p.value] for p in series])


def _series_of(answer: str) -> list[Point]:
    return [Point(date.fromisoformat(d), int(u), float(pct), bool(s), str(v)) for d, u, pct, s, v in json.loads(answer)]


def _to_month_end(now: datetime) -> int:
    start = now.date().replace(day=1)
    following = date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return max(1, int((datetime(following.year, following.month, 1, tzinfo=now.tzinfo) - now)
                      .total_seconds()))


def _day(name: str, value: str) -> date:
    # fromisoformat alone would also take "20240131"; the API promises YYYY-MM-DD only.
    if not _DATE.match(value):
        raise InvalidArgument(f"{name} must be a date as YYYY-MM-DD", "invalid_date")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidArgument(f"{name} must be a date as YYYY-MM-DD", "invalid_date") from exc
