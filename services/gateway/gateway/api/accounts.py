"""Sign-up, sign-in and sign-out."""

from __future__ import annotations

from flask import Blueprint, Response, request
from kaseum.identity.v1 import identity_pb2
from spectree import Response as Resp

from .. import convert
from ..auth import backends, require_caller
from ..openapi import BEARER, spec
from ..schemas import (
    Accepted,
    CurrentSession,
    ErrorOut,
    LoginBody,
    LoginResult,
    RefreshBody,
    ResetConfirmBody,
    ResetRequestBody,
    SignUpBody,
    SignUpResult,
    TokenBody,
)
from .me import gpc

bp = Blueprint("accounts", __name__)


@bp.post("/api/v1/accounts")
@spec.validate(json=SignUpBody, resp=Resp(HTTP_201=SignUpResult, HTTP_409=ErrorOut, HTTP_422=ErrorOut),
               tags=["accounts"])
def sign_up(json: SignUpBody) -> tuple[dict[str, str], int]:
    """`Sec-GPC: 1` is an opt-out of third-party sharing and marketing cookies, as on the preference
    routes: it wins over `third_party_marketing` and is recorded with source `gpc` (R-COOKIE-1)."""
    result = backends().identity.SignUp(identity_pb2.SignUpRequest(
        username=json.username, email=json.email, password=json.password, first_name=json.first_name,
        last_name=json.last_name, company=json.company, job_title=json.job_title, phone=json.phone,
        country=json.country, marketing_email=json.marketing.email, ip_address=request.remote_addr or "",
        marketing_telephone=json.marketing.telephone, third_party_marketing=json.third_party_marketing,
        gpc=gpc(),
    ))
    return {"id": result.id, "username": result.username, "region": result.region}, 201


@bp.post("/api/v1/sessions")
@spec.validate(json=LoginBody, resp=Resp(HTTP_200=LoginResult, HTTP_401=ErrorOut, HTTP_429=ErrorOut),
               tags=["sessions"])
def log_in(json: LoginBody) -> dict[str, str]:
    result = backends().identity.Login(identity_pb2.LoginRequest(
        login=json.login, password=json.password, ip_address=request.remote_addr or "",
        user_agent=request.headers.get("User-Agent", "")[:1000], time_zone=json.time_zone,
    ))
    return convert.tokens(result)


@bp.post("/api/v1/sessions/refresh")
@spec.validate(json=RefreshBody, resp=Resp(HTTP_200=LoginResult, HTTP_401=ErrorOut), tags=["sessions"])
def refresh(json: RefreshBody) -> dict[str, str]:
    """A new access token (and refresh token) for a live session; each refresh token works once."""
    return convert.tokens(backends().identity.Refresh(identity_pb2.RefreshRequest(refresh_token=json.refresh_token)))


@bp.post("/api/v1/password-resets")
@spec.validate(json=ResetRequestBody, resp=Resp(HTTP_202=Accepted, HTTP_429=ErrorOut), tags=["accounts"])
def request_password_reset(json: ResetRequestBody) -> tuple[dict[str, str], int]:
    """Always 202: the answer does not tell whether the address has an account."""
    backends().identity.RequestPasswordReset(identity_pb2.RequestPasswordResetRequest(
        email=json.email, ip_address=request.remote_addr or ""))
    return {"status": "accepted"}, 202


@bp.post("/api/v1/password-resets/confirm")
@spec.validate(json=ResetConfirmBody, resp=Resp("HTTP_204", HTTP_422=ErrorOut), tags=["accounts"])
def confirm_password_reset(json: ResetConfirmBody) -> Response:
    backends().identity.ConfirmPasswordReset(identity_pb2.ConfirmPasswordResetRequest(
        token=json.token, new_password=json.new_password))
    return Response(status=204)


@bp.post("/api/v1/email-verifications/confirm")
@spec.validate(json=TokenBody, resp=Resp("HTTP_204", HTTP_422=ErrorOut), tags=["accounts"])
def confirm_email(json: TokenBody) -> Response:
    backends().identity.ConfirmEmail(identity_pb2.ConfirmEmailRequest(token=json.token))
    return Response(status=204)


@bp.get("/api/v1/sessions/current")
@spec.validate(resp=Resp(HTTP_200=CurrentSession, HTTP_401=ErrorOut), tags=["sessions"], security=BEARER)
def current_session() -> dict[str, str]:
    """Who the token speaks for (pages use it to show what the role may do). Answered by the gateway
    alone: signature, expiry and the revoked-session bucket, no service call."""
    caller = require_caller()
    return {"id": caller.session_id, "subject_id": caller.subject_id, "role": caller.role, "region": caller.region}


@bp.delete("/api/v1/sessions/current")
@spec.validate(resp=Resp("HTTP_204", HTTP_401=ErrorOut), tags=["sessions"], security=BEARER)
def log_out() -> Response:
    caller = require_caller()
    backends().identity.Logout(identity_pb2.LogoutRequest(), metadata=caller.metadata)
    return Response(status=204)
