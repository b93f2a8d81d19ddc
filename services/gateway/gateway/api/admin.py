"""Administration: staff accounts."""

from __future__ import annotations

from flask import Blueprint
from kaseum.identity.v1 import identity_pb2
from spectree import Response as Resp

from ..auth import backends, require_role
from ..openapi import BEARER, spec
from ..schemas import ErrorOut, StaffBody, StaffOut

bp = Blueprint("admin", __name__)


@bp.post("/api/v1/admin/users")
@spec.validate(json=StaffBody, resp=Resp(HTTP_201=StaffOut, HTTP_401=ErrorOut, HTTP_403=ErrorOut,
                                         HTTP_409=ErrorOut, HTTP_422=ErrorOut),
               tags=["admin"], security=BEARER)
def create_user(json: StaffBody) -> tuple[dict[str, str], int]:
    caller = require_role("admin")
    # Identity checks the role again from the token: it does not trust this check.
    created = backends().identity.CreateUser(identity_pb2.CreateUserRequest(
        role=json.role, username=json.username, email=json.email, password=json.password,
        organisation=json.organisation, country=json.country), metadata=caller.metadata)
    return {"id": created.id, "username": created.username, "role": created.role}, 201
