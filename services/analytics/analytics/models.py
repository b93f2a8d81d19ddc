"""Analytics' tables and the repository: the only module that knows them.

No table holds a name, an address or a subject id of usage: events carry a daily-rotated
pseudonym and live only until their day is rolled up; aggregates are counts per day.
"""

from __future__ import annotations

from datetime import date

from servicekit.outbox import InboxMixin, OutboxMixin
from servicekit.personal_data import table_of
from servicekit.restrictions import RestrictionMixin, is_restricted, set_restricted
from servicekit.subject_data import TableRows
from sqlalchemy import Date, Index, Integer, String, delete, distinct, func, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Outbox(OutboxMixin, Base):
    pass


class Inbox(InboxMixin, Base):
    pass


class Restriction(RestrictionMixin, Base):
    """Subjects who asked for restriction (Art. 18), as the rights service told us."""


class UsageEvent(Base):
    """One use of a feature under that day's pseudonym; deleted when the day is rolled up."""

    __tablename__ = "usage_events"
    __table_args__ = (Index("ix_usage_events_day_feature", "day", "feature"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    feature: Mapped[str] = mapped_column(String(100))
    pseudonym: Mapped[str] = mapped_column(String(128))
    day: Mapped[date] = mapped_column(Date)
    region: Mapped[str] = mapped_column(String(8))


class FeatureUsageDaily(Base):
    """Distinct users of a feature on one day, and all active users that day (the denominator)."""

    __tablename__ = "feature_usage_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    feature: Mapped[str] = mapped_column(String(100), primary_key=True)
    region: Mapped[str] = mapped_column(String(8), primary_key=True)
    users: Mapped[int] = mapped_column(Integer)
    active_users: Mapped[int] = mapped_column(Integer)


class Repository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: Base) -> None:
        self.session.add(row)

    # --- rollup ------------------------------------------------------------------
    def days_with_events(self, before: date) -> list[date]:
        return list(self.session.scalars(
            select(UsageEvent.day).where(UsageEvent.day < before).distinct().order_by(UsageEvent.day)
        ).all())

    def distinct_users(self, day: date) -> list[tuple[str, str, int]]:
        """(feature, region, distinct pseudonyms) of one day's events."""
        rows = self.session.execute(
            select(UsageEvent.feature, UsageEvent.region, func.count(distinct(UsageEvent.pseudonym)))
            .where(UsageEvent.day == day).group_by(UsageEvent.feature, UsageEvent.region)
        ).all()
        return [(r[0], r[1], int(r[2])) for r in rows]

    def active_users(self, day: date) -> dict[str, int]:
        """Distinct pseudonyms of one day per region, whatever feature they used."""
        rows = self.session.execute(
            select(UsageEvent.region, func.count(distinct(UsageEvent.pseudonym)))
            .where(UsageEvent.day == day).group_by(UsageEvent.region)
        ).all()
        return {r[0]: int(r[1]) for r in rows}

    def daily(self, day: date, feature: str, region: str) -> FeatureUsageDaily | None:
        return self.session.get(FeatureUsageDaily, (day, feature, region))

    def level_active_users(self, day: date, region: str, at_least: int) -> None:
        """Give every feature of a day one denominator: the largest active count known for it."""
        self.session.flush()
        top = self.session.scalar(
            select(func.max(FeatureUsageDaily.active_users))
            .where(FeatureUsageDaily.day == day, FeatureUsageDaily.region == region)
        ) or 0
        self.session.execute(
            update(FeatureUsageDaily)
            .where(FeatureUsageDaily.day == day, FeatureUsageDaily.region == region)
            .values(active_users=max(top, at_least))
        )

    def delete_events(self, day: date) -> int:
        result = self.session.execute(delete(UsageEvent).where(UsageEvent.day == day))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # --- queries -------------------------------------------------------------------
    def usage(self, feature: str, region: str, first: date, last: date) -> list[FeatureUsageDaily]:
        return list(self.session.scalars(
            select(FeatureUsageDaily).where(
                FeatureUsageDaily.feature == feature, FeatureUsageDaily.region == region,
                FeatureUsageDaily.day >= first, FeatureUsageDaily.day <= last,
            ).order_by(FeatureUsageDaily.day)
        ).all())

    # --- restriction -----------------------------------------------------------------
    def restriction_rows(self, subject_id: str) -> list[TableRows]:
        rows = self.session.scalars(select(Restriction).where(Restriction.subject_id == subject_id)).all()
        return [table_of("restrictions", "usage", Restriction, rows)] if rows else []

    def set_restricted(self, subject_id: str, restricted: bool) -> bool:
        return set_restricted(self.session, Restriction, subject_id, restricted)

    def is_restricted(self, subject_id: str) -> bool:
        return is_restricted(self.session, Restriction, subject_id)
