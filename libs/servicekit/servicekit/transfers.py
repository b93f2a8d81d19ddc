"""The transfer policy (notice section 10; R-XFER-1, R-SHARE-2): one check wherever data may cross a border.

The adequacy list is data (data/uk-adequacy.json: the UK's adequacy regulations, their sources
and as-of date); the safeguards are the deployment's data (a JSON file named by the
TRANSFER_SAFEGUARDS_FILE setting, a ConfigMap in Kubernetes): IDTA or UK Addendum references,
the transfer risk assessment or DPIA behind each, recipient, country, categories and expiry.
A transfer is allowed when the destination is home (GB), is covered by adequacy regulations
(and the recipient meets the entry's condition, e.g. certified under the UK Extension to the
DPF), or is covered by an unexpired safeguard for that recipient, country and every category;
otherwise it is refused with a reason. A safeguard is valid through its expiry date (UTC) and
refuses from the next day. Every decision, allowed or refused, is appended to the service's
hash-chained, append-only transfer log in its own short transaction, so a refusal is logged
even though the caller's own work is then rolled back.

To adopt in a service: 1. `gov = governance_models(Base)` in models.py (gives `gov.transfers`);
2. `runtime.governance(...)` builds `runtime.transfers` (a TransferGate); 3. call
`gate.require(kind, country, recipient, categories, subject_id=…, actor_id=…)` before the data leaves.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import ClassVar

import pycountry
from sqlalchemy import Boolean, DateTime, Index, String, Text
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column, sessionmaker

from . import chain
from .db import utcnow
from .errors import PermissionDenied
from .logs import get_logger

log = get_logger(__name__)

KINDS = ("reseller_access", "portability", "hosting")
SAFEGUARD_TYPES = ("IDTA", "Addendum")
RECORD = {"category": "transfer_records"}


@dataclass(frozen=True)
class AdequacyEntry:
    country: str
    name: str
    instrument: str
    condition: str = ""
    condition_text: str = ""


@dataclass(frozen=True)
class AdequacyList:
    jurisdiction: str
    home: frozenset[str]
    as_of: str
    sources: tuple[str, ...]
    entries: dict[str, AdequacyEntry]


def load_adequacy(path: str = "") -> AdequacyList:
    """The packaged UK list, or a deployment's own file."""
    raw = json.loads(Path(path).read_text() if path else
                     resources.files("servicekit").joinpath("data/uk-adequacy.json").read_text())
    entries = {e["country"]: AdequacyEntry(e["country"], e["name"], e["instrument"], e.get("condition", ""),
                                           e.get("condition_text", "")) for e in raw["entries"]}
    return AdequacyList(raw["jurisdiction"], frozenset(raw["home"]), raw["as_of"], tuple(raw["sources"]), entries)


@lru_cache(maxsize=1)
def uk_adequacy() -> AdequacyList:
    return load_adequacy()


@dataclass(frozen=True)
class Safeguard:
    """An appropriate safeguard (Art. 46): the IDTA or the UK Addendum to the EU SCCs, with its TRA."""

    reference: str
    type: str
    risk_assessment: str
    recipient: str
    country: str
    categories: frozenset[str]
    expires: date


@dataclass(frozen=True)
class RecipientAttestation:
    """That a recipient meets an adequacy entry's condition (e.g. DPF UK Extension certification)."""

    recipient: str
    conditions: frozenset[str]
    reference: str
    expires: date


@dataclass(frozen=True)
class Safeguards:
    safeguards: tuple[Safeguard, ...] = ()
    recipients: tuple[RecipientAttestation, ...] = ()


def _country(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 2 or not code.isalpha() or pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"not an ISO 3166-1 alpha-2 country: {value!r}")
    return code


def parse_safeguards(raw: dict[str, object]) -> Safeguards:
    """Validate a deployment's safeguards document; a bad entry stops the start, with the reason."""
    found = []
    for item in raw.get("safeguards", []) or []:  # type: ignore[attr-defined]
        if item.get("type") not in SAFEGUARD_TYPES:
            raise ValueError(f"safeguard {item.get('reference')!r}: type must be one of {SAFEGUARD_TYPES}")
        for key in ("reference", "risk_assessment", "recipient"):
            if not str(item.get(key, "")).strip():
                raise ValueError(f"safeguard {item.get('reference')!r}: {key} is required")
        found.append(Safeguard(str(item["reference"]), str(item["type"]), str(item["risk_assessment"]),
                               str(item["recipient"]), _country(str(item["country"])),
                               frozenset(item.get("categories", [])), date.fromisoformat(str(item["expires"]))))
    attested = [RecipientAttestation(str(r["recipient"]), frozenset(r.get("conditions", [])),
                                     str(r.get("reference", "")), date.fromisoformat(str(r["expires"])))
                for r in raw.get("recipients", []) or []]  # type: ignore[attr-defined]
    return Safeguards(tuple(found), tuple(attested))


def load_safeguards(path: str) -> Safeguards:
    return parse_safeguards(json.loads(Path(path).read_text())) if path else Safeguards()


@dataclass(frozen=True)
class Decision:
    allowed: bool
    basis: str  # domestic | adequacy | safeguard | "" when refused
    reason: str
    safeguard_reference: str = ""


@dataclass(frozen=True)
class TransferPolicy:
    adequacy: AdequacyList = field(default_factory=uk_adequacy)
    safeguards: Safeguards = field(default_factory=Safeguards)

    def decide(self, destination: str, recipient: str, categories: Iterable[str], on: date) -> Decision:
        try:
            country = _country(destination)
        except ValueError:
            return Decision(False, "", "the destination is not a known country")
        wanted = frozenset(categories)
        if country in self.adequacy.home:
            return Decision(True, "domestic", f"{country} is within the {self.adequacy.jurisdiction}")
        entry = self.adequacy.entries.get(country)
        condition_missing = ""
        if entry is not None:
            if not entry.condition:
                return Decision(True, "adequacy", f"{entry.name}: {entry.instrument} (list as of "
                                                  f"{self.adequacy.as_of})")
            for att in self.safeguards.recipients:
                if att.recipient == recipient and entry.condition in att.conditions and on <= att.expires:
                    return Decision(True, "adequacy", f"{entry.name}: {entry.instrument}; recipient meets "
                                                      f"the condition ({att.reference})", att.reference)
            condition_missing = f"adequacy for {entry.name} covers {entry.condition_text}, not attested for " \
                                f"this recipient; "
        problems = []
        for s in self.safeguards.safeguards:
            if s.recipient != recipient or s.country != country:
                continue
            if on > s.expires:
                problems.append(f"safeguard {s.reference} expired on {s.expires.isoformat()}")
            elif not wanted <= s.categories:
                problems.append(f"safeguard {s.reference} does not cover categories "
                                f"{', '.join(sorted(wanted - s.categories))}")
            else:
                return Decision(True, "safeguard", f"{s.type} {s.reference} with {s.risk_assessment}, valid "
                                                   f"until {s.expires.isoformat()}", s.reference)
        missing = "; ".join(problems) if problems else "no safeguard (IDTA or UK Addendum) is recorded for " \
                                                       "this recipient and country"
        prefix = condition_missing or f"{country} is not covered by UK adequacy regulations; "
        return Decision(False, "", prefix + missing)


class TransferLogMixin(chain.ChainedMixin):
    __tablename__ = "transfer_log"
    CHAIN: ClassVar[str] = "transfers"
    CHAIN_FIELDS: ClassVar[tuple[str, ...]] = (
        "at", "kind", "destination_country", "recipient", "categories", "subject_id", "allowed", "basis",
        "safeguard_reference", "reason", "actor_id")

    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=RECORD)
    kind: Mapped[str] = mapped_column(String(20), info=RECORD)
    destination_country: Mapped[str] = mapped_column(String(2), info=RECORD)
    recipient: Mapped[str] = mapped_column(String(200), info=RECORD)
    categories: Mapped[str] = mapped_column(String(200), info=RECORD)  # comma-separated codes
    subject_id: Mapped[str] = mapped_column(String(32), default="", info={"category": "3.2.1"})
    allowed: Mapped[bool] = mapped_column(Boolean, info=RECORD)
    basis: Mapped[str] = mapped_column(String(20), info=RECORD)
    safeguard_reference: Mapped[str] = mapped_column(String(200), default="", info=RECORD)
    reason: Mapped[str] = mapped_column(Text, info=RECORD)
    actor_id: Mapped[str] = mapped_column(String(64), default="", info={"category": "3.2.1"})

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Index, ...]:
        return (Index("ix_transfer_log_at", "at"),)


class TransferGate:
    """The one check every border crossing goes through: decide, log, answer."""

    def __init__(self, policy: TransferPolicy, session_factory: sessionmaker[Session],
                 log_model: type[TransferLogMixin], heads: type[chain.ChainHeadMixin],
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.policy = policy
        self.session_factory = session_factory
        self.log_model = log_model
        self.heads = heads
        self.clock = clock

    def check(self, kind: str, destination: str, recipient: str, categories: Sequence[str],
              subject_id: str = "", actor_id: str = "") -> Decision:
        return self.check_subjects(kind, destination, recipient, categories, [subject_id], actor_id)

    def check_subjects(self, kind: str, destination: str, recipient: str, categories: Sequence[str],
                       subject_ids: Sequence[str], actor_id: str = "") -> Decision:
        """One decision for data of several subjects crossing at once (a page of a listing), logged once
        per subject, in one transaction, so the log says whose data crossed."""
        if kind not in KINDS:
            raise ValueError(f"unknown transfer kind {kind!r}")
        now = self.clock()
        decision = self.policy.decide(destination, recipient, categories, now.date())
        rows = []
        for subject_id in dict.fromkeys(subject_ids) or [""]:
            row = self.log_model()
            row.at, row.kind, row.destination_country = now, kind, destination.strip().upper()[:2]
            row.recipient, row.categories, row.subject_id = recipient, ",".join(sorted(set(categories))), subject_id
            row.allowed, row.basis, row.reason = decision.allowed, decision.basis, decision.reason
            row.safeguard_reference, row.actor_id = decision.safeguard_reference, actor_id
            rows.append(row)
        with self.session_factory() as session:
            chain.append(session, self.heads, rows)
            session.commit()
        return decision

    def require_subjects(self, kind: str, destination: str, recipient: str, categories: Sequence[str],
                         subject_ids: Sequence[str], actor_id: str = "") -> Decision:
        """`check_subjects`, raising PermissionDenied (code transfer_refused) with the reason when refused."""
        decision = self.check_subjects(kind, destination, recipient, categories, subject_ids, actor_id)
        if not decision.allowed:
            raise PermissionDenied(f"transfer refused: {decision.reason}", "transfer_refused")
        return decision

    def require(self, kind: str, destination: str, recipient: str, categories: Sequence[str],
                subject_id: str = "", actor_id: str = "") -> Decision:
        """`check`, raising PermissionDenied (code transfer_refused) with the reason when refused."""
        decision = self.check(kind, destination, recipient, categories, subject_id, actor_id)
        if not decision.allowed:
            raise PermissionDenied(f"transfer refused: {decision.reason}", "transfer_refused")
        return decision


@dataclass(frozen=True)
class HostingProvider:
    name: str
    country: str
    categories: tuple[str, ...]


def parse_hosting(raw: str) -> list[HostingProvider]:
    """HOSTING_PROVIDERS: a JSON list of {name, country, categories}."""
    items = json.loads(raw or "[]")
    return [HostingProvider(str(i["name"]), _country(str(i["country"])), tuple(i.get("categories", [])))
            for i in items]


def check_hosting(gate: TransferGate, providers: Sequence[HostingProvider], service: str) -> list[Decision]:
    """At start-up: every declared hosting provider must be allowed, or the service refuses to start."""
    decisions = []
    for p in providers:
        decision = gate.check("hosting", p.country, p.name, p.categories, actor_id=service)
        if not decision.allowed:
            raise RuntimeError(f"hosting provider {p.name!r} in {p.country} refused by the transfer policy: "
                               f"{decision.reason}")
        decisions.append(decision)
    return decisions


class HostingWatch:
    """The declared hosting providers, re-checked while the service runs (R-XFER-1).

    A safeguard valid at start-up can expire while the process keeps running; each `check` asks the
    policy again for every provider (each decision on the transfer log, as at start-up) and keeps the
    latest decisions, which the Governance declarations show and the gRPC health reads: while any
    provider is refused, `serving()` is False, so the service reports NOT_SERVING and is taken out
    of rotation until the policy allows it again (a new safeguard takes a restart to load).
    """

    def __init__(self, gate: TransferGate, providers: Sequence[HostingProvider], service: str,
                 current: Sequence[tuple[HostingProvider, Decision]] = ()) -> None:
        self.gate = gate
        self.providers = tuple(providers)
        self.service = service
        # The latest decisions (at start-up: check_hosting's, already logged).
        self.current: list[tuple[HostingProvider, Decision]] = list(current)

    def check(self) -> list[tuple[HostingProvider, Decision]]:
        decisions = [(p, self.gate.check("hosting", p.country, p.name, p.categories, actor_id=self.service))
                     for p in self.providers]
        was_refused = {p.name for p, d in self.current if not d.allowed}
        for p, d in decisions:
            if not d.allowed:
                # Repeated at every check while refused: an operator must act (renew the safeguard).
                log.error("hosting provider refused by the transfer policy; not serving", provider=p.name,
                          country=p.country, reason=d.reason, service=self.service)
            elif p.name in was_refused:
                log.info("hosting provider allowed again; serving", provider=p.name, country=p.country,
                         service=self.service)
        self.current = decisions
        return decisions

    def serving(self) -> bool:
        return all(d.allowed for _, d in self.current)

    def refused(self) -> list[tuple[HostingProvider, Decision]]:
        return [(p, d) for p, d in self.current if not d.allowed]

    def seconds_to_next_check(self, interval: float) -> float:
        """`interval`, or less so that a check falls just after the next UTC midnight, when a safeguard
        that expired the day before starts refusing."""
        now = self.gate.clock()
        midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), now.tzinfo)
        return max(1.0, min(interval, (midnight - now).total_seconds() + 1.0))
