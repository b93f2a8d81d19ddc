"""A marketing send while NATS is down: every message goes out once, and its event follows once NATS is back."""

from __future__ import annotations

import uuid

import pytest
from consent.models import OutgoingMessage
from servicekit.db import make_engine
from servicekit.testing import eventually
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.e2e.test_consent_mail import campaign, cli, customer, mails, wait_mail
from tests.support import jetstream
from tests.support.api import PASSWORD, Api
from tools.stack import Stack

SENT = "uk.consent.communication.sent"


def sent_rows(stack: Stack) -> int:
    engine = make_engine(stack.database_url("consent"))
    try:
        with Session(engine) as session:
            return int(session.scalar(select(func.count()).select_from(OutgoingMessage)
                                      .where(OutgoingMessage.state == "sent")) or 0)
    finally:
        engine.dispose()


@pytest.mark.notice("8.1")
@pytest.mark.rule("R-MKT-4")
def test_a_campaign_during_a_nats_outage_is_neither_lost_nor_doubled(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = make_stack()
    stack.start()
    api = Api(stack.gateway_url)
    name = f"admin_{uuid.uuid4().hex[:8]}"
    assert cli(stack, "users", "create", "--role", "admin", "--username", name, "--email", f"{name}@kaseum.example",
               "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    session = api.call("POST", "/api/v1/sessions", json={"login": name, "password": PASSWORD})
    admin = api.as_user(session.json()["token"])
    yes = [customer(api, marketing={"email": True})[2] for _ in range(3)]
    no = customer(api)[2]
    for address in [*yes, no]:
        wait_mail(stack, address, "Confirm your e-mail address")  # sign-up mail out, so the counts below are clean

    stack.stop_nats()
    tag = f"Outage {uuid.uuid4().hex[:6]}"
    result = campaign(admin, tag)
    assert result["eligible"] == 3 and result["suppressed"] == 1
    for address in yes:
        wait_mail(stack, address, tag)  # sent with NATS away: the queue is in consent's database
    assert [m for m in mails(stack, no) if m["Subject"] == tag] == []

    stack.start_nats()
    expected = sent_rows(stack)
    eventually(lambda: jetstream.count(stack.nats_url, "KASEUM_UK", SENT) == expected, timeout=60,
               what="every communication.sent event published once NATS is back")
    assert jetstream.count(stack.nats_url, "KASEUM_UK", SENT) == expected  # once each, not twice
    for address in yes:
        assert len([m for m in mails(stack, address) if m["Subject"] == tag]) == 1
