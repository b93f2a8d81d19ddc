"""Aggregates combined across regions: two analytics services of two regions, real gRPC between them.
Only released cells cross (never events or pseudonyms), a combined cell is a sum or suppressed, no
subtraction recovers a hidden cell, and a region that does not answer is named (N §3.3, §4.1.4;
R-DATA-3)."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import grpc
import pytest
from analytics.__main__ import MIGRATIONS
from analytics.models import Outbox, Repository, UsageDaily
from analytics.peers import PEER_HEADER, mint_peer_token
from analytics.service import release_day
from kaseum.analytics.v1 import analytics_pb2, analytics_pb2_grpc
from servicekit.caller import person_metadata
from servicekit.db import UnitOfWorkFactory
from servicekit.testing import migrated_uow, solve_by_differences

from tests.support.api import Api, staff
from tests.support.databases import fresh_database_urls
from tools.stack import Stack, free_port

KASEUM = str(Path(sys.executable).parent / "kaseum")
PEER_SECRET = secrets.token_urlsafe(40)
EU = "analytics-eu"
MONDAY = date(2025, 3, 3)
# uk: one small group (1-9, 3 users), hidden with a complement; eu: every group large enough.
UK_BANDS, UK_ACTIVE = {"1-9": 3, "10-49": 14, "250+": 20}, {"1-9": 5, "10-49": 30, "250+": 40}
EU_BANDS, EU_ACTIVE = {"1-9": 11, "10-49": 12}, {"1-9": 20, "10-49": 20}


def store_day(uow: UnitOfWorkFactory[Repository], region: str, bands: dict[str, int], active: dict[str, int]) -> None:
    """One rolled-up day, released as the roll-up does (threshold 10, the services' default)."""
    rows = [("tickets.open", "all", "", sum(bands.values())), ("*", "all", "", sum(active.values()))]
    rows += [("tickets.open", "org_size_band", b, n) for b, n in bands.items()]
    rows += [("*", "org_size_band", b, n) for b, n in active.items()]
    with uow() as u:
        u.session.add_all([UsageDaily(day=MONDAY, region=region, feature=f, dimension=d, value=v, users=n)
                           for f, d, v, n in rows])
        u.session.flush()
        release_day(u.repo, MONDAY, 10)
        u.commit()


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The uk region's whole system, peering with an eu analytics service: another process, with
    its own database, its own KASEUM_SERVICE_SECRET, and only the peer secret in common."""
    var = tmp_path_factory.mktemp("regions")
    eu_port = free_port()
    stack = Stack.on_free_ports(var, extra_env={**fresh_database_urls(),
                                                "ANALYTICS_PEERS": f"eu=127.0.0.1:{eu_port}",
                                                "ANALYTICS_PEER_SECRET": PEER_SECRET})
    eu_url = fresh_database_urls().get("DATABASE_URL_ANALYTICS", f"sqlite:///{var / 'analytics-eu.db'}")
    try:
        stack.start()
        store_day(migrated_uow(MIGRATIONS, stack.database_url("analytics"), Outbox, Repository), "uk",
                  UK_BANDS, UK_ACTIVE)
        store_day(migrated_uow(MIGRATIONS, eu_url, Outbox, Repository, "eu"), "eu", EU_BANDS, EU_ACTIVE)
        stack.grpc_ports[EU] = eu_port
        stack.start_service("analytics", label=EU, env={
            "REGION": "eu", "DATABASE_URL_ANALYTICS": eu_url, "GRPC_BIND": f"127.0.0.1:{eu_port}",
            "ANALYTICS_ADDR": f"127.0.0.1:{eu_port}", "ANALYTICS_PEERS": "",
            "KASEUM_SERVICE_SECRET": secrets.token_urlsafe(40)})
        stack.wait_serving(EU)
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def analyst(api: Api, admin: Api) -> Api:
    return staff(api, admin, "analyst")[0]


def usage(analyst: Api, region: str, dimension: str = "", granularity: str = "day") -> dict[str, Any]:
    answer = analyst.call("GET", "/api/v1/analytics/feature-usage", params={
        "feature": "tickets.open", "from": "2025-03-03", "to": "2025-03-03", "granularity": granularity,
        "dimension": dimension, "region": region})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def cells(body: dict[str, Any]) -> dict[str, int | None]:
    """value → users, None where suppressed ("" for the total)."""
    return {c.get("value") or "": None if c.get("suppressed") else c["users"] for c in body["series"]}


@pytest.mark.rule("R-DATA-3")
@pytest.mark.notice("3.3", "4.1.4")
def test_regions_are_combined_from_released_cells_over_grpc(system: Stack, analyst: Api) -> None:
    combined = usage(analyst, "all", "org_size_band")
    assert (combined["regions"], combined["not_reporting"]) == (["uk", "eu"], {})
    # The sum where every region shows its part; suppressed where any region hid its part.
    assert cells(combined) == {"": 37 + 23, "1-9": None, "10-49": None, "250+": 20}
    assert combined["series"][0]["percentage"] == round(60 / 115 * 100, 2)
    # The eu region's own answer, asked of it, is what the combination used.
    assert cells(usage(analyst, "eu", "org_size_band")) == {"": 23, "1-9": 11, "10-49": 12}
    assert cells(usage(analyst, "uk,eu")) == {"": 60}
    weekly = usage(analyst, "all", granularity="week")
    assert cells(weekly) == {"": 60} and weekly["measure"] == "peak_daily_users"
    # A local question is answered as before, and says nothing of regions.
    local = usage(analyst, "", "org_size_band")
    assert cells(local) == {"": 37, "1-9": None, "10-49": None, "250+": 20} and "regions" not in local


@pytest.mark.rule("R-DATA-3")
@pytest.mark.notice("3.3")
def test_a_differencing_attack_across_regions_fails(system: Stack, analyst: Api) -> None:
    # Every question the API allows over these regions: each region alone, both, each dimension or none.
    known: dict[tuple[str, str], int] = {}
    for region, row in (("", "uk"), ("uk", "uk"), ("eu", "eu"), ("all", "all"), ("uk,eu", "all")):
        for dimension in ("", "org_size_band", "product"):
            for value, users in cells(usage(analyst, region, dimension)).items():
                if users is not None and (dimension != "product" or value):
                    known[(row, value)] = users
    bands = ["1-9", "10-49", "250+"]
    relations = [((r, ""), [(r, b) for b in bands]) for r in ("uk", "eu", "all")]
    relations += [(("all", b), [("uk", b), ("eu", b)]) for b in ["", *bands]]
    known[("eu", "250+")] = 0  # eu shows its total and no 250+ cell: nobody there
    derived = solve_by_differences(known, relations)
    # The attack that works against a naive sum ((uk + eu) − eu) finds nothing to subtract.
    assert ("uk", "1-9") not in derived and ("all", "1-9") not in derived
    assert ("uk", "10-49") not in derived


@pytest.mark.rule("R-DATA-3", "R-SEC-1")
@pytest.mark.notice("3.3")
def test_only_a_peer_region_may_ask_for_released_cells(system: Stack, analyst: Api) -> None:
    request = analytics_pb2.RegionUsageRequest(feature="tickets.open", from_date="2025-03-03", to_date="2025-03-03",
                                               granularity="day", dimension="org_size_band")
    # An analyst, signed in and allowed every aggregate, still cannot call it (asked of uk, whose
    # analysts they are).
    with grpc.insecure_channel(system.grpc_addr("analytics")) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            analytics_pb2_grpc.AnalyticsStub(channel).RegionUsage(request, metadata=person_metadata(analyst.token),
                                                                  timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with grpc.insecure_channel(system.grpc_addr(EU)) as channel:
        stub = analytics_pb2_grpc.AnalyticsStub(channel)
        for metadata in ((), ((PEER_HEADER, mint_peer_token(b"not-the-peer-secret-" * 3, "uk")),)):
            with pytest.raises(grpc.RpcError) as refused:
                stub.RegionUsage(request, metadata=metadata, timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # A peer gets the cells eu's analysts see: counts of groups, nothing finer.
        answer = stub.RegionUsage(request, metadata=((PEER_HEADER, mint_peer_token(PEER_SECRET.encode(), "uk")),),
                                  timeout=10)
        assert answer.region == "eu" and answer.min_group_size == 10
        assert [(c.value, c.users, c.active_users, c.suppressed) for c in answer.cells] == [
            ("", 23, 40, False), ("1-9", 11, 20, False), ("10-49", 12, 20, False)]


@pytest.mark.rule("R-DATA-3")
@pytest.mark.notice("3.3")
def test_a_region_that_does_not_answer_is_named_in_the_answer(system: Stack, analyst: Api) -> None:
    system.stop_process(EU)
    combined = usage(analyst, "all", "org_size_band")
    assert combined["regions"] == ["uk"] and combined["not_reporting"] == {"eu": "unreachable"}
    assert cells(combined) == {"": 37, "1-9": None, "10-49": None, "250+": 20}
    cli = subprocess.run([KASEUM, "analytics", "feature-usage", "--feature", "tickets.open", "--from",
                          "2025-03-03", "--to", "2025-03-03", "--region", "all"], capture_output=True, text=True,
                         timeout=60, env={"KASEUM_ENV_FILE": str(system.var / "kaseum.env"), "PATH": "/usr/bin:/bin",
                                          "KASEUM_TOKEN": analyst.token,
                                          "ANALYTICS_ADDR": system.grpc_addr("analytics")})
    assert cli.returncode == 0, cli.stderr
    assert "regions combined: uk" in cli.stdout and "not reporting: eu: unreachable" in cli.stdout
