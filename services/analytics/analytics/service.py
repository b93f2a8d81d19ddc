"""Analytics' rules. Knows nothing of gRPC, NATS or SQL: it works through a unit of work.

Only aggregates leave this service, and never one below the small-group threshold (R-DATA-3).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from servicekit.caller import Principal
from servicekit.db import UnitOfWorkFactory, new_id, utcnow
from servicekit.errors import InvalidArgument, PermissionDenied
from servicekit.subject_data import Erasure, Export, SubjectDataRules

from .models import FeatureUsageDaily, Repository, UsageEvent
from .periods import GRANULARITIES, period_of, period_starts

MAX_SPAN_DAYS = 366
MAX_FEATURE = 100
MAX_PSEUDONYM = 128
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

NO_PERSONAL_DATA = (
    "Analytics keeps no personal data: usage is held under a daily-rotated pseudonym until it is "
    "rolled up into aggregates, then deleted; aggregates cannot be linked to a person."
)

# The restriction record is the one row keyed by a subject id; an access request must show it.
RESTRICTION_NOTE = " The restriction of processing you asked for is recorded against your account id."


@dataclass(frozen=True)
class Point:
    period: date
    users: int
    percentage: float
    suppressed: bool


def point(period: date, users: int, active: int, min_group_size: int) -> Point:
    """One cell of a series; below the threshold it says only "suppressed" (no count, no share)."""
    if users < min_group_size:
        return Point(period, 0, 0.0, True)
    return Point(period, users, users / active * 100 if active else 0.0, False)


def record_usage(repo: Repository, feature: str, pseudonym: str, day: date, region: str) -> None:
    """Store one use of a feature; called by the event handler inside the consumer's transaction."""
    if not feature or len(feature) > MAX_FEATURE:
        raise InvalidArgument("feature name is missing or too long", "invalid_feature")
    if not pseudonym or len(pseudonym) > MAX_PSEUDONYM:
        raise InvalidArgument("pseudonym is missing or too long", "invalid_pseudonym")
    repo.add(UsageEvent(id=new_id(), feature=feature, pseudonym=pseudonym, day=day, region=region))


class AnalyticsService(SubjectDataRules):
    def __init__(self, uow: UnitOfWorkFactory[Repository], region: str, min_group_size: int = 10,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.uow = uow
        self.region = region
        self.min_group_size = min_group_size
        self.clock = clock

    # --- rollup ----------------------------------------------------------------------
    def rollup(self, day: date) -> int:
        """Count one day's distinct pseudonyms per feature, then delete its events; returns deleted."""
        with self.uow() as uow:
            repo = uow.repo
            active = repo.active_users(day)
            for feature, region, users in repo.distinct_users(day):
                row = repo.daily(day, feature, region)
                if row is None:
                    repo.add(FeatureUsageDaily(day=day, feature=feature, region=region, users=users,
                                               active_users=active[region]))
                else:
                    # Late events for a day already rolled up: the first batch's pseudonyms are gone,
                    # so overlap is unknowable. max() may under-count, never over-count, so it can
                    # never lift a small group over the threshold.
                    row.users = max(row.users, users)
            for region, count in active.items():
                repo.level_active_users(day, region, count)
            deleted = repo.delete_events(day)
            uow.commit()
        return deleted

    def rollup_finished_days(self) -> list[date]:
        """Roll up every day before today (UTC): today's pseudonyms are still being written."""
        with self.uow() as uow:
            days = uow.repo.days_with_events(before=self.clock().date())
        for day in days:
            self.rollup(day)
        return days

    # --- the analyst's query ------------------------------------------------------------
    def feature_usage(self, principal: Principal, feature: str, from_date: str, to_date: str,
                      granularity: str) -> list[Point]:
        # No region guard: aggregates are not personal data and may be read from any region.
        if principal.is_service or principal.role != "analyst":
            raise PermissionDenied("only analysts may read usage statistics")
        if not feature or len(feature) > MAX_FEATURE:
            raise InvalidArgument("feature name is missing or too long", "invalid_feature")
        if granularity not in GRANULARITIES:
            raise InvalidArgument(f"granularity must be one of {', '.join(GRANULARITIES)}",
                                  "invalid_granularity")
        first, last = _day("from_date", from_date), _day("to_date", to_date)
        if first > last:
            raise InvalidArgument("from_date must not be after to_date", "invalid_range")
        if (last - first).days + 1 > MAX_SPAN_DAYS:
            raise InvalidArgument(f"the range may span at most {MAX_SPAN_DAYS} days", "range_too_long")
        with self.uow() as uow:
            daily = uow.repo.usage(feature, self.region, first, last)
        # Per period, the largest daily figure. Exact for a day; for a week or month the sum of
        # daily distinct users would count a returning user once per day (an over-count that could
        # lift a small group over the threshold), so the max is used: a conservative lower bound.
        users: dict[date, int] = {}
        active: dict[date, int] = {}
        for row in daily:
            period = period_of(row.day, granularity, first)
            users[period] = max(users.get(period, 0), row.users)
            active[period] = max(active.get(period, 0), row.active_users)
        return [point(p, users.get(p, 0), active.get(p, 0), self.min_group_size)
                for p in period_starts(first, last, granularity)]

    # --- the personal-data contract -------------------------------------------------------
    def export(self, subject_id: str) -> Export:
        """No usage tables: nothing here links to the subject. Only a restriction they asked for."""
        with self.uow() as uow:
            tables = uow.repo.restriction_rows(subject_id)
        return Export(tables, NO_PERSONAL_DATA + (RESTRICTION_NOTE if tables else ""))

    def erase(self, subject_id: str) -> Erasure:
        # Nothing to delete and nothing kept: see NO_PERSONAL_DATA.
        return Erasure(0)

    def set_restricted(self, subject_id: str, restricted: bool) -> bool:
        with self.uow() as uow:
            result = uow.repo.set_restricted(subject_id, restricted)
            uow.commit()
            return result


def _day(name: str, value: str) -> date:
    # fromisoformat alone would also take "20240131"; the API promises YYYY-MM-DD only.
    if not _DATE.match(value):
        raise InvalidArgument(f"{name} must be a date as YYYY-MM-DD", "invalid_date")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidArgument(f"{name} must be a date as YYYY-MM-DD", "invalid_date") from exc
