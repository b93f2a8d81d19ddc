"""gRPC translation for consent."""

from __future__ import annotations

from typing import Any

from kaseum.consent.v1 import consent_pb2 as pb
from kaseum.consent.v1 import consent_pb2_grpc
from servicekit import caller

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
