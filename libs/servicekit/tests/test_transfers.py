"""The transfer policy: adequacy as data, safeguards with expiry, every decision in the chained transfer log."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from grpc_health.v1 import health, health_pb2
from kaseum.privacy.v1 import governance_pb2
from servicekit import caller, chain
from servicekit.declarations import ServiceDeclaration
from servicekit.errors import PermissionDenied
from servicekit.governance import Governance
from servicekit.governance_api import GovernanceApi
from servicekit.grpc_server import HealthReporter
from servicekit.testing import Clock
from servicekit.transfers import (
    HostingProvider,
    HostingWatch,
    TransferGate,
    TransferPolicy,
    check_hosting,
    load_adequacy,
    parse_hosting,
    parse_safeguards,
)
from sqlalchemy import select
from structlog.testing import capture_logs

from .conftest import MODELS, Base, ChainHead, Db, TransferLog

SAFEGUARDS = parse_safeguards({
    "safeguards": [
        {"reference": "IDTA-2026-007", "type": "IDTA", "risk_assessment": "TRA-2026-007", "recipient": "org-in",
         "country": "IN", "categories": ["3.2.1", "ticket_content"], "expires": "2026-06-30"},
        {"reference": "ADD-2025-003", "type": "Addendum", "risk_assessment": "DPIA-12", "recipient": "org-au",
         "country": "AU", "categories": ["3.2.1"], "expires": "2025-12-31"},
    ],
    "recipients": [{"recipient": "acme-us", "conditions": ["dpf_uk_extension"],
                    "reference": "DPF list, checked 2026-01-10", "expires": "2026-12-31"}],
})
POLICY = TransferPolicy(load_adequacy(), SAFEGUARDS)
ON = date(2026, 6, 30)

MATRIX = [
    # destination, recipient, categories, on, allowed, basis
    ("GB", "org-gb", ["3.2.1"], ON, True, "domestic"),
    ("FR", "org-fr", ["3.2.1", "ticket_content"], ON, True, "adequacy"),           # EEA
    ("JE", "org-je", ["3.2.1"], ON, True, "adequacy"),                             # Crown dependency
    ("KR", "org-kr", ["3.2.1"], ON, True, "adequacy"),                             # UK's own regulations
    ("US", "acme-us", ["3.2.1"], ON, True, "adequacy"),                            # DPF UK Extension, attested
    ("US", "other-us", ["3.2.1"], ON, False, ""),                                  # not certified
    ("IN", "org-in", ["3.2.1", "ticket_content"], ON, True, "safeguard"),          # IDTA, last valid day
    ("IN", "org-in", ["3.2.1"], date(2026, 7, 1), False, ""),                       # expired the day before
    ("IN", "org-in", ["3.2.2"], ON, False, ""),                                    # category not covered
    ("IN", "org-other", ["3.2.1"], ON, False, ""),                                 # another recipient
    ("AU", "org-au", ["3.2.1"], ON, False, ""),                                    # Addendum expired 2025
    ("CN", "org-cn", ["3.2.1"], ON, False, ""),                                    # nothing at all
    ("ZZ", "org-zz", ["3.2.1"], ON, False, ""),                                    # not a country
]


@pytest.mark.notice("10.2.1")
@pytest.mark.notice("10.2.2")
@pytest.mark.rule("R-XFER-1")
@pytest.mark.parametrize(("country", "recipient", "categories", "on", "allowed", "basis"), MATRIX)
def test_the_transfer_matrix(country: str, recipient: str, categories: list[str], on: date, allowed: bool,
                             basis: str) -> None:
    decision = POLICY.decide(country, recipient, categories, on)
    assert (decision.allowed, decision.basis) == (allowed, basis), decision.reason
    assert decision.reason


def test_refusals_say_why() -> None:
    assert "expired on 2026-06-30" in POLICY.decide("IN", "org-in", ["3.2.1"], date(2026, 7, 1)).reason
    assert "does not cover categories 3.2.2" in POLICY.decide("IN", "org-in", ["3.2.2"], ON).reason
    assert "UK Extension" in POLICY.decide("US", "other-us", ["3.2.1"], ON).reason
    assert "not covered by UK adequacy regulations" in POLICY.decide("CN", "x", ["3.2.1"], ON).reason


def test_the_adequacy_list_is_dated_data_with_its_sources() -> None:
    adequacy = load_adequacy()
    assert adequacy.as_of and adequacy.sources and adequacy.home == frozenset({"GB"})
    eea = {"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT",
           "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO"}
    others = {"AD", "AR", "CA", "FO", "GG", "IM", "IL", "JP", "JE", "NZ", "KR", "CH", "UY", "US", "GI"}
    assert set(adequacy.entries) == eea | others
    assert adequacy.entries["US"].condition == "dpf_uk_extension" and adequacy.entries["CA"].condition


@pytest.mark.parametrize("bad", [
    {"safeguards": [{"reference": "X", "type": "SCC", "risk_assessment": "T", "recipient": "r", "country": "IN",
                     "expires": "2027-01-01"}]},
    {"safeguards": [{"reference": "X", "type": "IDTA", "risk_assessment": "", "recipient": "r", "country": "IN",
                     "expires": "2027-01-01"}]},
    {"safeguards": [{"reference": "X", "type": "IDTA", "risk_assessment": "T", "recipient": "r", "country": "XX",
                     "expires": "2027-01-01"}]},
])
def test_a_safeguard_without_an_approved_contract_or_a_risk_assessment_is_refused_at_load(bad: dict[str, object]
                                                                                          ) -> None:
    with pytest.raises(ValueError):
        parse_safeguards(bad)


@pytest.mark.notice("10.2.1")
@pytest.mark.notice("10.2.2")
@pytest.mark.rule("R-XFER-1")
def test_every_decision_is_logged_in_the_chain_and_a_safeguard_refuses_from_the_day_after_expiry(db: Db) -> None:
    clock = Clock(datetime(2026, 6, 30, 23, 59, tzinfo=UTC))
    gate = TransferGate(POLICY, db.sessions, TransferLog, ChainHead, clock)
    assert gate.require("reseller_access", "IN", "org-in", ["3.2.1"], subject_id="s" * 32, actor_id="a" * 32).allowed
    clock.advance(minutes=2)  # 1 July
    with pytest.raises(PermissionDenied, match="expired") as refused:
        gate.require("reseller_access", "IN", "org-in", ["3.2.1"], subject_id="s" * 32, actor_id="a" * 32)
    assert refused.value.code == "transfer_refused"
    gate.check("portability", "CN", "controller.example.cn", ["3.2.1"], subject_id="s" * 32)
    with db.sessions() as session:
        rows = list(session.scalars(select(TransferLog).order_by(TransferLog.seq)))
        assert [(r.kind, r.destination_country, r.allowed, r.basis) for r in rows] == [
            ("reseller_access", "IN", True, "safeguard"), ("reseller_access", "IN", False, ""),
            ("portability", "CN", False, "")]
        assert rows[0].safeguard_reference == "IDTA-2026-007"
        assert chain.verify(session, TransferLog, ChainHead).intact


@pytest.mark.rule("R-SHARE-2")
def test_a_hosting_provider_the_policy_refuses_stops_the_start(db: Db) -> None:
    gate = TransferGate(POLICY, db.sessions, TransferLog, ChainHead, Clock(datetime(2026, 1, 1, tzinfo=UTC)))
    providers = parse_hosting('[{"name": "Cloud UK", "country": "GB", "categories": ["3.2.1"]},'
                              ' {"name": "Cloud IE", "country": "IE", "categories": ["3.2.1"]}]')
    assert [d.basis for d in check_hosting(gate, providers, "tickets")] == ["domestic", "adequacy"]
    with pytest.raises(RuntimeError, match="Cloud SG"):
        check_hosting(gate, [HostingProvider("Cloud SG", "SG", ("3.2.1",))], "tickets")
    with db.sessions() as session:
        assert [r.allowed for r in session.scalars(select(TransferLog).order_by(TransferLog.seq))] == [
            True, True, False]


@pytest.mark.notice("10.2.1", "10.2.2")
@pytest.mark.rule("R-XFER-1")
@pytest.mark.rule("R-SHARE-2")
def test_a_hosting_safeguard_expiring_today_allows_today_then_refuses_tomorrow_and_the_service_stops_serving(
        db: Db) -> None:
    clock = Clock(datetime(2026, 6, 30, 9, 0, tzinfo=UTC))  # org-in's IDTA is valid through 30 June
    gate = TransferGate(POLICY, db.sessions, TransferLog, ChainHead, clock)
    providers = [HostingProvider("Cloud UK", "GB", ("3.2.1",)), HostingProvider("org-in", "IN", ("3.2.1",))]
    watch = HostingWatch(gate, providers, "tickets",
                         list(zip(providers, check_hosting(gate, providers, "tickets"), strict=True)))
    servicer = health.HealthServicer()
    reporter = HealthReporter(servicer, ["kaseum.tickets.v1.Tickets"],
                              {"database": lambda: True, "hosting": watch.serving}, critical=("database", "hosting"))
    gov = Governance("tickets", "uk", db.sessions, MODELS, ServiceDeclaration("tickets", Base.metadata, (), ()),
                     POLICY, hosting_watch=watch)

    def status(service: str = "") -> int:
        return int(servicer.Check(health_pb2.HealthCheckRequest(service=service), None).status)

    def declared() -> list[tuple[str, bool, str]]:
        token = caller.set_current(caller.Principal("service", "cli", "service"))
        try:
            return [(h.name, h.allowed, h.basis) for h in GovernanceApi(gov).GetDeclarations(
                governance_pb2.GetDeclarationsRequest(), None).hosting]
        finally:
            caller.reset_current(token)

    assert reporter.check_once() and status() == health_pb2.HealthCheckResponse.SERVING
    clock.advance(hours=14, minutes=30)  # 23:30 on the last valid day: still allowed
    watch.check()
    assert reporter.check_once() and declared() == [("Cloud UK", True, "domestic"), ("org-in", True, "safeguard")]
    # The next check falls just after midnight, not an hour later.
    assert watch.seconds_to_next_check(3600) == pytest.approx(30 * 60 + 1)
    clock.advance(minutes=31)  # 1 July, 00:01
    with capture_logs() as logs:
        watch.check()
    assert not reporter.check_once()
    assert status() == status("kaseum.tickets.v1.Tickets") == health_pb2.HealthCheckResponse.NOT_SERVING
    assert status("kaseum.dependency.hosting") == health_pb2.HealthCheckResponse.NOT_SERVING
    assert declared() == [("Cloud UK", True, "domestic"), ("org-in", False, "")]
    [refused] = [e for e in logs if e["log_level"] == "error"]
    assert refused["provider"] == "org-in" and "expired on 2026-06-30" in refused["reason"]
    with db.sessions() as session:
        rows = list(session.scalars(select(TransferLog).order_by(TransferLog.seq)))
        assert [(r.recipient, r.kind, r.allowed) for r in rows] == [
            ("Cloud UK", "hosting", True), ("org-in", "hosting", True)] * 2 + [
            ("Cloud UK", "hosting", True), ("org-in", "hosting", False)]
        assert "expired on 2026-06-30" in rows[-1].reason and rows[-1].actor_id == "tickets"
        assert chain.verify(session, TransferLog, ChainHead).intact
