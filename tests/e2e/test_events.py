"""Events over real NATS JetStream: the outbox, the inbox, scale-out, dead letters."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import nats
import pytest
from consent.models import Inbox, Preferences
from kaseum.events.v1 import identity_events_pb2 as ev
from nats.js import api as js_api
from servicekit.bus import ensure_consumer
from servicekit.db import make_engine
from servicekit.testing import eventually
from sqlalchemy import func, select, text

from tests.support import jetstream
from tests.support.api import Api, sign_up_and_log_in, signup_body
from tools.stack import SERVICES, Stack

STREAM = "KASEUM_UK"
CREATED = "uk.identity.account.created"


def preference_rows(stack: Stack, subject_ids: list[str] | None = None) -> int:
    engine = make_engine(stack.database_url("consent"))
    try:
        with engine.connect() as conn:
            query = select(func.count()).select_from(Preferences)
            if subject_ids is not None:
                query = query.where(Preferences.subject_id.in_(subject_ids))
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


def start(stack: Stack, *services: str) -> None:
    stack.var.mkdir(parents=True, exist_ok=True)
    stack.start_nats()
    stack.migrate()
    for name in services:
        stack.start_service(name)
    for name in services:
        stack.wait_serving(name)


def kaseum(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"KASEUM_ENV_FILE": str(stack.var / "kaseum.env"), "NATS_URL": stack.nats_url, "REGION": "uk",
           "PATH": "/usr/bin:/bin"}
    return subprocess.run([str(Path(sys.executable).parent / "kaseum"), *args], capture_output=True, text=True,
                          env=env, timeout=60)


def created(account_id: str, region: str = "uk") -> ev.AccountCreated:
    return ev.AccountCreated(account_id=account_id, role="customer", home_region=region, notice_version="2024-01")


@pytest.mark.rule("R-MKT-1")
def test_sign_ups_during_a_nats_outage_are_delivered_exactly_once(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = make_stack()
    stack.start()
    api = Api(stack.gateway_url)
    before = [sign_up_and_log_in(api)[1]["id"] for _ in range(2)]
    eventually(lambda: preference_rows(stack, before) == 2, what="preferences before the outage")

    stack.stop_nats()
    during = []
    for _ in range(5):
        response = api.call("POST", "/api/v1/accounts", json=signup_body())
        assert response.status_code == 201, response.text  # the outbox keeps the events
        during.append(response.json()["id"])
    assert preference_rows(stack, during) == 0

    stack.start_nats()  # same port and store: the services reconnect by themselves
    eventually(lambda: preference_rows(stack, during) == 5, timeout=60, what="events after NATS returned")
    assert jetstream.count(stack.nats_url, STREAM, CREATED) == 7  # each event stored exactly once
    assert preference_rows(stack) == 7


@pytest.mark.rule("R-MKT-1")
def test_a_redelivered_event_has_no_second_effect(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = make_stack()
    start(stack, "consent", "identity")
    subject = uuid.uuid4().hex
    [body] = jetstream.publish_events(stack.nats_url, "uk", "identity.account.created", [(subject, created(subject))])
    eventually(lambda: preference_rows(stack, [subject]) == 1, what="first delivery")
    jetstream.republish(stack.nats_url, CREATED, body)
    jetstream.republish(stack.nats_url, CREATED, body)
    assert jetstream.count(stack.nats_url, STREAM, CREATED) == 3
    eventually(lambda: jetstream.caught_up(stack.nats_url, STREAM, "consent"), what="the replays to be acked")
    engine = make_engine(stack.database_url("consent"))
    with engine.connect() as conn:
        # One inbox row: the replays were recognised by event id and had no effect.
        assert conn.execute(select(func.count()).select_from(Inbox)).scalar_one() == 1
    engine.dispose()
    assert preference_rows(stack, [subject]) == 1


def test_two_consent_replicas_share_one_durable_consumer(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = make_stack()
    start(stack, "identity", "consent")
    stack.start_service("consent", replica=1)
    eventually(lambda: "serving" in (stack.var / "log" / "consent-1.log").read_text(), what="replica up")
    subjects = [uuid.uuid4().hex for _ in range(1000)]
    jetstream.publish_events(stack.nats_url, "uk", "identity.account.created", [(s, created(s)) for s in subjects])
    eventually(lambda: preference_rows(stack, subjects) == 1000, timeout=120, interval=0.5,
               what="1,000 preferences rows")
    shares = [(stack.var / "log" / f"{name}.log").read_text().count('"event handled"')
              for name in ("consent", "consent-1")]
    assert sum(shares) == 1000, shares  # every event handled once in all
    assert all(share > 0 for share in shares), shares  # both replicas took part
    assert preference_rows(stack) == 1000


def test_a_poison_event_goes_to_the_dead_letter_stream(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = make_stack(MAX_DELIVER="3")
    start(stack, "identity", "consent")
    subject = uuid.uuid4().hex
    # Homed in another region: consent's region guard refuses it every time.
    jetstream.publish_events(stack.nats_url, "uk", "identity.account.created", [(subject, created(subject, "eu"))])
    eventually(lambda: jetstream.count(stack.nats_url, "KASEUM_UK_DLQ", "dlq.uk.consent") == 1, timeout=60,
               what="the dead letter")
    assert preference_rows(stack, [subject]) == 0
    # The operator sees it, and can send it back (here it fails again and returns to the dead letters).
    listed = kaseum(stack, "dead-letters", "list")
    assert listed.returncode == 0 and "identity.account.created" in listed.stdout and "consent" in listed.stdout
    seq = listed.stdout.split()[0]
    replayed = kaseum(stack, "dead-letters", "replay", seq)
    assert replayed.returncode == 0 and "uk.identity.account.created" in replayed.stdout, replayed.stderr
    assert jetstream.count(stack.nats_url, STREAM, CREATED) == 2  # back on its original subject
    eventually(lambda: jetstream.count(stack.nats_url, "KASEUM_UK_DLQ", "dlq.uk.consent") == 1, timeout=60,
               what="the replayed poison event to fail again")
    assert kaseum(stack, "dead-letters", "replay", seq).returncode == 1  # already replayed: gone
    # Later events still flow: one poison message does not block the consumer.
    ok = uuid.uuid4().hex
    jetstream.publish_events(stack.nats_url, "uk", "identity.account.created", [(ok, created(ok))])
    eventually(lambda: preference_rows(stack, [ok]) == 1, what="the next event")


def test_every_service_migrates_its_own_database(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = make_stack()
    stack.var.mkdir(parents=True, exist_ok=True)
    stack.migrate()
    stack.migrate()  # idempotent
    for name in SERVICES:
        engine = make_engine(stack.database_url(name))
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            assert version
        engine.dispose()


def test_the_dead_letter_tool_says_when_nats_is_away(tmp_path: Path) -> None:
    env = {"KASEUM_ENV_FILE": str(tmp_path / "none.env"), "NATS_URL": "nats://127.0.0.1:1", "REGION": "uk",
           "PATH": "/usr/bin:/bin"}
    done = subprocess.run([str(Path(sys.executable).parent / "kaseum"), "dead-letters", "list"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1 and "NATS is not reachable" in done.stderr and "Traceback" not in done.stderr


def test_an_upgraded_service_sees_the_subjects_it_newly_subscribes(make_stack) -> None:  # type: ignore[no-untyped-def]
    """A durable consumer made by an older version is widened in place, keeping its position."""
    stack = make_stack()
    stack.var.mkdir(parents=True, exist_ok=True)
    stack.start_nats()

    async def scenario() -> tuple[set[str], int]:
        nc = await nats.connect(stack.nats_url)
        try:
            js = nc.jetstream()
            await js.add_stream(name="T", subjects=["t.>"])
            await js.publish("t.old", b"1")
            old = js_api.ConsumerConfig(durable_name="svc", filter_subjects=["t.old"],
                                        ack_policy=js_api.AckPolicy.EXPLICIT, deliver_policy=js_api.DeliverPolicy.ALL)
            await ensure_consumer(js, "T", old)
            sub = await js.pull_subscribe_bind(durable="svc", stream="T")
            for msg in await sub.fetch(1, timeout=5):
                await msg.ack()
            await ensure_consumer(js, "T", old.evolve(filter_subjects=["t.old", "t.new"]))
            await js.publish("t.new", b"2")
            info = await js.consumer_info("T", "svc")
            fetched = await sub.fetch(5, timeout=5)
            return set(info.config.filter_subjects or []), len(fetched)
        finally:
            await nc.close()

    subjects, delivered = asyncio.run(scenario())
    assert subjects == {"t.old", "t.new"}
    assert delivered == 1  # only the new subject's event: the handled one is not delivered again
