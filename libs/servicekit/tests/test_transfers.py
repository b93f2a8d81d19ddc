"""The transfer policy: adequacy as data, safeguards with expiry, every decision in the chained transfer log."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from servicekit import chain
from servicekit.errors import PermissionDenied
from servicekit.testing import Clock
from servicekit.transfers import (
    HostingProvider,
    TransferGate,
    TransferPolicy,
    check_hosting,
    load_adequacy,
    parse_hosting,
    parse_safeguards,
)
from sqlalchemy import select

from .conftest import ChainHead, Db, TransferLog

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
