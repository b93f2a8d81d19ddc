"""gRPC translation for consent."""

from __future__ import annotations

from typing import Any

from kaseum.consent.v1 import consent_pb2 as pb
from kaseum.consent.v1 import consent_pb2_grpc
from servicekit import caller

from .calls import CallLists
from .campaigns import Campaigns
from .service import ConsentService, PreferencesView

SERVICE = "kaseum.consent.v1.Consent"
# Anyone holding an unsubscribe link's token may use it: no session (RFC 8058).
PUBLIC_METHODS = {f"/{SERVICE}/{m}" for m in ("Unsubscribe", "CheckUnsubscribe")}
FIELDS = {
    "marketing_email": "email",
    "marketing_telephone": "telephone",
    "third_party_marketing": "third_party",
    "cookies_analytics": "cookies_analytics",
    "cookies_marketing": "cookies_marketing",
}


def preferences_message(view: PreferencesView) -> pb.Preferences:
    p = view.prefs
    return pb.Preferences(
        subject_id=p.subject_id,
        marketing=pb.Marketing(email=p.marketing_email, telephone=p.marketing_telephone),
        third_party_marketing=p.third_party_marketing,
        cookies=pb.Cookies(analytics=p.cookies_analytics, marketing=p.cookies_marketing),
        notice_version=p.notice_version,
        objected=p.objected_at is not None,
        reconsent_required=view.reconsent_required,
        last_notice_seen=p.last_notice_seen,
    )


class ConsentApi(consent_pb2_grpc.ConsentServicer):
    def __init__(self, service: ConsentService, campaigns: Campaigns, calls: CallLists) -> None:
        self.service = service
        self.campaigns = campaigns
        self.calls = calls

    def GetPreferences(self, request: pb.GetPreferencesRequest, context: Any) -> pb.Preferences:
        return preferences_message(self.service.get(caller.require_any(), request.subject_id))

    def UpdatePreferences(self, request: pb.UpdatePreferencesRequest, context: Any) -> pb.Preferences:
        principal = caller.require_person()
        changes = {channel: bool(getattr(request, f)) for f, channel in FIELDS.items() if request.HasField(f)}  # type: ignore[arg-type]
        return preferences_message(self.service.update(principal, changes, request.source, request.gpc))

    def CanContact(self, request: pb.CanContactRequest, context: Any) -> pb.CanContactResponse:
        caller.require_service()
        decision = self.service.can_contact(request.subject_id, request.channel, request.purpose)
        return pb.CanContactResponse(allowed=decision.allowed, reason=decision.reason, subject_id=request.subject_id)

    def CanContactBatch(self, request: pb.CanContactBatchRequest, context: Any) -> pb.CanContactBatchResponse:
        caller.require_service()
        ids = list(request.subject_ids)
        decisions = self.service.can_contact_batch(ids, request.channel, request.purpose)
        return pb.CanContactBatchResponse(decisions=[
            pb.CanContactResponse(allowed=d.allowed, reason=d.reason, subject_id=s)
            for s, d in zip(ids, decisions, strict=True)])

    def RecordOptOut(self, request: pb.RecordOptOutRequest, context: Any) -> pb.Preferences:
        return preferences_message(self.service.record_opt_out(
            caller.require_any(), request.subject_id, list(request.channels), request.objection, request.source))

    def CheckUnsubscribe(self, request: pb.UnsubscribeRequest, context: Any) -> pb.UnsubscribeResponse:
        channel, already = self.service.check_unsubscribe(request.token)
        return pb.UnsubscribeResponse(channel=channel, already=already)

    def Unsubscribe(self, request: pb.UnsubscribeRequest, context: Any) -> pb.UnsubscribeResponse:
        channel, already = self.service.unsubscribe(request.token)
        return pb.UnsubscribeResponse(channel=channel, already=already)

    def SendCampaign(self, request: pb.SendCampaignRequest, context: Any) -> pb.SendCampaignResponse:
        result = self.campaigns.send(caller.require_any(), request.subject, request.body, request.channel,
                                     request.purpose, request.product, request.kind, request.idempotency_key)
        return pb.SendCampaignResponse(id=result.id, audience=result.audience, eligible=result.eligible,
                                       suppressed=result.suppressed)

    def PublishNotice(self, request: pb.PublishNoticeRequest, context: Any) -> pb.PublishNoticeResponse:
        version, recipients = self.campaigns.publish_notice(caller.require_any(), request.version, request.document,
                                                            request.changes_purpose, request.summary)
        return pb.PublishNoticeResponse(version=version, recipients=recipients)

    def VerifyLedger(self, request: pb.VerifyLedgerRequest, context: Any) -> pb.VerifyLedgerResponse:
        bad, entries = self.service.verify_ledger(request.subject_id, caller.require_any())
        return pb.VerifyLedgerResponse(intact=bad is None, first_bad_seq=bad or 0, entries=entries)

    def RecordProductHolding(self, request: pb.RecordProductHoldingRequest,
                             context: Any) -> pb.RecordProductHoldingResponse:
        self.campaigns.record_holding(caller.require_any(), request.subject_id, request.product)
        return pb.RecordProductHoldingResponse()

    def CallList(self, request: pb.CallListRequest, context: Any) -> pb.CallListResponse:
        result = self.calls.export(caller.require_any(), request.purpose,
                                   list(request.tps_numbers) if request.tps_screened else None)
        return pb.CallListResponse(
            rows=[pb.CallListRow(subject_id=r.subject_id, phone=r.phone, basis=r.basis, on_tps=r.on_tps)
                  for r in result.rows],
            tps_screened=result.screened, tps_numbers=result.tps_numbers, without_phone=result.without_phone)
