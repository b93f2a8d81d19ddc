"""Objected and restricted subjects stop counting the moment the fact arrives (N §4.1.4, §13.1.4–5;
R-OBJ-1, R-RESTRICT-1), and analytics keeps no subject id in its database to do it."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from analytics.events import SUBJECTS, handlers
from analytics.models import Inbox, Repository, UsageEvent
from analytics.service import AnalyticsService, Use
from kaseum.events.v1 import identity_events_pb2 as identity
from kaseum.events.v1 import objection_events_pb2 as objection
from servicekit.bus import Subscription, apply_once
from servicekit.db import UnitOfWorkFactory
from servicekit.outbox import envelope
from servicekit.pseudonyms import Exclusions, PseudonymKeys, pseudonym
from servicekit.testing import Clock
from sqlalchemy import func, select, text

TODAY = date(2025, 3, 10)


def used_by(service: AnalyticsService, keys: PseudonymKeys, subject: str, day: date = TODAY,
            feature: str = "tickets.open") -> Use:
    key = keys.key(day, create=True)
    assert key is not None
    return Use(uuid.uuid4().hex, day, service.region, feature, pseudonym(key, subject))


def events(uow: UnitOfWorkFactory[Repository]) -> int:
    with uow() as u:
        return int(u.session.scalar(select(func.count()).select_from(UsageEvent)) or 0)


@pytest.fixture
def deliver(service: AnalyticsService, uow: UnitOfWorkFactory[Repository], region: str) -> object:
    sub = Subscription(durable="analytics-exclusions", subjects=[s.format(region=region) for s in SUBJECTS],
                       handlers=handlers(service), uow_factory=uow, inbox_model=Inbox)
    return lambda event_type, subject, payload: apply_once(sub, envelope(event_type, region, subject, payload))


# Not a word that hex digits, event ids or numbers could spell by chance (the dump below looks for it).
ADA = "ada_lovelace"


@pytest.mark.rule("R-OBJ-1")
@pytest.mark.notice("4.1.4", "13.1.4")
def test_an_objection_deletes_todays_and_yesterdays_events_and_refuses_those_in_flight(
        service: AnalyticsService, keys: PseudonymKeys, exclusions: Exclusions, uow: UnitOfWorkFactory[Repository],
        deliver: object) -> None:
    yesterday = TODAY - timedelta(days=1)
    service.ingest([used_by(service, keys, ADA), used_by(service, keys, ADA, yesterday),
                    used_by(service, keys, "bob")])
    in_flight = used_by(service, keys, ADA, feature="tickets.reply")  # published before the objection
    assert deliver("rights.processing.objected", ADA,  # type: ignore[operator]
                   objection.ProcessingObjected(subject_id=ADA, purpose="analytics", objected=True))
    assert exclusions.reasons(ADA) == ["objected"]  # the gateway stops publishing from here
    assert events(uow) == 1
    assert service.ingest([in_flight]) == 0
    assert service.ingest([used_by(service, keys, "bob")]) == 1
    # In one batch with others, it alone is refused.
    assert service.ingest([used_by(service, keys, "bob"), in_flight, used_by(service, keys, ADA, yesterday)]) == 1
    # Nothing in the database names Ada: only today's and yesterday's pseudonyms, until roll-up.
    with uow() as u:
        dump = " ".join(str(row) for table in ("usage_events", "excluded_pseudonyms", "usage_daily", "usage_released")
                        for row in u.session.execute(text(f"SELECT * FROM {table}")).all())
    assert ADA not in dump


@pytest.mark.rule("R-OBJ-1")
def test_an_objection_to_another_purpose_changes_nothing_here(
        service: AnalyticsService, keys: PseudonymKeys, exclusions: Exclusions, uow: UnitOfWorkFactory[Repository],
        deliver: object) -> None:
    service.ingest([used_by(service, keys, "ada")])
    deliver("rights.processing.objected", "ada",  # type: ignore[operator]
            objection.ProcessingObjected(subject_id="ada", purpose="direct_marketing", objected=True))
    assert exclusions.reasons("ada") == [] and events(uow) == 1


@pytest.mark.rule("R-RESTRICT-1", "R-OBJ-1")
@pytest.mark.notice("13.1.5")
def test_a_restriction_stops_counting_and_lifting_it_resumes(
        service: AnalyticsService, keys: PseudonymKeys, exclusions: Exclusions, uow: UnitOfWorkFactory[Repository],
        deliver: object, clock: Clock) -> None:
    service.ingest([used_by(service, keys, "cy")])
    deliver("identity.account.restricted", "cy",  # type: ignore[operator]
            identity.AccountRestricted(account_id="cy", restricted=True))
    assert exclusions.reasons("cy") == ["restricted"] and events(uow) == 0
    deliver("identity.account.restricted", "cy",  # type: ignore[operator]
            identity.AccountRestricted(account_id="cy", restricted=False))
    assert exclusions.reasons("cy") == []
    clock.advance(days=1)  # a new day, a new pseudonym, counted again
    assert service.ingest([used_by(service, keys, "cy", TODAY + timedelta(days=1))]) == 1


@pytest.mark.rule("R-ERASE-1")
@pytest.mark.notice("13.1.3")
def test_an_erased_account_leaves_no_events_and_no_exclusion_entry(
        service: AnalyticsService, keys: PseudonymKeys, exclusions: Exclusions, uow: UnitOfWorkFactory[Repository],
        deliver: object) -> None:
    exclusions.set("dee", "objected", True)
    service.ingest([used_by(service, keys, "dee"), used_by(service, keys, "eve")])
    deliver("identity.account.erased", "dee", identity.AccountErased(account_id="dee"))  # type: ignore[operator]
    assert exclusions.reasons("dee") == [] and events(uow) == 1
