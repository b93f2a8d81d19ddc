"""Sign-up, sign-in and sign-out."""

from __future__ import annotations

from flask import Blueprint, Response, request
from kaseum.identity.v1 import identity_pb2
from spectree import Response as Resp

from ..auth import backends, require_caller
from ..convert import rfc3339
from ..openapi import BEARER, spec
from ..schemas import ErrorOut, LoginBody, LoginResult, SignUpBody, SignUpResult

bp = Blueprint("accounts", __name__)


@bp.post("/api/v1/accounts")
@spec.validate(json=SignUpBody, resp=Resp(HTTP_201=SignUpResult, HTTP_409=ErrorOut, HTTP_422=ErrorOut),
               tags=["accounts"])
def sign_up(json: SignUpBody) -> tuple[dict[str, str], int]:
    result = backends().identity.SignUp(identity_pb2.SignUpRequest(
        username=json.username, email=json.email, password=json.password, first_name=json.first_name,
        last_name=json.last_name, company=json.company, job_title=json.job_title, phone=json.phone,
        country=json.country, marketing_email=json.marketing.email,
        marketing_telephone=json.marketing.telephone, third_party_marketing=json.third_party_marketing,
    ))
    return {"id": result.id, "username": result.username, "region": result.region}, 201


@bp.post("/api/v1/sessions")
@spec.validate(json=LoginBody, resp=Resp(HTTP_200=LoginResult, HTTP_401=ErrorOut, HTTP_429=ErrorOut),
               tags=["sessions"])
def log_in(json: LoginBody) -> dict[str, str]:
    result = backends().identity.Login(identity_pb2.LoginRequest(
        login=json.login, password=json.password, ip_address=request.remote_addr or "",
        user_agent=request.headers.get("User-Agent", "")[:1000],
    ))
    return {"token": result.token, "expires_at": rfc3339(result.expires_at)}


@bp.delete("/api/v1/sessions/current")
@spec.validate(resp=Resp("HTTP_204", HTTP_401=ErrorOut), tags=["sessions"], security=BEARER)
def log_out() -> Response:
    caller = require_caller()
    backends().identity.Logout(identity_pb2.LogoutRequest(), metadata=caller.metadata)
    return Response(status=204)
