"""Usage statistics end to end: the gateway publishes pseudonymous uses, analytics counts them,
analysts alone read aggregates, and nothing returns a row (N §3.3, §4.1.4; R-DATA-3, R-OBJ-1)."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from analytics.models import NoisyAnswer, UsageEvent
from kaseum.events.v1 import envelope_pb2
from kaseum.events.v1 import gateway_events_pb2 as gw
from kaseum.events.v1 import identity_events_pb2 as identity
from servicekit.db import make_engine
from servicekit.testing import eventually
from sqlalchemy import func, select

from tests.support import jetstream
from tests.support.api import PASSWORD, Api, sign_up_and_log_in
from tools.stack import Stack

ROOT = Path(__file__).resolve().parents[2]
KASEUM = str(Path(sys.executable).parent / "kaseum")
STREAM = "KASEUM_UK"
USED = "uk.gateway.usage.feature_used"


def cli(system: Stack, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {"KASEUM_ENV_FILE": str(system.var / "kaseum.env"), "IDENTITY_ADDR": system.grpc_addr("identity"),
           "ANALYTICS_ADDR": system.grpc_addr("analytics"), "PATH": "/usr/bin:/bin"}
    return subprocess.run([KASEUM, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60)


def staff(system: Stack, api: Api, role: str) -> tuple[Api, str]:
    name = f"{role}_{uuid.uuid4().hex[:8]}"
    done = cli(system, "users", "create", "--role", role, "--username", name, "--email",
               f"{name}@kaseum.example", "--password-stdin", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    session = api.call("POST", "/api/v1/sessions", json={"login": name, "password": PASSWORD})
    assert session.status_code == 200, session.text
    return api.as_user(session.json()["token"]), name


def stored_events(system: Stack) -> int:
    engine = make_engine(system.database_url("analytics"))
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(UsageEvent)).scalar_one())
    finally:
        engine.dispose()


def published(system: Stack) -> int:
    return jetstream.count(system.nats_url, STREAM, USED)


@pytest.mark.rule("R-DATA-3")
@pytest.mark.notice("3.3", "4.1.4")
def test_a_customers_use_is_published_under_a_pseudonym_and_stored(system: Stack, api: Api) -> None:
    customer, account, _ = sign_up_and_log_in(api)
    before_published, before_stored = published(system), stored_events(system)
    opened = customer.call("POST", "/api/v1/tickets", json={"subject": "Printer", "body": "It jams.",
                                                            "product": "Billing"})
    assert opened.status_code == 201, opened.text
    eventually(lambda: published(system) == before_published + 1, what="the usage event")
    eventually(lambda: stored_events(system) == before_stored + 1, what="analytics to store it")
    data = jetstream_last(system)
    env = envelope_pb2.Envelope.FromString(data)
    event = gw.FeatureUsed()
    assert env.payload.Unpack(event)
    assert (env.type, env.region, env.subject_id) == ("gateway.usage.feature_used", "uk", "")
    assert (event.feature, event.product) == ("tickets.open", "billing")
    assert re.fullmatch(r"[0-9a-f]{64}", event.pseudonym) and account["id"] not in data.decode(errors="replace")


@pytest.mark.rule("R-DATA-3")
@pytest.mark.notice("3.3")
def test_a_product_the_deployment_does_not_sell_is_published_as_other(system: Stack, api: Api) -> None:
    customer, _, _ = sign_up_and_log_in(api)
    before = published(system)
    opened = customer.call("POST", "/api/v1/tickets", json={"subject": "Payroll", "body": "Help.",
                                                            "product": "payroll-for-jane-doe"})
    assert opened.status_code == 201, opened.text
    eventually(lambda: published(system) == before + 1, what="the usage event")
    event = gw.FeatureUsed()
    assert envelope_pb2.Envelope.FromString(jetstream_last(system)).payload.Unpack(event)
    # Slug-shaped, but not on ANALYTICS_PRODUCTS: it never becomes a dimension value.
    assert (event.feature, event.product) == ("tickets.open", "other")


def jetstream_last(system: Stack) -> bytes:
    import asyncio

    import nats

    async def last() -> bytes:
        nc = await nats.connect(system.nats_url)
        try:
            msg = await nc.jetstream().get_last_msg(STREAM, USED)
            return bytes(msg.data or b"")
        finally:
            await nc.close()

    return asyncio.run(last())


@pytest.mark.rule("R-DATA-3")
def test_staff_and_failed_requests_are_not_counted(system: Stack, api: Api) -> None:
    agent, _ = staff(system, api, "agent")
    customer, _, _ = sign_up_and_log_in(api)
    before = published(system)
    assert agent.call("GET", "/api/v1/tickets").status_code == 200
    assert customer.call("GET", "/api/v1/tickets/nope").status_code == 404
    customer.call("GET", "/api/v1/me")  # one counted use, to know the others had their chance
    eventually(lambda: published(system) == before + 1, what="the one counted use")


@pytest.mark.rule("R-RESTRICT-1", "R-OBJ-1")
@pytest.mark.notice("13.1.5", "4.1.4")
def test_a_restricted_customer_is_no_longer_counted(system: Stack, api: Api) -> None:
    customer, account, _ = sign_up_and_log_in(api)
    jetstream.publish_events(system.nats_url, "uk", "identity.account.restricted",
                             [(account["id"], identity.AccountRestricted(account_id=account["id"], restricted=True))])
    eventually(lambda: jetstream.caught_up(system.nats_url, STREAM, "analytics-exclusions"),
               what="analytics to take the restriction")
    before = published(system)
    assert customer.call("GET", "/api/v1/me").status_code == 200
    other, _, _ = sign_up_and_log_in(api)
    assert other.call("GET", "/api/v1/me").status_code == 200
    eventually(lambda: published(system) == before + 1, what="only the other customer's use")


@pytest.mark.rule("R-SEC-1", "R-DATA-3")
@pytest.mark.notice("3.3")
def test_analysts_read_aggregates_and_agents_and_customers_get_403(system: Stack, api: Api) -> None:
    analyst, _ = staff(system, api, "analyst")
    agent, _ = staff(system, api, "agent")
    customer, _, _ = sign_up_and_log_in(api)
    query = "/api/v1/analytics/feature-usage?feature=tickets.open&from=2025-03-01&to=2025-03-07&granularity=day"
    answer = analyst.call("GET", query + "&dimension=org_size_band")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert len(body["series"]) == 7 and all(c["suppressed"] for c in body["series"])
    assert body["min_group_size"] == 10 and body["measure"] == "daily_users"
    # A week's figure is its busiest day's, and the answer says so.
    weekly = analyst.call("GET", query.replace("granularity=day", "granularity=week"))
    assert weekly.status_code == 200 and weekly.json()["measure"] == "peak_daily_users"
    for who in (agent, customer):
        assert who.call("GET", query).status_code == 403
        assert who.call("GET", "/api/v1/analytics/features").status_code == 403
    assert api.call("GET", query).status_code == 401
    assert analyst.call("GET", query + "&dimension=company").status_code == 422


def kept_answers(system: Stack) -> list[str]:
    engine = make_engine(system.database_url("analytics"))
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(NoisyAnswer.request_id)).scalars())
    finally:
        engine.dispose()


@pytest.mark.rule("R-DATA-3")
@pytest.mark.notice("3.3")
def test_a_noisy_query_through_the_gateway_carries_a_request_id_and_is_charged_once(system: Stack, api: Api) -> None:
    analyst, _ = staff(system, api, "analyst")
    query = ("/api/v1/analytics/feature-usage?feature=tickets.open&from=2025-03-01&to=2025-03-07"
             "&granularity=day&epsilon=0.5")
    before = set(kept_answers(system))
    first = analyst.call("GET", query)
    assert first.status_code == 200, first.text
    second = analyst.call("GET", query)
    assert first.json()["epsilon_spent"] == 0.5
    # Two requests are two queries, each charged once (a retry of one inside the gateway would
    # carry its id and be answered from the kept answer).
    assert second.json()["budget_remaining"] == pytest.approx(first.json()["budget_remaining"] - 0.5)
    ids = set(kept_answers(system)) - before
    assert len(ids) == 2 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


@pytest.mark.rule("R-DATA-3")
@pytest.mark.notice("3.3")
def test_the_cli_answers_analysts_only(system: Stack, api: Api) -> None:
    _, name = staff(system, api, "analyst")
    args = ["analytics", "feature-usage", "--feature", "tickets.open", "--from", "2025-03-01", "--to", "2025-03-02"]
    done = cli(system, *args, "--login", name, "--password-stdin", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("suppressed") == 3 and "2025-03-02" in done.stdout
    assert "busiest day" not in done.stdout
    weekly = cli(system, *args, "--granularity", "week", "--login", name, "--password-stdin", stdin=PASSWORD + "\n")
    assert weekly.returncode == 0 and "peak day" in weekly.stdout and "busiest day" in weekly.stdout
    _, agent = staff(system, api, "agent")
    refused = cli(system, *args, "--login", agent, "--password-stdin", stdin=PASSWORD + "\n")
    assert refused.returncode == 1 and "forbidden" in refused.stderr


@pytest.mark.rule("R-DATA-3")
@pytest.mark.notice("3.3")
def test_no_api_route_or_rpc_returns_an_event_row_or_a_pseudonym(system: Stack, api: Api) -> None:
    # The contract: the analytics API's messages carry no pseudonym, subject or event id.
    proto = (ROOT / "proto/kaseum/analytics/v1/analytics.proto").read_text()
    fields = re.findall(r"^\s+(?:repeated\s+)?\w+\s+(\w+)\s*=\s*\d+;", proto, re.M)
    assert fields and not {f for f in fields if re.search(r"pseudonym|subject|event|account|session", f)}
    rpcs = re.findall(r"rpc (\w+)\(", proto)
    # RegionUsage answers peer regions only, with released cells (tests/e2e/test_analytics_regions.py).
    assert rpcs == ["FeatureUsage", "ListFeatures", "PrivacyBudget", "RegionUsage"]
    # The gateway: every analytics path is an aggregate; none lists events or pseudonyms.
    paths = api.call("GET", "/api/openapi.json").json()["paths"]
    analytics_paths = sorted(p for p in paths if p.startswith("/api/") and "analytics" in p)
    assert analytics_paths == ["/api/v1/analytics/feature-usage", "/api/v1/analytics/feature-usage.svg",
                               "/api/v1/analytics/features"]
    assert not [p for p in paths if re.search(r"pseudonym|usage-event|usage_event", p)]
    # And the CLI has no such command.
    helptext = cli(system, "analytics", "--help").stdout
    assert "feature-usage" in helptext and not re.search(r"event|pseudonym", helptext)


@pytest.mark.rule("R-DATA-3", "R-SEC-1")
@pytest.mark.notice("3.3")
def test_the_dashboard_draws_charts_from_its_own_files_for_analysts_only(system: Stack, api: Api) -> None:
    page = api.call("GET", "/analytics")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["Content-Security-Policy"]
    # No external CDN: every script and stylesheet is the gateway's own.
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(a.startswith("/static/analytics/") for a in assets)
    assert all(api.call("GET", a).status_code == 200 for a in assets)
    analyst, _ = staff(system, api, "analyst")
    query = "/api/v1/analytics/feature-usage.svg?feature=tickets.open&from=2025-03-01&to=2025-03-07"
    chart = analyst.call("GET", query)
    assert chart.status_code == 200 and chart.headers["Content-Type"].startswith("image/svg+xml")
    assert chart.text.startswith("<svg") and "every period suppressed" in chart.text
    assert "distinct users per day" in chart.text
    monthly = analyst.call("GET", query + "&granularity=month")
    assert monthly.status_code == 200 and "busiest day" in monthly.text and "per month" in monthly.text
    customer, _, _ = sign_up_and_log_in(api)
    assert customer.call("GET", query).status_code == 403


@pytest.mark.rule("R-DATA-3")
def test_a_suppressed_period_is_a_gap_in_the_line_never_a_zero() -> None:
    from gateway.charts import line_chart

    svg = line_chart("t", ["d1", "d2", "d3", "d4"], {"all users": [12, None, 15, 18]})
    assert svg.count("<circle") == 1 and svg.count("<polyline") == 1  # d1 alone, then d3–d4


@pytest.mark.rule("R-DATA-3")
def test_with_nats_down_customers_still_get_answers(system: Stack, api: Api) -> None:
    customer, _, _ = sign_up_and_log_in(api)
    system.stop_nats()
    try:
        # The revoked-session check falls back to identity; the usage event is simply lost.
        for _ in range(3):
            assert customer.call("GET", "/api/v1/me").status_code == 200
    finally:
        system.start_nats()


@pytest.mark.notice("3.3")
@pytest.mark.rule("R-DATA-3")
def test_the_gateway_drops_its_copy_of_the_day_key_at_midnight(system: Stack) -> None:
    import asyncio
    import time
    from datetime import UTC, datetime

    from gateway.usage import UsagePublisher
    from servicekit.bus import Bus
    from servicekit.testing import Clock

    region = "t" + uuid.uuid4().hex[:7]  # its own key bucket: the stack's keys are left alone
    bus = Bus(system.nats_url, region, "gateway-day-key-test")
    bus.start()
    try:
        deadline = time.monotonic() + 10
        while bus.js is None and time.monotonic() < deadline:
            time.sleep(0.02)
        clock = Clock(datetime(2025, 3, 10, 23, 59, tzinfo=UTC))
        publisher = UsagePublisher(bus, region, clock=clock)

        def on_loop(fn: Any) -> Any:
            async def call() -> Any:
                result = fn()
                return await result if asyncio.iscoroutine(result) else result
            return asyncio.run_coroutine_threadsafe(call(), bus.loop).result(5)

        assert on_loop(lambda: publisher._key("2025-03-10")) is not None
        assert publisher._day_key is not None and publisher._midnight is not None
        # Dropped when the day ends (23:59 + 60 s), not at the next use, which may never come.
        wait = on_loop(lambda: publisher._midnight.when() - bus.loop.time())
        assert 59 < wait <= 60
        on_loop(publisher._drop_past_key)  # woken early: still the 10th, kept, and set again
        assert publisher._day_key is not None and publisher._midnight is not None
        clock.advance(minutes=1)
        on_loop(publisher._drop_past_key)
        assert publisher._day_key is None
    finally:
        bus.stop()


@pytest.mark.rule("R-DATA-3")
@pytest.mark.notice("3.3")
def test_an_organisations_size_band_is_cached_and_a_failed_lookup_counts_as_unknown() -> None:
    from gateway.usage import SizeBands

    asked: list[str] = []
    now = [0.0]
    answers = {"org-a": "10-49", "org-b": "Acme's 12 people", "org-c": RuntimeError("identity down")}

    def fetch(organisation_id: str, metadata: Any) -> str:
        asked.append(organisation_id)
        found = answers[organisation_id]
        if isinstance(found, Exception):
            raise found
        return found

    bands = SizeBands(fetch, ttl=300, retry=30, clock=lambda: now[0])
    assert [bands.band(o, ()) for o in ("org-a", "org-a", "org-b", "org-c", "")] == ["10-49", "10-49", "", "", ""]
    assert asked == ["org-a", "org-b", "org-c"]  # cached; no organisation, no question
    now[0] = 31.0
    answers["org-c"] = "250+"
    assert (bands.band("org-c", ()), bands.band("org-a", ())) == ("250+", "10-49")  # retried sooner
    now[0] = 301.0
    answers["org-a"] = "50-249"
    assert bands.band("org-a", ()) == "50-249" and asked == ["org-a", "org-b", "org-c", "org-c", "org-a"]


@pytest.mark.rule("R-DATA-3")
@pytest.mark.notice("3.3", "4.1.4")
def test_a_use_carries_the_size_band_an_admin_set_for_the_customers_organisation(
        system: Stack, api: Api, admin: Api) -> None:
    company = f"Banded {uuid.uuid4().hex[:8]}"
    customer, _, _ = sign_up_and_log_in(api, company=company)
    listed = admin.call("GET", "/api/v1/admin/organisations", params={"kind": "customer"})
    assert listed.status_code == 200, listed.text
    org = next(o for o in listed.json()["items"] if o["name"] == company)
    assert org["size_band"] == ""
    # Set from a declared head count: only the band is kept and shown.
    done = admin.call("PUT", f"/api/v1/admin/organisations/{org['id']}/size", json={"employees": 37})
    assert done.status_code == 200 and done.json()["size_band"] == "10-49", done.text
    assert admin.call("PUT", f"/api/v1/admin/organisations/{org['id']}/size",
                      json={"size_band": "11-20"}).status_code == 422
    assert customer.call("PUT", f"/api/v1/admin/organisations/{org['id']}/size",
                         json={"size_band": "1-9"}).status_code == 403
    before = published(system)
    assert customer.call("GET", "/api/v1/me").status_code == 200
    eventually(lambda: published(system) == before + 1, what="the usage event")
    event = gw.FeatureUsed()
    assert envelope_pb2.Envelope.FromString(jetstream_last(system)).payload.Unpack(event)
    assert (event.feature, event.org_size_band) == ("profile.view", "10-49")
    # The operator CLI sets it too.
    cli_done = cli(system, "organisations", "size", "--organisation", org["id"], "--band", "50-249")
    assert cli_done.returncode == 0 and "size band 50-249" in cli_done.stdout, cli_done.stderr
