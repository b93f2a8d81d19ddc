"""gRPC translation for consent."""

from __future__ import annotations

from typing import Any

from kaseum.consent.v1 import consent_pb2 as pb
from kaseum.consent.v1 import consent_pb2_grpc
from kaseum.privacy.v1 import personal_data_pb2 as pd
from kaseum.privacy.v1 import personal_data_pb2_grpc
from servicekit import caller
from servicekit.personal_data import erase_response, export_response, require_rights_caller

from .models import Preferences
from .service import ConsentService

SERVICE = "kaseum.consent.v1.Consent"
FIELDS = {
    "marketing_email": "email",
    "marketing_telephone": "telephone",
    "third_party_marketing": "third_party",
    "cookies_analytics": "cookies_analytics",
    "cookies_marketing": "cookies_marketing",
}


def preferences_message(p: Preferences) -> pb.Preferences:
    return pb.Preferences(
        subject_id=p.subject_id,
        marketing=pb.Marketing(email=p.marketing_email, telephone=p.marketing_telephone),
        third_party_marketing=p.third_party_marketing,
        cookies=pb.Cookies(analytics=p.cookies_analytics, marketing=p.cookies_marketing),
        notice_version=p.notice_version,
    )


class ConsentApi(consent_pb2_grpc.ConsentServicer):
    def __init__(self, service: ConsentService) -> None:
        self.service = service

    def GetPreferences(self, request: pb.GetPreferencesRequest, context: Any) -> pb.Preferences:
        return preferences_message(self.service.get(caller.require_any(), request.subject_id))

    def UpdatePreferences(self, request: pb.UpdatePreferencesRequest, context: Any) -> pb.Preferences:
        principal = caller.require_person()
        changes = {channel: bool(getattr(request, f)) for f, channel in FIELDS.items() if request.HasField(f)}  # type: ignore[arg-type]
        return preferences_message(self.service.update(principal, changes, request.source))

    def CanContact(self, request: pb.CanContactRequest, context: Any) -> pb.CanContactResponse:
        caller.require_service()
        decision = self.service.can_contact(request.subject_id, request.channel, request.purpose)
        return pb.CanContactResponse(allowed=decision.allowed, reason=decision.reason)


class ConsentPersonalData(personal_data_pb2_grpc.PersonalDataServicer):
    def __init__(self, service: ConsentService) -> None:
        self.service = service

    def Export(self, request: pd.ExportRequest, context: Any) -> pd.ExportResponse:
        require_rights_caller()
        return export_response("consent", self.service.export(request.subject_id))

    def Erase(self, request: pd.EraseRequest, context: Any) -> pd.EraseResponse:
        require_rights_caller()
        return erase_response("consent", self.service.erase(request.subject_id))

    def Rectify(self, request: pd.RectifyRequest, context: Any) -> pd.RectifyResponse:
        require_rights_caller()
        # Consent holds choices, not contact fields: corrections go through the preference calls.
        return pd.RectifyResponse(service="consent")

    def Restrict(self, request: pd.RestrictRequest, context: Any) -> pd.RestrictResponse:
        require_rights_caller()
        return pd.RestrictResponse(service="consent",
                                   restricted=self.service.set_restricted(request.subject_id, True))

    def LiftRestriction(self, request: pd.LiftRestrictionRequest, context: Any) -> pd.LiftRestrictionResponse:
        require_rights_caller()
        return pd.LiftRestrictionResponse(
            service="consent", restricted=self.service.set_restricted(request.subject_id, False))
