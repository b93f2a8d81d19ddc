"""The caller's own account and preferences."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request
from kaseum.consent.v1 import consent_pb2
from kaseum.identity.v1 import identity_pb2
from spectree import Response as Resp

from .. import convert
from ..auth import backends, require_caller, require_role
from ..openapi import BEARER, spec
from ..schemas import (
    Accepted,
    ErrorOut,
    MarketingPatch,
    Me,
    MePatch,
    PasswordBody,
    PreferencesBody,
    PreferencesOut,
    SessionList,
)

bp = Blueprint("me", __name__)


@bp.get("/api/v1/me")
@spec.validate(resp=Resp(HTTP_200=Me, HTTP_401=ErrorOut), tags=["me"], security=BEARER)
def get_me() -> dict[str, Any]:
    caller = require_caller()
    return convert.account(backends().identity.GetMe(identity_pb2.GetMeRequest(), metadata=caller.metadata))


@bp.patch("/api/v1/me")
@spec.validate(json=MePatch, resp=Resp(HTTP_200=Me, HTTP_401=ErrorOut, HTTP_403=ErrorOut, HTTP_409=ErrorOut,
                                       HTTP_422=ErrorOut, HTTP_429=ErrorOut), tags=["me"], security=BEARER)
def patch_me(json: MePatch) -> dict[str, Any]:
    caller = require_caller()
    changes = json.model_dump(exclude_none=True, exclude={"marketing", "third_party_marketing"})
    # Identity first: its validation is what usually refuses, and a refused request must change nothing.
    account = backends().identity.UpdateMe(identity_pb2.UpdateMeRequest(**changes), metadata=caller.metadata)
    choices = marketing_changes(json.marketing, json.third_party_marketing)
    if choices:
        # Marketing choices are consent's, as on the preferences page (retrying the PATCH is harmless).
        backends().consent.UpdatePreferences(consent_pb2.UpdatePreferencesRequest(
            source="preference_page", gpc=gpc(), **choices), metadata=caller.metadata)
    return convert.account(account)


def marketing_changes(marketing: MarketingPatch | None, third_party: bool | None) -> dict[str, bool]:
    changes: dict[str, bool] = {}
    if marketing is not None:
        for channel in ("email", "telephone"):
            value = getattr(marketing, channel)
            if value is not None:
                changes[f"marketing_{channel}"] = value
    if third_party is not None:
        changes["third_party_marketing"] = third_party
    return changes


@bp.get("/api/v1/me/sessions")
@spec.validate(resp=Resp(HTTP_200=SessionList, HTTP_401=ErrorOut), tags=["me"], security=BEARER)
def list_sessions() -> dict[str, Any]:
    caller = require_caller()
    found = backends().identity.ListSessions(identity_pb2.ListSessionsRequest(), metadata=caller.metadata)
    return {"items": [convert.session(s) for s in found.items]}


@bp.delete("/api/v1/me/sessions")
@spec.validate(resp=Resp("HTTP_204", HTTP_401=ErrorOut), tags=["me"], security=BEARER)
def sign_out_everywhere() -> Response:
    caller = require_caller()
    backends().identity.RevokeSessions(identity_pb2.RevokeSessionsRequest(), metadata=caller.metadata)
    return Response(status=204)


@bp.post("/api/v1/me/password")
@spec.validate(json=PasswordBody, resp=Resp("HTTP_204", HTTP_401=ErrorOut, HTTP_403=ErrorOut, HTTP_422=ErrorOut,
                                             HTTP_429=ErrorOut), tags=["me"], security=BEARER)
def change_password(json: PasswordBody) -> Response:
    caller = require_caller()
    backends().identity.ChangePassword(identity_pb2.ChangePasswordRequest(
        current_password=json.current_password, new_password=json.new_password), metadata=caller.metadata)
    return Response(status=204)


@bp.post("/api/v1/me/email-verification")
@spec.validate(resp=Resp(HTTP_202=Accepted, HTTP_401=ErrorOut, HTTP_409=ErrorOut, HTTP_429=ErrorOut), tags=["me"],
               security=BEARER)
def resend_verification() -> tuple[dict[str, str], int]:
    caller = require_caller()
    backends().identity.ResendVerification(identity_pb2.ResendVerificationRequest(), metadata=caller.metadata)
    return {"status": "accepted"}, 202


@bp.get("/api/v1/me/preferences")
@spec.validate(resp=Resp(HTTP_200=PreferencesOut, HTTP_401=ErrorOut, HTTP_409=ErrorOut), tags=["me"],
               security=BEARER)
def get_preferences() -> dict[str, Any]:
    caller = require_role("customer")
    if gpc():
        # The signal is an opt-out wherever it is seen (R-COOKIE-1): record it, then answer the state.
        prefs = backends().consent.UpdatePreferences(consent_pb2.UpdatePreferencesRequest(
            source="preference_page", gpc=True), metadata=caller.metadata)
    else:
        prefs = backends().consent.GetPreferences(consent_pb2.GetPreferencesRequest(), metadata=caller.metadata)
    return {**convert.preferences(prefs), "gpc": gpc()}


def gpc() -> bool:
    """Global Privacy Control: `Sec-GPC: 1` (the only valid value)."""
    return request.headers.get("Sec-GPC", "").strip() == "1"


@bp.put("/api/v1/me/preferences")
@spec.validate(json=PreferencesBody, resp=Resp(HTTP_200=PreferencesOut, HTTP_401=ErrorOut, HTTP_422=ErrorOut),
               tags=["me"], security=BEARER)
def put_preferences(json: PreferencesBody) -> dict[str, Any]:
    caller = require_role("customer")
    changes = marketing_changes(json.marketing, json.third_party_marketing)
    if json.cookies is not None:
        for kind in ("analytics", "marketing"):
            value = getattr(json.cookies, kind)
            if value is not None:
                changes[f"cookies_{kind}"] = value
    prefs = backends().consent.UpdatePreferences(
        consent_pb2.UpdatePreferencesRequest(source="preference_page", gpc=gpc(), **changes), metadata=caller.metadata)
    return {**convert.preferences(prefs), "gpc": gpc()}
