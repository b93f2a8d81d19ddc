"""Analytics' rules for usage data: ingest, exclusion, roll-up, and the personal-data contract.

Knows nothing of gRPC, NATS or SQL: it works through a unit of work and two small ports (the
region's pseudonym keys and exclusion list, both in NATS key-value buckets).

How objection and restriction are honoured without personal data in this database:
the subjects not to be counted are kept in the region's *exclusion list* (a NATS key-value
bucket, ids of subjects who objected or are restricted, nothing else), written here from the
owners' events (`rights.processing.objected`, `identity.account.restricted`) and from the
rights service's Restrict call, and removed when the account is erased. The gateway reads it
before publishing a use, so from that moment no new event names the subject. Events already
published (today's, or yesterday's not yet rolled up) are found by recomputing the subject's
pseudonym under each key still alive, deleted, and that pseudonym is recorded for its day so an
event still in flight is refused on arrival; those records die with the day's roll-up. Keeping
the list in analytics' database instead would put subject ids beside the pseudonyms; keeping
hashes of them would still be personal data and could not be matched to a rotated pseudonym.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from servicekit.db import UnitOfWork, UnitOfWorkFactory, utcnow
from servicekit.logs import get_logger
from servicekit.pseudonyms import pseudonym
from servicekit.subject_data import Erasure, Export, SubjectDataRules

from .models import Cell, Repository, UseRow

log = get_logger(__name__)

MAX_FEATURE = 100
_FEATURE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
_PSEUDONYM = re.compile(r"^[0-9a-f]{64}$")
_PRODUCT = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")
SIZE_BANDS = ("1-9", "10-49", "50-249", "250+")
OTHER_PRODUCT = "other"
ANY_FEATURE = "*"

NO_PERSONAL_DATA = (
    "Analytics keeps no personal data: usage is held under a pseudonym whose key changes every "
    "day and is destroyed when the day is rolled up into aggregates, then the usage is deleted; "
    "after the key is gone a pseudonym cannot be recomputed or linked to you, and aggregates "
    "cannot be linked to a person."
)
EXCLUSION_NOTE = (
    " Your account id is on the region's analytics exclusion list ({reasons}) so that your use "
    "of the portal is not counted."
)


class KeyStore(Protocol):
    """The region's pseudonym keys, one per UTC day."""

    def key(self, day: date, create: bool = False) -> bytes | None: ...

    def destroy_through(self, last: date, days_back: int = 7) -> list[date]: ...


class ExclusionList(Protocol):
    """Subjects whose usage is not counted, with the reasons (objected, restricted)."""

    def set(self, subject_id: str, reason: str, excluded: bool) -> None: ...

    def reasons(self, subject_id: str) -> list[str]: ...

    def forget(self, subject_id: str) -> None: ...


@dataclass(frozen=True)
class Use:
    """One use of a feature, as published by the gateway."""

    event_id: str
    day: date
    region: str
    feature: str
    pseudonym: str
    product: str = ""
    size_band: str = ""


def accepted(use: Use) -> Use | None:
    """The use with its dimensions made coarse, or None if it is malformed (it is then dropped)."""
    if not _FEATURE.match(use.feature) or len(use.feature) > MAX_FEATURE:
        return None
    if not _PSEUDONYM.match(use.pseudonym):
        return None
    # Free text never becomes a dimension value: an unknown shape is "other".
    product = use.product if not use.product or _PRODUCT.match(use.product) else OTHER_PRODUCT
    band = use.size_band if use.size_band in SIZE_BANDS else ""
    return Use(use.event_id, use.day, use.region, use.feature, use.pseudonym, product, band)


def day_cells(day: date, uses: Iterable[tuple[str, str, str, str, str]]) -> list[Cell]:
    """Distinct users per (region, feature or "*", dimension, value) from one day's distinct uses."""
    sets: dict[tuple[str, str, str, str], set[str]] = {}
    for region, feature, product, band, who in uses:
        for f in (feature, ANY_FEATURE):
            sets.setdefault((region, f, "all", ""), set()).add(who)
            sets.setdefault((region, f, "product", product or "none"), set()).add(who)
            sets.setdefault((region, f, "org_size_band", band or "unknown"), set()).add(who)
    return [(day, r, f, d, v, len(s)) for (r, f, d, v), s in sets.items()]


class AnalyticsService(SubjectDataRules):
    def __init__(self, uow: UnitOfWorkFactory[Repository], region: str, keys: KeyStore,
                 exclusions: ExclusionList, rollup_grace: timedelta = timedelta(hours=1),
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.uow = uow
        self.region = region
        self.keys = keys
        self.exclusions = exclusions
        self.rollup_grace = rollup_grace
        self.clock = clock

    # --- ingest ------------------------------------------------------------------------
    def ingest(self, uses: Iterable[Use]) -> int:
        """Store a batch of uses in one transaction; returns how many were kept.

        Malformed uses, uses of another region and uses under an excluded pseudonym are dropped.
        """
        kept = [u for u in (accepted(u) for u in uses) if u is not None and u.region == self.region]
        with self.uow() as uow:
            excluded = uow.repo.excluded_among({(u.day, u.pseudonym) for u in kept})
            rows: list[UseRow] = [(u.event_id, u.day, u.region, u.feature, u.pseudonym, u.product,
                                   u.size_band) for u in kept if (u.day, u.pseudonym) not in excluded]
            uow.repo.insert_uses(rows)
            uow.commit()
        return len(rows)

    # --- objection and restriction ----------------------------------------------------------
    def set_excluded(self, subject_id: str, reason: str, excluded: bool,
                     uow: UnitOfWork[Repository] | None = None) -> int:
        """Record or lift an exclusion; on exclusion, drop the subject's un-rolled events now.

        The list is written first, so the gateway stops publishing before the events are purged.
        Returns the events deleted. Inside an event handler, `uow` is the consumer's transaction.
        """
        self.exclusions.set(subject_id, reason, excluded)
        if not excluded:
            return 0
        return self._drop_unrolled(subject_id, remember=True, uow=uow)

    def _live_days(self) -> list[date]:
        today = self.clock().date()
        return [today - timedelta(days=1), today]

    @contextmanager
    def _repo(self, uow: UnitOfWork[Repository] | None) -> Iterator[Repository]:
        """The caller's transaction (it commits), or one of our own."""
        if uow is not None:
            yield uow.repo
            return
        with self.uow() as own:
            yield own.repo
            own.commit()

    def _drop_unrolled(self, subject_id: str, remember: bool, uow: UnitOfWork[Repository] | None = None) -> int:
        deleted = 0
        today = self.clock().date()
        with self._repo(uow) as repo:
            for day in self._live_days():
                # Today's key is made if missing, so an event about to be published under it is
                # recognised; a past day without a key has no events left to find.
                key = self.keys.key(day, create=remember and day == today)
                if key is None:
                    continue
                who = pseudonym(key, subject_id)
                deleted += repo.exclude_pseudonym(day, who) if remember else repo.delete_events_of(day, who)
        return deleted

    def account_erased(self, subject_id: str, uow: UnitOfWork[Repository] | None = None) -> None:
        """The account is gone: its un-rolled events and its exclusion entries go too."""
        self._drop_unrolled(subject_id, remember=False, uow=uow)
        self.exclusions.forget(subject_id)

    # --- roll-up ---------------------------------------------------------------------------
    def last_due_day(self) -> date:
        """The last day whose period is over: its end plus the grace has passed."""
        return (self.clock() - self.rollup_grace).date() - timedelta(days=1)

    def rollup(self, day: date) -> int:
        """Count one day's distinct pseudonyms per cell, then delete its events; returns deleted."""
        with self.uow() as uow:
            repo = uow.repo
            # Late events for a day already rolled up: the first batch's pseudonyms are gone, so
            # overlap is unknowable. max() may under-count, never over-count, so it can never lift
            # a small group over the threshold.
            repo.merge_cells(day_cells(day, repo.distinct_uses(day)))
            deleted = repo.delete_day(day)
            uow.commit()
        return deleted

    def rollup_finished_days(self) -> list[date]:
        """Roll up every finished day, then destroy the keys of those days."""
        last = self.last_due_day()
        with self.uow() as uow:
            days = uow.repo.days_with_events(through=last)
        for day in days:
            self.rollup(day)
        try:
            self.keys.destroy_through(last)
        except Exception:
            # The bucket's TTL destroys the key anyway; the next run tries again.
            log.warning("could not destroy pseudonym keys now")
        return days

    # --- the personal-data contract ----------------------------------------------------------
    def export(self, subject_id: str) -> Export:
        """No usage tables: nothing here links to the subject after roll-up. The exclusion entry
        they caused, if any, is shown."""
        reasons = self.exclusions.reasons(subject_id)
        if not reasons:
            return Export([], NO_PERSONAL_DATA)
        table = ("analytics_exclusions", "usage", ["reason"], [[r] for r in reasons])
        return Export([table], NO_PERSONAL_DATA + EXCLUSION_NOTE.format(reasons=", ".join(reasons)))

    def erase(self, subject_id: str) -> Erasure:
        """Delete the subject's un-rolled events by recomputing their pseudonym under each key
        still alive. Rolled-up counts hold no one. An exclusion entry stays while the account
        lives: it is what keeps the subject uncounted."""
        return Erasure(self._drop_unrolled(subject_id, remember=False))

    def set_restricted(self, subject_id: str, restricted: bool) -> bool:
        self.set_excluded(subject_id, "restricted", restricted)
        return restricted
