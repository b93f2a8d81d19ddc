"""Which service does what for each kind of request (notice 13.1): pure data, no I/O.

A plan is a list of steps (service, operation, phase). Steps of one phase run in parallel; a phase
starts when every step of the earlier phases is done. Operations:

- export:   PersonalData.Export and Governance.GetDeclarations (kept for the ZIP and its report)
- erase:    PersonalData.Erase
- rectify:  PersonalData.Rectify with the request's corrections
- restrict: PersonalData.Restrict
- lift:     PersonalData.LiftRestriction (added to a completed restriction by the DPO, due after notice)
- object:   consent's RecordOptOut as an objection (direct marketing is absolute, Art. 21(3))
- withdraw: consent's RecordOptOut for every channel (withdrawal of consent, Art. 7(3))
- push:     the portable ZIP POSTed to another controller's HTTPS endpoint, through the transfer
            policy (portability.py), once every export is in
- notify:   an event the service acts on (rights.processing.objected for analytics), written to
            rights' outbox in the step's own transaction: delivery is JetStream's job
"""

from __future__ import annotations

from dataclasses import dataclass

# Every service that holds personal data (ARCHITECTURE.md: each implements PersonalData).
HOLDERS = ("identity", "tickets", "consent", "analytics", "rights")
OBJECTION_PURPOSES = ("direct_marketing", "analytics", "profiling", "all")
# Identity's own fields a rectification may correct (the Identity and Contact data it owns).
RECTIFIABLE = ("first_name", "last_name", "company", "job_title", "email", "phone", "country")


@dataclass(frozen=True)
class PlannedStep:
    service: str
    operation: str
    phase: int = 1


def plan(kind: str, purpose: str = "", push: bool = False) -> list[PlannedStep]:
    if kind in ("access", "portability"):
        exports = [PlannedStep(s, "export") for s in HOLDERS]
        return [*exports, PlannedStep("rights", "push", 2)] if push else exports
    if kind == "erasure":
        # Identity goes last: until then the others may still ask it (consent takes the keyed hashes
        # of the addresses for the suppression list). Rights keeps its requests as evidence but
        # erases exports it built for the subject.
        return [*(PlannedStep(s, "erase") for s in HOLDERS if s != "identity"), PlannedStep("identity", "erase", 2)]
    if kind == "restriction":
        return [PlannedStep(s, "restrict") for s in HOLDERS]
    if kind == "rectification":
        # Identity owns every rectifiable field; recipients are told by its account.rectified event.
        return [PlannedStep("identity", "rectify")]
    if kind == "objection":
        steps = []
        if purpose in ("direct_marketing", "profiling", "all"):
            # Profiling here is marketing profiling (notice 6.2): consent's objection stops it.
            steps.append(PlannedStep("consent", "object"))
        if purpose in ("analytics", "all"):
            steps.append(PlannedStep("analytics", "notify"))
        return steps
    if kind == "withdraw_consent":
        return [PlannedStep("consent", "withdraw")]
    raise ValueError(f"no plan for {kind!r}")
