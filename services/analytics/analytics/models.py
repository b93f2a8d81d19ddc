"""Analytics' tables and the repository: the only module that knows them.

No table holds a name, an address or a subject id. Usage events carry a pseudonym under a key
that rotates every day and is destroyed once the day is rolled up; they and the day's excluded
pseudonyms are deleted by that roll-up. What remains is counts of distinct users per day, per
region, feature and coarse dimension value. The privacy-budget ledger is keyed by a keyed hash
of the analyst's (staff) account id, never the id.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date

from servicekit.outbox import InboxMixin, OutboxMixin
from sqlalchemy import Date, Float, Index, Integer, String, and_, delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Outbox(OutboxMixin, Base):
    pass


class Inbox(InboxMixin, Base):
    pass


class UsageEvent(Base):
    """One use of a feature under that day's pseudonym; deleted when the day is rolled up."""

    __tablename__ = "usage_events"
    __table_args__ = (Index("ix_usage_events_day_pseudonym", "day", "pseudonym"),)

    # The event's id (JetStream de-duplicates on it; a redelivery inserts nothing).
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    region: Mapped[str] = mapped_column(String(8))
    feature: Mapped[str] = mapped_column(String(100))
    pseudonym: Mapped[str] = mapped_column(String(128))
    product: Mapped[str] = mapped_column(String(40), default="")
    size_band: Mapped[str] = mapped_column(String(10), default="")


class ExcludedPseudonym(Base):
    """A pseudonym of a day whose subject objected or is restricted; events under it are refused.

    Lives exactly as long as the day's events (deleted by the same roll-up).
    """

    __tablename__ = "excluded_pseudonyms"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(128), primary_key=True)


class UsageDaily(Base):
    """Distinct users on one day. `feature` "*" is any feature (the active-user denominator);
    `dimension` "all" (value "") is the whole region, else "product" or "org_size_band"."""

    __tablename__ = "usage_daily"
    __table_args__ = (Index("ix_usage_daily_feature_day", "feature", "day"),)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    region: Mapped[str] = mapped_column(String(8), primary_key=True)
    feature: Mapped[str] = mapped_column(String(100), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(20), primary_key=True)
    value: Mapped[str] = mapped_column(String(40), primary_key=True)
    users: Mapped[int] = mapped_column(Integer)


class PrivacySpend(Base):
    """Epsilon an analyst spent in a budget period; `analyst` is a keyed hash of the account id."""

    __tablename__ = "privacy_spend"

    analyst: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[date] = mapped_column(Date, primary_key=True)
    spent: Mapped[float] = mapped_column(Float)


# (day, region, feature, dimension, value, users)
Cell = tuple[date, str, str, str, str, int]
# (event id, day, region, feature, pseudonym, product, size band)
UseRow = tuple[str, date, str, str, str, str, str]


class Repository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: Base) -> None:
        self.session.add(row)

    # --- ingest ------------------------------------------------------------------
    def excluded_among(self, keys: set[tuple[date, str]]) -> set[tuple[date, str]]:
        if not keys:
            return set()
        rows = self.session.execute(select(ExcludedPseudonym.day, ExcludedPseudonym.pseudonym)
                                    .where(tuple_(ExcludedPseudonym.day, ExcludedPseudonym.pseudonym)
                                           .in_(list(keys)))).all()
        return {(r[0], r[1]) for r in rows}

    def insert_uses(self, uses: Sequence[UseRow]) -> None:
        """Insert, skipping event ids already stored (a redelivery)."""
        if not uses:
            return
        columns = ("id", "day", "region", "feature", "pseudonym", "product", "size_band")
        values = [dict(zip(columns, u, strict=True)) for u in uses]
        insert = pg_insert if self.session.get_bind().dialect.name == "postgresql" else sqlite_insert
        self.session.execute(insert(UsageEvent).on_conflict_do_nothing(index_elements=["id"]), values)

    def exclude_pseudonym(self, day: date, pseudonym: str) -> int:
        """Delete the pseudonym's events of `day` and refuse its later ones; returns deleted."""
        deleted = self.delete_events_of(day, pseudonym)
        if self.session.get(ExcludedPseudonym, (day, pseudonym)) is None:
            self.session.add(ExcludedPseudonym(day=day, pseudonym=pseudonym))
        return deleted

    def delete_events_of(self, day: date, pseudonym: str) -> int:
        result = self.session.execute(delete(UsageEvent).where(
            and_(UsageEvent.day == day, UsageEvent.pseudonym == pseudonym)))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # --- roll-up -----------------------------------------------------------------
    def days_with_events(self, through: date) -> list[date]:
        return list(self.session.scalars(
            select(UsageEvent.day).where(UsageEvent.day <= through).distinct().order_by(UsageEvent.day)
        ).all())

    def distinct_uses(self, day: date) -> Iterator[tuple[str, str, str, str, str]]:
        """(region, feature, product, size band, pseudonym) of one day, each once, streamed."""
        result = self.session.execute(
            select(UsageEvent.region, UsageEvent.feature, UsageEvent.product, UsageEvent.size_band,
                   UsageEvent.pseudonym).where(UsageEvent.day == day).distinct(),
            execution_options={"yield_per": 20000})
        for row in result:
            yield row[0], row[1], row[2], row[3], row[4]

    def merge_cells(self, cells: Iterable[Cell]) -> None:
        """Store counts; a cell already there keeps the larger count (see AnalyticsService.rollup)."""
        for day, region, feature, dimension, value, users in cells:
            row = self.session.get(UsageDaily, (day, region, feature, dimension, value))
            if row is None:
                self.session.add(UsageDaily(day=day, region=region, feature=feature, dimension=dimension,
                                            value=value, users=users))
            else:
                row.users = max(row.users, users)

    def has_cells(self, day: date) -> bool:
        return self.session.scalar(select(func.count()).select_from(UsageDaily)
                                   .where(UsageDaily.day == day)) != 0

    def delete_day(self, day: date) -> int:
        result = self.session.execute(delete(UsageEvent).where(UsageEvent.day == day))
        self.session.execute(delete(ExcludedPseudonym).where(ExcludedPseudonym.day == day))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

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
