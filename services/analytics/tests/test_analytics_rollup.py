"""Usage events: stored under a pseudonym, rolled up into counts, then deleted (N §3.3; R-DATA-3)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from analytics.events import HANDLERS
from analytics.models import FeatureUsageDaily, Inbox, Repository, UsageEvent
from analytics.service import AnalyticsService
from kaseum.events.v1 import envelope_pb2, rights_events_pb2
from kaseum.events.v1 import gateway_events_pb2 as gw
from servicekit.bus import Subscription, apply_once
from servicekit.db import UnitOfWorkFactory
from servicekit.errors import InvalidArgument
from servicekit.outbox import envelope
from sqlalchemy import func, select

DAY = date(2025, 3, 3)


def used(feature: str, pseudonym: str, day: date = DAY, region: str = "uk") -> envelope_pb2.Envelope:
    env = envelope("gateway.usage.feature_used", region, "", gw.FeatureUsed(feature=feature, pseudonym=pseudonym))
    env.occurred_at.FromDatetime(datetime(day.year, day.month, day.day, 15, tzinfo=UTC))
    return env


@pytest.fixture
def deliver(uow: UnitOfWorkFactory[Repository]) -> Any:
    sub = Subscription(durable="analytics", subjects=["uk.gateway.usage.feature_used"], handlers=HANDLERS,
                       uow_factory=uow, inbox_model=Inbox)
    return lambda env: apply_once(sub, env)


def count(uow: UnitOfWorkFactory[Repository], model: type) -> int:
    with uow() as u:
        return int(u.session.scalar(select(func.count()).select_from(model)) or 0)


def cells(uow: UnitOfWorkFactory[Repository]) -> dict[tuple[date, str], tuple[int, int]]:
    with uow() as u:
        rows = u.session.scalars(select(FeatureUsageDaily)).all()
        return {(r.day, r.feature): (r.users, r.active_users) for r in rows}


def test_a_feature_use_is_stored_once_even_if_redelivered(uow: UnitOfWorkFactory[Repository], deliver: Any) -> None:
    env = used("tickets.open", "p1")
    assert deliver(env) is True
    assert deliver(env) is False
    with uow() as u:
        [row] = u.session.scalars(select(UsageEvent)).all()
        assert (row.feature, row.pseudonym, row.day, row.region) == ("tickets.open", "p1", DAY, "uk")


def test_a_payload_of_another_type_fails_so_it_is_retried_then_dead_lettered(deliver: Any) -> None:
    env = envelope("gateway.usage.feature_used", "uk", "", rights_events_pb2.RequestCompleted(request_id="r"))
    with pytest.raises(ValueError):
        deliver(env)


def test_an_event_without_a_pseudonym_is_refused(deliver: Any) -> None:
    with pytest.raises(InvalidArgument):
        deliver(used("tickets.open", ""))


@pytest.mark.rule("R-DATA-3", "R-RET-1")
@pytest.mark.notice("3.3")
def test_rollup_counts_distinct_pseudonyms_then_deletes_the_events(
        service: AnalyticsService, uow: UnitOfWorkFactory[Repository], deliver: Any) -> None:
    for i in range(12):
        deliver(used("tickets.open", f"p{i}"))
        deliver(used("tickets.open", f"p{i}"))  # the same person twice is one user
    for i in range(3):
        deliver(used("tickets.reply", f"p{i}"))
    deliver(used("tickets.reply", "q"))
    deliver(used("tickets.open", "other-day", day=date(2025, 3, 4)))
    assert service.rollup(DAY) == 28
    assert cells(uow) == {(DAY, "tickets.open"): (12, 13), (DAY, "tickets.reply"): (4, 13)}
    with uow() as u:
        assert [e.day for e in u.session.scalars(select(UsageEvent)).all()] == [date(2025, 3, 4)]


@pytest.mark.rule("R-DATA-3")
def test_late_events_never_raise_a_count_above_what_is_known(
        service: AnalyticsService, uow: UnitOfWorkFactory[Repository], deliver: Any) -> None:
    for i in range(8):
        deliver(used("tickets.open", f"p{i}"))
    service.rollup(DAY)
    for i in range(6, 10):  # overlap unknowable once the first batch is gone: no sum
        deliver(used("tickets.open", f"p{i}"))
    deliver(used("tickets.reply", "x"))
    service.rollup(DAY)
    assert cells(uow) == {(DAY, "tickets.open"): (8, 8), (DAY, "tickets.reply"): (1, 8)}


@pytest.mark.rule("R-RET-1")
def test_only_finished_days_are_rolled_up(service: AnalyticsService, uow: UnitOfWorkFactory[Repository],
                                          deliver: Any) -> None:
    deliver(used("tickets.open", "a", day=date(2025, 3, 8)))
    deliver(used("tickets.open", "b", day=date(2025, 3, 9)))
    deliver(used("tickets.open", "c", day=date(2025, 3, 10)))  # today by the test clock
    assert service.rollup_finished_days() == [date(2025, 3, 8), date(2025, 3, 9)]
    assert count(uow, UsageEvent) == 1
    assert service.rollup_finished_days() == []
