"""Rotating pseudonym keys in the region's NATS bucket (N §3.3; R-DATA-3): one key per day shared by
every replica, made by whichever needs it first, unrecoverable once destroyed."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
from servicekit.bus import Bus
from servicekit.pseudonyms import (
    KEY_TTL_SECONDS,
    Exclusions,
    PseudonymKeys,
    key_ttl_seconds,
    keys_bucket,
    pseudonym,
)

from .conftest import started_bus

MONDAY, TUESDAY = date(2025, 3, 3), date(2025, 3, 4)


def test_replicas_racing_for_a_new_day_all_get_the_one_key(nats_url: str, region: str) -> None:
    buses = [started_bus(nats_url, region) for _ in range(3)]
    try:
        stores = [PseudonymKeys(b, region) for b in buses]
        with ThreadPoolExecutor(6) as pool:
            found = list(pool.map(lambda s: s.key(MONDAY, create=True), stores * 2))
        assert len(set(found)) == 1 and len(found[0] or b"") == 32
    finally:
        for b in buses:
            b.stop()


def test_without_create_a_missing_key_is_not_made(keys: PseudonymKeys) -> None:
    assert keys.key(MONDAY) is None
    assert keys.key(MONDAY) is None


@pytest.mark.rule("R-DATA-3")
@pytest.mark.notice("3.3")
def test_pseudonyms_differ_between_days_and_cannot_be_recomputed_after_the_key_is_destroyed(
        keys: PseudonymKeys) -> None:
    monday, tuesday = keys.key(MONDAY, create=True), keys.key(TUESDAY, create=True)
    assert monday and tuesday and monday != tuesday
    yesterday_pseudonym = pseudonym(monday, "subject-1")
    assert yesterday_pseudonym != pseudonym(tuesday, "subject-1")  # no link across days
    assert keys.destroy_through(MONDAY) == [MONDAY]
    assert keys.key(MONDAY) is None
    # Even a process that needs Monday again gets a new key: the old pseudonyms are gone for good.
    remade = keys.key(MONDAY, create=True)
    assert remade and remade != monday and pseudonym(remade, "subject-1") != yesterday_pseudonym
    assert keys.key(TUESDAY) == tuesday


@pytest.mark.rule("R-DATA-3")
def test_the_bucket_destroys_keys_by_itself_after_its_ttl(bus: Bus, region: str) -> None:
    short = PseudonymKeys(bus, region, ttl=1.0)
    assert short.key(MONDAY, create=True) is not None
    deadline = time.monotonic() + 10
    while short.key(MONDAY) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert short.key(MONDAY) is None


@pytest.mark.rule("R-OBJ-1", "R-RESTRICT-1")
def test_the_exclusion_list_keeps_each_reason_apart(exclusions: Exclusions) -> None:
    exclusions.set("s1", "objected", True)
    exclusions.set("s1", "restricted", True)
    assert exclusions.reasons("s1") == ["objected", "restricted"] and exclusions.reasons("s2") == []
    exclusions.set("s1", "restricted", False)
    assert exclusions.reasons("s1") == ["objected"]
    exclusions.forget("s1")
    assert exclusions.reasons("s1") == []
    with pytest.raises(ValueError):
        exclusions.set("s1", "bored", True)
    with pytest.raises(ValueError):
        exclusions.set("s1.>", "objected", True)


@pytest.mark.notice("3.3")
@pytest.mark.rule("R-DATA-3")
@pytest.mark.parametrize("grace_hours", [1, 4, 12])
def test_no_key_expires_before_its_day_is_rolled_up(grace_hours: int) -> None:
    # A key made as its day starts is needed (erasure, exclusion) until the roll-up: the day's end,
    # the grace, and up to one roll-up interval later. The old fixed 26 h failed from a 2 h grace.
    grace, interval = grace_hours * 3600.0, 600.0
    assert key_ttl_seconds(grace, interval) > 24 * 3600 + grace + interval
    assert key_ttl_seconds() == KEY_TTL_SECONDS


@pytest.mark.notice("3.3")
def test_analytics_gives_a_bucket_made_by_a_gateway_the_ttl_of_its_roll_up(bus: Bus, region: str) -> None:
    day = date(2025, 3, 10)
    made = PseudonymKeys(bus, region).key(day, create=True)  # as a gateway would, first
    ttl = key_ttl_seconds(rollup_grace_seconds=4 * 3600)
    assert PseudonymKeys(bus, region, ttl=ttl, enforce_ttl=True).key(day) == made  # the key is kept

    async def max_age() -> float:
        assert bus.js is not None
        return float((await bus.js.stream_info(f"KV_{keys_bucket(region)}")).config.max_age or 0)

    assert asyncio.run_coroutine_threadsafe(max_age(), bus.loop).result(5) == pytest.approx(ttl)
