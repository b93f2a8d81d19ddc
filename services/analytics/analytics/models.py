"""Analytics' tables and the repository: the only module that knows them.

No table holds a name, an address or a subject id. Usage events carry a pseudonym under a key
that rotates every day and is destroyed once the day is rolled up; they and the day's excluded
pseudonyms are deleted by that roll-up. What remains is counts of distinct users per day, per
region, feature and coarse dimension value, and those counts after disclosure control (the
released cells a daily series reads). The privacy-budget ledger is keyed by a keyed hash of the
analyst's (staff) account id, never the id.

A stored pseudonym is the first 64 bits of the keyed hash, as a signed integer: half the space of
the hex text and an integer compare when a day is read in pseudonym order (two people colliding
in 64 bits on one day is about one chance in 10^6 at ten million users, and merges them: an
under-count, never an over-count).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from functools import cache

from servicekit.audit import AuditLogMixin
from servicekit.chain import ChainHeadMixin
from servicekit.governance_models import GovernanceModels
from servicekit.holds import LegalHoldMixin
from servicekit.outbox import InboxMixin, OutboxMixin
from servicekit.retention import Batch, Key, PurgeRunMixin
from servicekit.transfers import TransferLogMixin
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Executable,
    Float,
    Index,
    Integer,
    String,
    Text,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

# Categories (servicekit/declarations.py): an event under a pseudonym is Usage Data of a person
# until its day is rolled up; counts are not personal data. The budget ledger and kept noisy
# answers name an analyst by a keyed hash of their staff account id (an identifier, Identity
# Data, since this service can recompute it) beside what the analyst did (Usage Data).
NONE = {"category": "none"}
USAGE = {"category": "3.2.5"}
ANALYST = {"category": "3.2.1"}


class Base(DeclarativeBase):
    pass


class Outbox(OutboxMixin, Base):
    pass


class Inbox(InboxMixin, Base):
    pass


class ChainHead(ChainHeadMixin, Base):
    pass


class AuditLog(AuditLogMixin, Base):
    pass


class TransferLog(TransferLogMixin, Base):
    pass


class LegalHold(LegalHoldMixin, Base):
    pass


class PurgeRun(PurgeRunMixin, Base):
    pass


GOVERNANCE = GovernanceModels(ChainHead, AuditLog, TransferLog, LegalHold, PurgeRun)


class UsageEvent(Base):
    """One use of a feature under that day's pseudonym; deleted when the day is rolled up.

    The key is (day, pseudonym, event id), and SQLite stores the table in key order (WITHOUT
    ROWID): a day's events are one contiguous range, read in pseudonym order by the roll-up and
    deleted as a range, and an erasure finds a pseudonym's events by the key. An event's day and
    pseudonym never change, so the key still makes a redelivered event insert nothing.
    """

    __tablename__ = "usage_events"
    __table_args__ = {"sqlite_with_rowid": False}

    day: Mapped[date] = mapped_column(Date, primary_key=True, info=USAGE)
    pseudonym: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False, info=USAGE)
    # The event's id (JetStream de-duplicates on it; a redelivery inserts nothing).
    id: Mapped[str] = mapped_column(String(32), primary_key=True, info=USAGE)
    region: Mapped[str] = mapped_column(String(8), info=USAGE)
    feature: Mapped[str] = mapped_column(String(100), info=USAGE)
    product: Mapped[str] = mapped_column(String(40), default="", info=USAGE)
    size_band: Mapped[str] = mapped_column(String(10), default="", info=USAGE)


class ExcludedPseudonym(Base):
    """A pseudonym of a day whose subject objected or is restricted; events under it are refused.

    Lives exactly as long as the day's events (deleted by the same roll-up).
    """

    __tablename__ = "excluded_pseudonyms"

    day: Mapped[date] = mapped_column(Date, primary_key=True, info=USAGE)
    pseudonym: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False, info=USAGE)


class UsageDaily(Base):
    """Distinct users on one day. `feature` "*" is any feature (the active-user denominator);
    `dimension` "all" (value "") is the whole region, else "product" or "org_size_band"."""

    __tablename__ = "usage_daily"
    __table_args__ = (Index("ix_usage_daily_feature_day", "feature", "day"),)

    day: Mapped[date] = mapped_column(Date, primary_key=True, info=NONE)
    region: Mapped[str] = mapped_column(String(8), primary_key=True, info=NONE)
    feature: Mapped[str] = mapped_column(String(100), primary_key=True, info=NONE)
    dimension: Mapped[str] = mapped_column(String(20), primary_key=True, info=NONE)
    value: Mapped[str] = mapped_column(String(40), primary_key=True, info=NONE)
    users: Mapped[int] = mapped_column(Integer, info=NONE)


class UsageReleased(Base):
    """One day's cells as an analyst may see them, computed at roll-up (release.py) so that a daily
    series is one range read: for a feature, per region row (a region or "all") and dimension set,
    the total (value "") and each value, with users and active users, or suppressed (counts 0).
    Feature "*" lists the day's cells for features nobody used that day (all suppressed).
    `min_group_size` is the threshold the cells were protected with: a query under another one
    does not use them, and the roll-up job recomputes them."""

    __tablename__ = "usage_released"
    __table_args__ = (Index("ix_usage_released_day", "day"), {"sqlite_with_rowid": False})

    feature: Mapped[str] = mapped_column(String(100), primary_key=True, info=NONE)
    region: Mapped[str] = mapped_column(String(8), primary_key=True, info=NONE)
    dimension: Mapped[str] = mapped_column(String(20), primary_key=True, info=NONE)
    day: Mapped[date] = mapped_column(Date, primary_key=True, info=NONE)
    value: Mapped[str] = mapped_column(String(40), primary_key=True, info=NONE)
    users: Mapped[int] = mapped_column(Integer, info=NONE)
    active: Mapped[int] = mapped_column(Integer, info=NONE)
    suppressed: Mapped[bool] = mapped_column(Boolean, info=NONE)
    min_group_size: Mapped[int] = mapped_column(Integer, info=NONE)


class NoisyAnswer(Base):
    """A differentially private answer as released, kept a day so that a retried request (same
    analyst, same request id) gets the same answer and spends nothing more: a fresh answer would
    be a second draw of noise, which is a second spend. Holds noisy aggregates only."""

    __tablename__ = "noisy_answers"

    analyst: Mapped[str] = mapped_column(String(64), primary_key=True, info=ANALYST)
    request_id: Mapped[str] = mapped_column(String(64), primary_key=True, info=USAGE)
    # A hash of the query's parameters: the same id for another question is refused.
    query: Mapped[str] = mapped_column(String(64), info=USAGE)
    answer: Mapped[str] = mapped_column(Text, info=NONE)  # noisy aggregates
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True, info=USAGE)


class PrivacySpend(Base):
    """Epsilon an analyst spent in a budget period; `analyst` is a keyed hash of the account id."""

    __tablename__ = "privacy_spend"

    analyst: Mapped[str] = mapped_column(String(64), primary_key=True, info=ANALYST)
    period: Mapped[date] = mapped_column(Date, primary_key=True, info=USAGE)
    spent: Mapped[float] = mapped_column(Float, info=USAGE)


# (day, region, feature, dimension, value, users)
Cell = tuple[date, str, str, str, str, int]
# (event id, day, region, feature, pseudonym, product, size band)
UseRow = tuple[str, date, str, str, int, str, str]
# (pseudonym, region, feature, product, size band): one event of a day, as the roll-up reads it
DayUse = tuple[int, str, str, str, str]
# (feature, region row, dimension, value, users, active, suppressed): a released cell of one day
ReleasedCell = tuple[str, str, str, str, int, int, bool]
# (day, value, users, active, suppressed, min_group_size): a released cell, as read back
ReleasedRow = tuple[date, str, int, int, bool, int]
_CELL_KEY = ("day", "region", "feature", "dimension", "value")
# Rows fetched at a time when a day's events are read.
STREAM_ROWS = 20000
# Rows per statement in bulk writes (SQLite binds at most 32 766 parameters per statement).
_CHUNK = 2000


def _chunks(rows: Sequence[dict[str, object]]) -> Iterator[Sequence[dict[str, object]]]:
    for start in range(0, len(rows), _CHUNK):
        yield rows[start:start + _CHUNK]


# Built once: a year's daily series is this one statement, and building it costs more than running it.
_RELEASED = (
    select(UsageReleased.day, UsageReleased.value, UsageReleased.users, UsageReleased.active,
           UsageReleased.suppressed, UsageReleased.min_group_size)
    .where(UsageReleased.feature == bindparam("feature"), UsageReleased.region == bindparam("region"),
           UsageReleased.dimension == bindparam("dimension"), UsageReleased.day >= bindparam("first"),
           UsageReleased.day <= bindparam("last"))
)


@cache
def _events_of(pairs: int) -> Executable:
    """DELETE of the events of `pairs` (day, pseudonym) pairs, bound as d0, p0, d1, p1, ...: an OR of
    key lookups (SQLite and PostgreSQL each seek the key per pair; a row-value IN scans on SQLite)."""
    return delete(UsageEvent).where(or_(*(and_(UsageEvent.day == bindparam(f"d{i}"),
                                               UsageEvent.pseudonym == bindparam(f"p{i}"))
                                          for i in range(pairs))))


class Repository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: Base) -> None:
        self.session.add(row)

    def _postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    # --- ingest ------------------------------------------------------------------
    def insert_uses(self, uses: Sequence[UseRow]) -> int:
        """Insert, skipping events already stored (a redelivery) and events under a pseudonym
        excluded on their day (an objection or restriction recorded since they were published);
        returns how many were inserted. One statement for the batch, the exclusion checked by key.

        The driver's own executemany with plain tuples: this runs for every usage event, and
        building a parameter dict per row costs more than the insert itself.
        """
        if not uses:
            return 0
        columns = "id, day, region, feature, pseudonym, product, size_band"
        if self._postgres():
            rows: Sequence[tuple[object, ...]] = [(*u, u[1], u[4]) for u in uses]
            values = "%s, %s::date, %s, %s, %s::bigint, %s, %s"
            key = "day = %s::date AND pseudonym = %s::bigint"
        else:
            # SQLite holds a Date as its ISO text (as SQLAlchemy's Date type writes it).
            rows = [(u[0], day, *u[2:], day, u[4]) for u in uses for day in (u[1].isoformat(),)]
            values = ", ".join(["?"] * 7)
            key = "day = ? AND pseudonym = ?"
        result = self.session.connection().exec_driver_sql(
            f"INSERT INTO usage_events ({columns}) SELECT {values} WHERE NOT EXISTS "
            f"(SELECT 1 FROM excluded_pseudonyms WHERE {key}) ON CONFLICT DO NOTHING", rows)
        return int(result.rowcount or 0)

    def exclude_pseudonyms(self, found: Sequence[tuple[date, int]]) -> int:
        """Delete the events of these (day, pseudonym) pairs and refuse their later ones; returns
        the events deleted. Two statements however many days; an exclusion already recorded stays."""
        deleted = self.delete_events_of(found)
        if found:
            insert_ = pg_insert if self._postgres() else sqlite_insert
            self.session.connection().execute(
                insert_(ExcludedPseudonym).on_conflict_do_nothing(),
                [{"day": day, "pseudonym": who} for day, who in found])
        return deleted

    def delete_events_of(self, found: Sequence[tuple[date, int]]) -> int:
        """Delete the events of these (day, pseudonym) pairs in one statement (each pair a seek of
        the key); returns how many."""
        if not found:
            return 0
        params = {f"{name}{i}": value for i, pair in enumerate(found) for name, value in zip("dp", pair, strict=True)}
        result = self.session.connection().execute(_events_of(len(found)), params)
        return int(result.rowcount or 0)

    # --- roll-up -----------------------------------------------------------------
    def days_with_events(self, through: date) -> list[date]:
        """Days up to `through` that have events: one key seek per day, not a scan of the events."""
        days: list[date] = []
        current = self.session.scalar(select(func.min(UsageEvent.day)))
        while current is not None and current <= through:
            days.append(current)
            current = self.session.scalar(select(func.min(UsageEvent.day)).where(UsageEvent.day > current))
        return days

    def day_uses(self, day: date) -> Iterator[DayUse]:
        """Every event of `day` in pseudonym order, streamed (a server-side cursor on PostgreSQL):
        memory stays flat however many events the day has."""
        statement = (select(UsageEvent.pseudonym, UsageEvent.region, UsageEvent.feature, UsageEvent.product,
                            UsageEvent.size_band)
                     .where(UsageEvent.day == day).order_by(UsageEvent.pseudonym))
        connection = self.session.connection()
        if self._postgres():
            result = connection.execute(statement.execution_options(yield_per=STREAM_ROWS))
            for rows in result.partitions():
                yield from rows  # type: ignore[misc]
            return
        # SQLite: the driver's cursor in the session's transaction, its rows as they come (this
        # reads every event; result rows cost more than the read). The day as SQLite holds it.
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(str(statement.compile(connection)), (day.isoformat(),))
            while rows := cursor.fetchmany(STREAM_ROWS):
                yield from rows
        finally:
            cursor.close()

    def merge_cells(self, cells: Iterable[Cell]) -> None:
        """Store counts in bulk; a cell already there keeps the larger count (see AnalyticsService.rollup)."""
        values = [dict(zip((*_CELL_KEY, "users"), c, strict=True)) for c in cells]
        if not values:
            return
        statement: Executable
        if self._postgres():
            pg = pg_insert(UsageDaily)
            statement = pg.on_conflict_do_update(
                index_elements=list(_CELL_KEY), set_={"users": func.greatest(UsageDaily.users, pg.excluded.users)})
        else:
            lite = sqlite_insert(UsageDaily)
            # SQLite's two-argument max() is the larger of its arguments (not the aggregate).
            statement = lite.on_conflict_do_update(
                index_elements=list(_CELL_KEY), set_={"users": func.max(UsageDaily.users, lite.excluded.users)})
        connection = self.session.connection()
        for chunk in _chunks(values):
            connection.execute(statement, chunk)

    def cells_of_day(self, day: date) -> list[Cell]:
        """Every stored cell of one day: all features, "*", regions and dimensions."""
        rows = self.session.execute(
            select(UsageDaily.day, UsageDaily.region, UsageDaily.feature, UsageDaily.dimension,
                   UsageDaily.value, UsageDaily.users).where(UsageDaily.day == day)).all()
        return [(r[0], r[1], r[2], r[3], r[4], int(r[5])) for r in rows]

    def has_cells(self, day: date) -> bool:
        return self.session.scalar(select(func.count()).select_from(UsageDaily)
                                   .where(UsageDaily.day == day)) != 0

    def delete_day(self, day: date) -> int:
        result = self.session.execute(delete(UsageEvent).where(UsageEvent.day == day))
        self.session.execute(delete(ExcludedPseudonym).where(ExcludedPseudonym.day == day))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # --- released cells ------------------------------------------------------------
    def replace_released(self, day: date, cells: Iterable[ReleasedCell], min_group_size: int) -> None:
        """The day's released cells, replacing any computed before (late events, another threshold)."""
        self.session.execute(delete(UsageReleased).where(UsageReleased.day == day))
        columns = ("feature", "region", "dimension", "value", "users", "active", "suppressed")
        values = [{**dict(zip(columns, c, strict=True)), "day": day, "min_group_size": min_group_size}
                  for c in cells]
        connection = self.session.connection()
        for chunk in _chunks(values):
            connection.execute(insert(UsageReleased), chunk)

    def released(self, feature: str, region: str, dimension: str, first: date, last: date) -> list[ReleasedRow]:
        """Released cells of one feature ("*": the cells with active users), region row and
        dimension set in [first, last]: one range read of the table's key."""
        rows = self.session.connection().execute(_RELEASED, {
            "feature": feature, "region": region, "dimension": dimension, "first": first, "last": last}).all()
        return [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    def days_to_release(self, min_group_size: int) -> list[date]:
        """Days with counts but no cells released under this threshold."""
        released = select(UsageReleased.day).where(UsageReleased.min_group_size == min_group_size)
        return list(self.session.scalars(select(UsageDaily.day).distinct()
                                         .where(UsageDaily.day.not_in(released)).order_by(UsageDaily.day)).all())

    # --- queries -------------------------------------------------------------------
    def cells(self, feature: str, first: date, last: date) -> list[Cell]:
        """Every stored cell of `feature` and of "*" (denominators) in [first, last], all regions."""
        rows = self.session.execute(
            select(UsageDaily.day, UsageDaily.region, UsageDaily.feature, UsageDaily.dimension,
                   UsageDaily.value, UsageDaily.users)
            .where(UsageDaily.feature.in_((feature, "*")), UsageDaily.day >= first, UsageDaily.day <= last)
        ).all()
        return [(r[0], r[1], r[2], r[3], r[4], int(r[5])) for r in rows]

    def features(self) -> list[str]:
        return list(self.session.scalars(select(UsageDaily.feature).where(UsageDaily.feature != "*")
                                         .distinct().order_by(UsageDaily.feature)).all())

    # --- privacy budget ------------------------------------------------------------
    def spent(self, analyst: str, period: date) -> float:
        row = self.session.get(PrivacySpend, (analyst, period))
        return row.spent if row else 0.0

    def spend(self, analyst: str, period: date, epsilon: float) -> float:
        """Add `epsilon` to the ledger (row locked for the rest of the transaction); returns the total."""
        row = self.session.get(PrivacySpend, (analyst, period), with_for_update=True)
        if row is None:
            row = PrivacySpend(analyst=analyst, period=period, spent=0.0)
            self.session.add(row)
        row.spent += epsilon
        return row.spent

    # --- noisy answers ---------------------------------------------------------------
    def noisy_answer(self, analyst: str, request_id: str) -> NoisyAnswer | None:
        return self.session.get(NoisyAnswer, (analyst, request_id))

    def keep_noisy_answer(self, analyst: str, request_id: str, query: str, answer: str, now: datetime) -> None:
        self.session.add(NoisyAnswer(analyst=analyst, request_id=request_id, query=query, answer=answer,
                                     created=now))



# --- retention (governance.py): one batch each, in key order after the previous batch's last key ---
# No legal hold is consulted: nothing here can be tied to a subject id (a hold names one), and the
# analysts' ledger rows are named by a keyed hash, not by the staff account a hold would name.
def purge_noisy_answers(session: Session, cutoff: datetime, limit: int, after: Key | None) -> Batch:
    """Kept noisy answers made before `cutoff` (a retry comes within seconds, not a day later)."""
    query = select(NoisyAnswer.created, NoisyAnswer.analyst, NoisyAnswer.request_id).where(
        NoisyAnswer.created < cutoff)
    if after is not None:
        query = query.where(tuple_(NoisyAnswer.created, NoisyAnswer.analyst, NoisyAnswer.request_id) > tuple_(*after))
    rows = session.execute(query.order_by(NoisyAnswer.created, NoisyAnswer.analyst, NoisyAnswer.request_id)
                           .limit(limit)).all()
    if not rows:
        return Batch(0, 0, after)
    result = session.execute(delete(NoisyAnswer).where(
        tuple_(NoisyAnswer.analyst, NoisyAnswer.request_id).in_([(r[1], r[2]) for r in rows])))
    return Batch(len(rows), int(result.rowcount or 0), tuple(rows[-1]))  # type: ignore[attr-defined]


def purge_privacy_spend(session: Session, cutoff: datetime, limit: int, after: Key | None) -> Batch:
    """Ledger rows of budget periods that began before `cutoff`'s day. The rule's period is longer
    than a budget period, so the current period's row, which enforces the budget, is never due."""
    query = select(PrivacySpend.period, PrivacySpend.analyst).where(PrivacySpend.period < cutoff.date())
    if after is not None:
        query = query.where(tuple_(PrivacySpend.period, PrivacySpend.analyst) > tuple_(*after))
    rows = session.execute(query.order_by(PrivacySpend.period, PrivacySpend.analyst).limit(limit)).all()
    if not rows:
        return Batch(0, 0, after)
    result = session.execute(delete(PrivacySpend).where(
        tuple_(PrivacySpend.period, PrivacySpend.analyst).in_([(r[0], r[1]) for r in rows])))
    return Batch(len(rows), int(result.rowcount or 0), tuple(rows[-1]))  # type: ignore[attr-defined]
