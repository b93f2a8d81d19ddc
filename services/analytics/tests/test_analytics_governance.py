"""Analytics' governance: every column declares its category, the schedule shows how long each is
kept, and the purge removes exactly the kept noisy answers and budget rows that are due (time
injected); usage events are left to the roll-up, which counts them before deleting them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from analytics.governance import DECLARATION, declaration, retention
from analytics.models import Base, NoisyAnswer, PrivacySpend, PurgeRun, Repository, UsageEvent
from analytics.queries import AnalyticsQueries
from servicekit.caller import Principal
from servicekit.db import UnitOfWorkFactory
from servicekit.declarations import NOT_PERSONAL, columns_of, undeclared
from servicekit.errors import Throttled
from servicekit.retention import Purger
from servicekit.testing import Clock
from sqlalchemy import func, select

from .test_analytics_feature_usage import band_day, noisy


def purger(uow: UnitOfWorkFactory[Repository], clock: Clock) -> Purger:
    return Purger(retention(), uow.session_factory, PurgeRun, clock, batch_size=2, sleep=lambda _: None)


def rows(uow: UnitOfWorkFactory[Repository], model: Any) -> int:
    with uow() as u:
        return int(u.session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.mark.notice("3.2.1")
@pytest.mark.notice("3.2.2")
@pytest.mark.notice("3.2.3")
@pytest.mark.notice("3.2.4")
@pytest.mark.notice("3.2.5")
@pytest.mark.notice("3.2.6")
@pytest.mark.rule("R-DATA-1")
def test_every_column_is_declared_and_every_stored_category_has_a_purpose_and_a_rule() -> None:
    assert undeclared(Base.metadata) == []
    assert DECLARATION.problems() == []
    declared = {(t, c): cat for t, c, cat in columns_of(Base.metadata)}
    # Pseudonymous events are personal data until the roll-up; what the roll-up leaves is not.
    assert {cat for (t, _), cat in declared.items() if t in ("usage_events", "excluded_pseudonyms")} == {"3.2.5"}
    assert {cat for (t, _), cat in declared.items() if t in ("usage_daily", "usage_released")} == {NOT_PERSONAL}
    assert declared[("privacy_spend", "analyst")] == declared[("noisy_answers", "analyst")] == "3.2.1"
    assert [p.clause for p in DECLARATION.purposes if "3.2.5" in p.categories] == ["4.1.4"]


@pytest.mark.notice("12.1")
@pytest.mark.notice("12.2")
@pytest.mark.rule("R-RET-1")
def test_the_schedule_shows_the_roll_up_as_the_purge_of_usage_events() -> None:
    rules = {r.name: r for r in declaration(rollup_grace_seconds=7200).retention}
    for name in ("usage_events", "excluded_pseudonyms"):
        # Deleted by the roll-up once counted; a purge job deleting them too could drop an uncounted day.
        assert rules[name].purge is None and "2 h" in rules[name].trigger and "roll-up" in rules[name].trigger
    assert "1 h" in {r.name: r for r in DECLARATION.retention}["usage_events"].trigger
    assert rules["aggregates"].category == NOT_PERSONAL and rules["aggregates"].purge is None
    assert (rules["noisy_answers"].period, rules["privacy_spend"].period) == ("1 days", "2 months")


@pytest.mark.notice("12.1")
@pytest.mark.notice("12.2")
@pytest.mark.rule("R-RET-2")
def test_the_purge_never_deletes_usage_events(uow: UnitOfWorkFactory[Repository], clock: Clock) -> None:
    with uow() as u:
        u.repo.insert_uses([("e1", date(2020, 1, 1), "uk", "tickets.open", 7, "", "")])
        u.commit()
    clock.advance(days=3000)
    assert [r.name for r in purger(uow, clock).rules] == ["noisy_answers", "privacy_spend",
                                                      "access_and_transfer_records"]
    purger(uow, clock).run_once()
    assert rows(uow, UsageEvent) == 1


@pytest.mark.notice("12.1")
@pytest.mark.notice("12.2")
@pytest.mark.rule("R-RET-2")
def test_kept_noisy_answers_are_purged_after_a_day_and_no_sooner(
        uow: UnitOfWorkFactory[Repository], queries: AnalyticsQueries, person: Any, daily: Any,
        clock: Clock) -> None:
    band_day(daily, {"1-9": 400, "250+": 600}, {"1-9": 800, "250+": 1200})
    analyst = person(subject_id="analyst-f")
    for n in range(2):
        noisy(queries, analyst, f"old-{n}")
    clock.advance(hours=20)
    noisy(queries, analyst, "young")  # the budget (3) is now spent
    clock.advance(hours=3, minutes=59)  # the first two are 23:59 old
    assert purger(uow, clock).run_once()[0].purged == 0
    clock.advance(minutes=2)
    result = purger(uow, clock).run_once()[0]
    assert (result.rule, result.purged) == ("noisy_answers", 2)
    with uow() as u:
        assert list(u.session.scalars(select(NoisyAnswer.request_id))) == ["young"]
        run = u.session.scalars(select(PurgeRun)).one()  # counts, not contents
        assert (run.rule, run.purged) == ("noisy_answers", 2)
    # A purged id asks anew and is charged anew: refused, the budget being spent; the kept one is
    # answered again without a charge.
    with pytest.raises(Throttled):
        noisy(queries, analyst, "old-0")
    noisy(queries, analyst, "young")
    assert queries.budget(analyst).spent == 3.0


def spend(uow: UnitOfWorkFactory[Repository], analyst: str, period: date, spent: float) -> None:
    with uow() as u:
        u.repo.add(PrivacySpend(analyst=analyst, period=period, spent=spent))
        u.commit()


def ledger(uow: UnitOfWorkFactory[Repository]) -> list[tuple[str, date]]:
    with uow() as u:
        return sorted((r.analyst, r.period) for r in u.session.scalars(select(PrivacySpend)))


@pytest.mark.notice("12.1")
@pytest.mark.notice("12.2")
@pytest.mark.rule("R-RET-2")
def test_a_budget_period_is_kept_through_the_next_month_then_purged(
        uow: UnitOfWorkFactory[Repository], queries: AnalyticsQueries, person: Any, clock: Clock) -> None:
    analyst: Principal = person(subject_id="analyst-b")
    me = queries._analyst(analyst)
    for who in ("a", "b", "c"):
        spend(uow, who, date(2025, 1, 1), 1.0)
    spend(uow, "a", date(2025, 2, 1), 1.0)
    spend(uow, me, date(2025, 3, 1), 2.5)
    clock.now = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)
    # January's spending can still be checked for the whole of February.
    assert purger(uow, clock).run_once()[1].purged == 0
    clock.now = datetime(2025, 3, 31, 23, 0, tzinfo=UTC)
    result = purger(uow, clock).run_once()[1]
    assert (result.rule, result.purged, result.batches) == ("privacy_spend", 3, 2)
    assert ledger(uow) == sorted([("a", date(2025, 2, 1)), (me, date(2025, 3, 1))])
    # The current month's row, which enforces the budget, is never due.
    assert queries.budget(analyst).spent == 2.5
    clock.now = datetime(2025, 4, 2, tzinfo=UTC)
    purger(uow, clock).run_once()
    assert ledger(uow) == [(me, date(2025, 3, 1))]
