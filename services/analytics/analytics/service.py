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
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from servicekit.db import UnitOfWork, UnitOfWorkFactory, utcnow
from servicekit.dimensions import DEFAULT_PRODUCTS, SIZE_BANDS, coarse_product
from servicekit.logs import get_logger
from servicekit.pseudonyms import pseudonym
from servicekit.subject_data import Erasure, Export, SubjectDataRules

from .cube import ANY_FEATURE
from .models import Cell, DayUse, Repository
from .release import released_cells

log = get_logger(__name__)

MAX_FEATURE = 100
_FEATURE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
_PSEUDONYM = re.compile(r"^[0-9a-f]{64}$")

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


def accepted(use: Use, products: Collection[str] = DEFAULT_PRODUCTS) -> Use | None:
    """The use with its dimensions made coarse, or None if it is malformed (it is then dropped)."""
    if not _FEATURE.match(use.feature) or len(use.feature) > MAX_FEATURE:
        return None
    if not _PSEUDONYM.match(use.pseudonym):
        return None
    # Free text never becomes a dimension value: a product not on the deployment's list is "other"
    # (the gateway does the same; this holds whatever a publisher sends).
    product = coarse_product(use.product, products)
    band = use.size_band if use.size_band in SIZE_BANDS else ""
    return Use(use.event_id, use.day, use.region, use.feature, use.pseudonym, product, band)


def stored_pseudonym(pseudonym_hex: str) -> int:
    """The pseudonym as stored: its first 64 bits as a signed integer (see models.py)."""
    return int(pseudonym_hex[:16], 16) - (1 << 63)


# How long a key read from the bucket is used from memory: an erasure reads the two live days'
# keys twice (its Erase, then identity's account.erased), and a burst of erasures reads the same
# two keys hundreds of times. Short, so that a key the bucket lost and made again is not outlived
# for long; and never past its day's roll-up, which destroys the key (see `_key`).
KEY_MEMORY = timedelta(minutes=1)


CellKey = tuple[str, str, str, str]  # (region, feature or "*", dimension, value)


def _cells_of(region: str, feature: str, product: str, band: str) -> tuple[CellKey, ...]:
    """The cells one use counts in: its feature's and any feature's, overall and per dimension."""
    product, band = product or "none", band or "unknown"
    return tuple((region, f, d, v) for f in (feature, ANY_FEATURE)
                 for d, v in (("all", ""), ("product", product), ("org_size_band", band)))


def day_cells(day: date, uses: Iterable[DayUse]) -> list[Cell]:
    """Distinct users per (region, feature or "*", dimension, value) from one day's events, which
    must come in pseudonym order: one pass, and only one person's cells held at a time (each
    person's cells are gathered while their events pass, then counted once)."""
    # People are counted per set of cells they touched (most touch the cells of one use), and the
    # sets are spread over their cells at the end: one count per person instead of one per cell.
    people: dict[frozenset[CellKey] | tuple[CellKey, ...], int] = {}
    known: dict[tuple[str, str, str, str], tuple[CellKey, ...]] = {}
    previous: int | None = None
    theirs: tuple[CellKey, ...] | set[CellKey] = ()
    for who, region, feature, product, band in uses:
        combo = (region, feature, product, band)
        cells = known.get(combo)
        if cells is None:
            cells = known[combo] = _cells_of(*combo)
        if who != previous:
            if previous is not None:
                if who < previous:
                    # Out of order, a person could be counted twice: refuse rather than over-count.
                    raise ValueError("a day's events must come in pseudonym order")
                group = frozenset(theirs) if isinstance(theirs, set) else theirs
                people[group] = people.get(group, 0) + 1
            previous, theirs = who, cells
        elif cells is not theirs:
            theirs = {*theirs, *cells}
    if previous is not None:
        group = frozenset(theirs) if isinstance(theirs, set) else theirs
        people[group] = people.get(group, 0) + 1
    counts: Counter[CellKey] = Counter()
    for group, n in people.items():
        for key in group:
            counts[key] += n
    return [(day, r, f, d, v, n) for (r, f, d, v), n in counts.items()]


def release_day(repo: Repository, day: date, min_group_size: int) -> None:
    """Recompute what analysts may see of `day` from its stored counts (see release.py)."""
    repo.replace_released(day, released_cells(repo.cells_of_day(day), day, min_group_size), min_group_size)


class AnalyticsService(SubjectDataRules):
    def __init__(self, uow: UnitOfWorkFactory[Repository], region: str, keys: KeyStore,
                 exclusions: ExclusionList, rollup_grace: timedelta = timedelta(hours=1),
                 clock: Callable[[], datetime] = utcnow, min_group_size: int = 10,
                 products: Collection[str] = DEFAULT_PRODUCTS) -> None:
        self.uow = uow
        self.products = frozenset(products)
        self.min_group_size = min_group_size
        self.region = region
        self.keys = keys
        self.exclusions = exclusions
        self.rollup_grace = rollup_grace
        self.clock = clock
        # Keys read lately, by day, with when to read them again (see KEY_MEMORY).
        self._known_keys: dict[date, tuple[bytes, datetime]] = {}
        # Live days already due for roll-up whose key is gone: nothing of theirs can be erased.
        self._keyless_days: set[date] = set()

    # --- ingest ------------------------------------------------------------------------
    def ingest(self, uses: Iterable[Use]) -> int:
        """Store a batch of uses in one transaction; returns how many were stored.

        Malformed uses, uses of another region, uses under an excluded pseudonym and uses already
        stored (a redelivery) are dropped.
        """
        kept = [u for u in (accepted(u, self.products) for u in uses) if u is not None and u.region == self.region]
        with self.uow() as uow:
            stored = uow.repo.insert_uses([(u.event_id, u.day, u.region, u.feature, stored_pseudonym(u.pseudonym),
                                            u.product, u.size_band) for u in kept])
            uow.commit()
        return stored

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

    def _key(self, day: date, create: bool) -> bytes | None:
        """The key of `day`, from memory if read in the last KEY_MEMORY and its day is not yet due
        for roll-up (its key's destruction), else from the bucket."""
        now = self.clock()
        due = day <= self.last_due_day()
        if day in self._keyless_days:
            return None
        known = self._known_keys.get(day)
        if known is not None and known[1] > now and not due:
            return known[0]
        key = self.keys.key(day, create=create)
        if key is not None and not due:
            self._known_keys[day] = (key, now + KEY_MEMORY)
        else:
            self._known_keys.pop(day, None)
            if key is None and due:
                # Destroyed by its roll-up (or never made): a due day's key is never made again
                # (only today's is, and a day is due from its end plus the grace), so not asked again.
                self._keyless_days.add(day)
        return key

    def _forget_keys_through(self, last: date) -> None:
        # list() copies in one step: a gRPC or consumer thread may add a day meanwhile.
        for day in list(self._known_keys):
            if day <= last:
                self._known_keys.pop(day, None)
        first_live = self._live_days()[0]
        for day in list(self._keyless_days):
            if day < first_live:
                self._keyless_days.discard(day)

    def _drop_unrolled(self, subject_id: str, remember: bool, uow: UnitOfWork[Repository] | None = None) -> int:
        today = self.clock().date()
        found: list[tuple[date, int]] = []
        for day in self._live_days():
            # Today's key is made if missing, so an event about to be published under it is
            # recognised; a past day without a key has no events left to find.
            key = self._key(day, create=remember and day == today)
            if key is not None:
                found.append((day, stored_pseudonym(pseudonym(key, subject_id))))
        if not found:
            return 0  # no live key, so no event can be stored under one
        with self._repo(uow) as repo:
            return repo.exclude_pseudonyms(found) if remember else repo.delete_events_of(found)

    def account_erased(self, subject_id: str, uow: UnitOfWork[Repository] | None = None) -> None:
        """The account is gone: its un-rolled events and its exclusion entries go too."""
        self._drop_unrolled(subject_id, remember=False, uow=uow)
        # Its entries go with every message of them (servicekit's Exclusions: no marker naming it is left).
        self.exclusions.forget(subject_id)

    # --- roll-up ---------------------------------------------------------------------------
    def last_due_day(self) -> date:
        """The last day whose period is over: its end plus the grace has passed."""
        return (self.clock() - self.rollup_grace).date() - timedelta(days=1)

    def rollup(self, day: date) -> int:
        """Count one day's distinct pseudonyms per cell, release what analysts may see of the day,
        then delete its events, in one transaction; returns the events deleted."""
        with self.uow() as uow:
            repo = uow.repo
            # Late events for a day already rolled up: the first batch's pseudonyms are gone, so
            # overlap is unknowable. max() may under-count, never over-count, so it can never lift
            # a small group over the threshold.
            repo.merge_cells(day_cells(day, repo.day_uses(day)))
            release_day(repo, day, self.min_group_size)
            deleted = repo.delete_day(day)
            uow.commit()
        return deleted

    def release_stale_days(self) -> list[date]:
        """Release again the days whose released cells are missing or protected under another
        threshold (a changed setting, cells stored before releases existed)."""
        with self.uow() as uow:
            days = uow.repo.days_to_release(self.min_group_size)
            for day in days:
                release_day(uow.repo, day, self.min_group_size)
            uow.commit()
        return days

    def rollup_finished_days(self) -> list[date]:
        """Roll up every finished day, then destroy the keys of those days."""
        last = self.last_due_day()
        # Every replica runs this: no copy of a due day's key stays in this process's memory.
        self._forget_keys_through(last)
        with self.uow() as uow:
            days = uow.repo.days_with_events(through=last)
        for day in days:
            self.rollup(day)
        try:
            self.keys.destroy_through(last)
        except Exception:
            # The bucket's TTL destroys the key anyway; the next run tries again.
            log.warning("could not destroy pseudonym keys now")
        # After the keys: whatever happens here, they are gone.
        self.release_stale_days()
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
