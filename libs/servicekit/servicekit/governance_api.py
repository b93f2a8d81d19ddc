"""The kaseum.privacy.v1.Governance servicer, one for every service (like personal_data.py)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from kaseum.privacy.v1 import governance_pb2 as pb
from kaseum.privacy.v1 import governance_pb2_grpc

from . import caller
from .audit import AuditFilter, AuditLogMixin
from .declarations import columns_of
from .governance import Governance
from .retention import RetentionRule
from .timestamps import to_timestamp

FULL_NAME = "kaseum.privacy.v1.Governance"


def _time(request: Any, name: str) -> Any:
    return getattr(request, name).ToDatetime(tzinfo=UTC) if request.HasField(name) else None


def rule_message(rule: RetentionRule) -> pb.RetentionRule:
    return pb.RetentionRule(name=rule.name, category=rule.category, what=rule.what, period=rule.period,
                            trigger=rule.trigger, reason=rule.reason, period_days=rule.days,
                            period_months=rule.months, covers=list(rule.covers))


def entry_message(row: AuditLogMixin, service: str) -> pb.AuditEntry:
    return pb.AuditEntry(seq=row.seq, at=to_timestamp(row.at), actor_kind=row.actor_kind, actor_id=row.actor_id,
                         actor_role=row.actor_role, actor_organisation_id=row.actor_organisation_id,
                         subject_id=row.subject_id, action=row.action, resource_id=row.resource_id,
                         purpose=row.purpose, service=service)


class GovernanceApi(governance_pb2_grpc.GovernanceServicer):
    def __init__(self, governance: Governance) -> None:
        self.gov = governance
        self.service = governance.service

    def register(self, server: Any) -> None:
        governance_pb2_grpc.add_GovernanceServicer_to_server(self, server)

    def _filter(self, request: Any) -> AuditFilter:
        return AuditFilter(subject_id=getattr(request, "subject_id", ""), actor_id=request.actor_id,
                           actor_organisation_id=request.actor_organisation_id,
                           from_time=_time(request, "from_time"), to_time=_time(request, "to_time"))

    def GetRetentionSchedule(self, request: pb.GetRetentionScheduleRequest, context: Any) -> pb.RetentionSchedule:
        rules = self.gov.retention_schedule(caller.current())
        return pb.RetentionSchedule(service=self.service, rules=[rule_message(r) for r in rules])

    def ListPurgeRuns(self, request: pb.ListPurgeRunsRequest, context: Any) -> pb.ListPurgeRunsResponse:
        runs = self.gov.purge_runs(caller.current(), request.limit)
        return pb.ListPurgeRunsResponse(service=self.service, runs=[
            pb.PurgeRun(id=r.id, rule=r.rule, started_at=to_timestamp(r.started_at),
                        finished_at=to_timestamp(r.finished_at), purged=r.purged, batches=r.batches,
                        cutoff=to_timestamp(r.cutoff)) for r in runs])

    def QueryAudit(self, request: pb.QueryAuditRequest, context: Any) -> pb.QueryAuditResponse:
        rows, cursor = self.gov.audit_entries(caller.current(), self._filter(request), request.cursor,
                                              request.page_size)
        return pb.QueryAuditResponse(service=self.service, entries=[entry_message(r, self.service) for r in rows],
                                     next_cursor=cursor)

    def AccessedSubjects(self, request: pb.AccessedSubjectsRequest, context: Any) -> pb.AccessedSubjectsResponse:
        found = self.gov.accessed_subjects(caller.current(), self._filter(request))
        return pb.AccessedSubjectsResponse(service=self.service, subjects=[
            pb.AccessedSubject(subject_id=a.subject_id, accesses=a.accesses, first_at=to_timestamp(a.first_at),
                               last_at=to_timestamp(a.last_at)) for a in found])

    def VerifyChain(self, request: pb.VerifyChainRequest, context: Any) -> pb.VerifyChainResponse:
        check = self.gov.verify(caller.current(), request.chain)
        return pb.VerifyChainResponse(service=self.service, chain=check.chain, intact=check.intact,
                                      checked=check.checked, broken_at_seq=check.broken_at_seq,
                                      problem=check.problem, anchor_seq=check.anchor_seq)

    def ListTransfers(self, request: pb.ListTransfersRequest, context: Any) -> pb.ListTransfersResponse:
        rows, cursor = self.gov.transfer_log(caller.current(), _time(request, "from_time"),
                                             _time(request, "to_time"), request.cursor, request.page_size)
        return pb.ListTransfersResponse(service=self.service, next_cursor=cursor, decisions=[
            pb.TransferDecision(seq=r.seq, at=to_timestamp(r.at), kind=r.kind,
                                destination_country=r.destination_country, recipient=r.recipient,
                                categories=[c for c in r.categories.split(",") if c], subject_id=r.subject_id,
                                allowed=r.allowed, basis=r.basis, safeguard_reference=r.safeguard_reference,
                                reason=r.reason, actor_id=r.actor_id, service=self.service) for r in rows])

    def GetDeclarations(self, request: pb.GetDeclarationsRequest, context: Any) -> pb.Declarations:
        d = self.gov.declarations(caller.current())
        policy = self.gov.policy
        adequate = [f"{e.country}" + (f" ({e.condition_text})" if e.condition else "")
                    for e in sorted(policy.adequacy.entries.values(), key=lambda e: e.country)]
        return pb.Declarations(
            service=self.service,
            columns=[pb.ColumnDeclaration(table=t, column=c, category=cat) for t, c, cat in columns_of(d.metadata)],
            purposes=[pb.PurposeDeclaration(purpose=p.clause, categories=list(p.categories), activity=p.activity)
                      for p in d.purposes],
            recipients=list(d.recipients), retention=[rule_message(r) for r in d.retention],
            hosting=[pb.HostingProvider(name=p.name, country=p.country, categories=list(p.categories),
                                        basis=decision.basis, allowed=decision.allowed, reason=decision.reason)
                     for p, decision in self.gov.hosting_now()],
            transfers=list(d.transfers),
            safeguards=[pb.SafeguardDeclaration(reference=s.reference, type=s.type, risk_assessment=s.risk_assessment,
                                                recipient=s.recipient, country=s.country,
                                                categories=sorted(s.categories), expires=s.expires.isoformat())
                        for s in policy.safeguards.safeguards],
            adequacy_as_of=policy.adequacy.as_of, adequacy_sources=list(policy.adequacy.sources),
            adequate_destinations=adequate)


