"""Usage events: stored under a day's pseudonym, rolled up into counts, then deleted with the
day's key (N §3.3, §4.1.4; R-DATA-3, R-RET-1)."""

from __future__ import annotations

import tracemalloc
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
from analytics import models
from analytics.__main__ import MIGRATIONS
from analytics.events import parse_use
from analytics.models import ExcludedPseudonym, Repository, UsageDaily, UsageEvent
from analytics.service import AnalyticsService, Use, day_cells, stored_pseudonym
from hypothesis import given
from hypothesis import strategies as st
from kaseum.events.v1 import gateway_events_pb2 as gw
from kaseum.events.v1 import rights_events_pb2
from servicekit.db import UnitOfWorkFactory, make_engine
from servicekit.migrations import upgrade
from servicekit.outbox import envelope
from servicekit.pseudonyms import PseudonymKeys, pseudonym
from servicekit.testing import Clock
from sqlalchemy import func, select, text

DAY = date(2025, 3, 3)


def who(n: int | str) -> str:
    return pseudonym(b"test-key", f"subject-{n}")


def use(service: AnalyticsService, feature: str, n: int | str, day: date = DAY, product: str = "",
        band: str = "", event_id: str = "") -> Use:
    return Use(event_id or uuid.uuid4().hex, day, service.region, feature, who(n), product, band)


def count(uow: UnitOfWorkFactory[Repository], model: type) -> int:
    with uow() as u:
        return int(u.session.scalar(select(func.count()).select_from(model)) or 0)


def cells(uow: UnitOfWorkFactory[Repository], dimension: str = "all") -> dict[tuple[date, str, str], int]:
    with uow() as u:
        rows = u.session.scalars(select(UsageDaily).where(UsageDaily.dimension == dimension)).all()
        return {(r.day, r.feature, r.value): r.users for r in rows}


def test_a_usage_message_is_parsed_and_anything_else_is_dropped(region: str) -> None:
    event = gw.FeatureUsed(feature="tickets.open", pseudonym=who(1), period="2025-03-03", product="billing",
                           org_size_band="10-49")
    env = envelope("gateway.usage.feature_used", region, "", event)
    assert parse_use(env.SerializeToString()) == Use(env.id, DAY, region, "tickets.open", who(1), "billing",
                                                     "10-49")
    other = envelope("gateway.usage.feature_used", region, "", rights_events_pb2.RequestCompleted(request_id="r"))
    assert parse_use(other.SerializeToString()) is None
    assert parse_use(b"\xff not a protobuf") is None
    no_day = envelope("gateway.usage.feature_used", region, "", gw.FeatureUsed(feature="x", pseudonym=who(1)))
    assert parse_use(no_day.SerializeToString()) is None


def test_a_batch_is_stored_once_even_if_redelivered(service: AnalyticsService,
                                                     uow: UnitOfWorkFactory[Repository]) -> None:
    batch = [use(service, "tickets.open", i) for i in range(5)]
    assert service.ingest(batch) == 5
    assert service.ingest(batch) == 0  # a redelivery: same event ids
    assert count(uow, UsageEvent) == 5


@pytest.mark.rule("R-DATA-3")
def test_malformed_uses_and_other_regions_are_dropped_and_free_text_never_becomes_a_dimension(
        service: AnalyticsService, uow: UnitOfWorkFactory[Repository]) -> None:
    service.ingest([
        Use("a" * 32, DAY, service.region, "tickets.open", "not-a-hash"),
        Use("b" * 32, DAY, service.region, "Tickets Open!", who(1)),
        Use("c" * 32, DAY, "eu", "tickets.open", who(1)),
        use(service, "tickets.open", 2, product="Ada Lovelace's secret project", band="12 people"),
    ])
    with uow() as u:
        [row] = u.session.scalars(select(UsageEvent)).all()
    assert (row.product, row.size_band) == ("other", "")


@pytest.mark.rule("R-DATA-3", "R-RET-1")
@pytest.mark.notice("3.3")
def test_rollup_counts_distinct_pseudonyms_per_dimension_then_deletes_the_events(
        service: AnalyticsService, uow: UnitOfWorkFactory[Repository]) -> None:
    uses = []
    for i in range(12):
        band = "1-9" if i < 4 else "250+"
        uses += [use(service, "tickets.open", i, product="billing", band=band),
                 use(service, "tickets.open", i, product="billing", band=band)]  # one person twice: one user
    uses += [use(service, "tickets.open", 0, product="support", band="1-9")]
    uses += [use(service, "tickets.reply", i, band="250+") for i in range(3, 6)]
    uses += [use(service, "tickets.reply", "q")]
    uses += [use(service, "tickets.open", "other-day", day=DAY + timedelta(days=1))]
    service.ingest(uses)
    assert service.rollup(DAY) == 29
    assert cells(uow) == {(DAY, "tickets.open", ""): 12, (DAY, "tickets.reply", ""): 4, (DAY, "*", ""): 13}
    assert cells(uow, "product") == {(DAY, "tickets.open", "billing"): 12, (DAY, "tickets.open", "support"): 1,
                                     (DAY, "tickets.reply", "none"): 4, (DAY, "*", "billing"): 12,
                                     (DAY, "*", "support"): 1, (DAY, "*", "none"): 4}
    bands = cells(uow, "org_size_band")
    assert (bands[(DAY, "tickets.open", "1-9")], bands[(DAY, "tickets.open", "250+")]) == (4, 8)
    assert bands[(DAY, "*", "unknown")] == 1
    with uow() as u:
        assert [e.day for e in u.session.scalars(select(UsageEvent)).all()] == [DAY + timedelta(days=1)]


@pytest.mark.rule("R-DATA-3")
def test_late_events_never_raise_a_count_above_what_is_known(
        service: AnalyticsService, uow: UnitOfWorkFactory[Repository]) -> None:
    service.ingest([use(service, "tickets.open", i) for i in range(8)])
    service.rollup(DAY)
    # Overlap is unknowable once the first batch is gone: no sum.
    service.ingest([use(service, "tickets.open", i) for i in range(6, 10)] + [use(service, "tickets.reply", "x")])
    service.rollup(DAY)
    assert cells(uow) == {(DAY, "tickets.open", ""): 8, (DAY, "tickets.reply", ""): 1, (DAY, "*", ""): 8}


@pytest.mark.rule("R-RET-1", "R-DATA-3")
@pytest.mark.notice("3.3")
def test_a_day_is_rolled_up_an_hour_after_it_ends_and_its_key_is_destroyed(
        service: AnalyticsService, uow: UnitOfWorkFactory[Repository], keys: PseudonymKeys, clock: Clock) -> None:
    clock.now = clock.now.replace(day=11, hour=0, minute=30)  # 00:30 on 11 March
    for d in (8, 9, 10, 11):
        assert keys.key(date(2025, 3, d), create=True) is not None
        service.ingest([use(service, "tickets.open", d, day=date(2025, 3, d))])
        service.ingest([use(service, "tickets.open", d, day=date(2025, 3, d))])
    assert service.rollup_finished_days() == [date(2025, 3, 8), date(2025, 3, 9)]
    # The 10th ended only 30 minutes ago: late events may still come, its key still lives.
    assert keys.key(date(2025, 3, 10)) is not None and keys.key(date(2025, 3, 9)) is None
    assert keys.key(date(2025, 3, 8)) is None
    clock.advance(minutes=31)
    assert service.rollup_finished_days() == [date(2025, 3, 10)]
    assert keys.key(date(2025, 3, 10)) is None and keys.key(date(2025, 3, 11)) is not None
    with uow() as u:
        assert [e.day for e in u.session.scalars(select(UsageEvent)).all()] == [date(2025, 3, 11)] * 2
    assert count(uow, ExcludedPseudonym) == 0


# --- the roll-up's one pass -----------------------------------------------------------------------
def naive_cells(day: date, uses: list[tuple[int, str, str, str, str]]) -> set[tuple[date, str, str, str, str, int]]:
    """Distinct users per cell, the obvious way: a set of pseudonyms per cell."""
    sets: dict[tuple[str, str, str, str], set[int]] = {}
    for who_, region, feature, product, band in uses:
        for f in (feature, "*"):
            for d, v in (("all", ""), ("product", product or "none"), ("org_size_band", band or "unknown")):
                sets.setdefault((region, f, d, v), set()).add(who_)
    return {(day, r, f, d, v, len(s)) for (r, f, d, v), s in sets.items()}


@pytest.mark.rule("R-DATA-3")
@given(st.lists(st.tuples(st.integers(-5, 30), st.sampled_from(["uk", "eu"]), st.sampled_from(["a.x", "b.y"]),
                          st.sampled_from(["", "billing", "support"]), st.sampled_from(["", "1-9", "250+"])),
                max_size=80))
def test_the_one_pass_count_equals_counting_sets_of_pseudonyms(
        uses: list[tuple[int, str, str, str, str]]) -> None:
    ordered = sorted(uses, key=lambda u: u[0])
    cells = day_cells(DAY, ordered)
    assert len(cells) == len(set(cells)) and set(cells) == naive_cells(DAY, ordered)


@pytest.mark.rule("R-DATA-3")
def test_events_out_of_pseudonym_order_are_refused_rather_than_counted_twice() -> None:
    with pytest.raises(ValueError, match="pseudonym order"):
        day_cells(DAY, [(2, "uk", "a.x", "", ""), (1, "uk", "a.x", "", ""), (2, "uk", "a.x", "", "")])


def rolled_up_peak(service: AnalyticsService, uow: UnitOfWorkFactory[Repository], people: int, day: date) -> int:
    """Peak memory (bytes) while `day` is rolled up, after storing 4 events for each of `people`."""
    rows = [(uuid.uuid4().hex, day, service.region, f"feature.f{i % 4}", stored_pseudonym(who(n)), "billing",
             "1-9") for n in range(people) for i in range(4)]
    with uow() as u:
        u.repo.insert_uses(rows)
        u.commit()
    del rows
    tracemalloc.start()
    try:
        service.rollup(day)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.rule("R-RET-1")
def test_the_rollup_streams_a_day_so_memory_does_not_grow_with_its_events(
        service: AnalyticsService, uow: UnitOfWorkFactory[Repository], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "STREAM_ROWS", 500)
    small = rolled_up_peak(service, uow, 250, DAY)         # 1 000 events
    large = rolled_up_peak(service, uow, 4000, DAY + timedelta(days=1))  # 16 000 events
    # Holding the day's events would take 16 times the memory; streaming takes about the same.
    assert large < 2 * small, (small, large)
    assert cells(uow)[(DAY + timedelta(days=1), "*", "")] == 4000 and count(uow, UsageEvent) == 0


@pytest.mark.rule("R-RET-1")
def test_the_migration_carries_unrolled_events_over_under_their_stored_pseudonym(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    upgrade(MIGRATIONS, url, "aeaf1df81094")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO usage_events (id, day, region, feature, pseudonym, product, size_band) "
                          "VALUES ('e1', '2025-03-03', 'uk', 'tickets.open', :p, 'billing', '1-9')"), {"p": who(1)})
        conn.execute(text("INSERT INTO excluded_pseudonyms (day, pseudonym) VALUES ('2025-03-03', :p)"),
                     {"p": who(2)})
    upgrade(MIGRATIONS, url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id, pseudonym FROM usage_events")).all() == [
            ("e1", stored_pseudonym(who(1)))]
        assert conn.execute(text("SELECT pseudonym FROM excluded_pseudonyms")).scalars().all() == [
            stored_pseudonym(who(2))]
    engine.dispose()
