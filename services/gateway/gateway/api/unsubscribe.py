"""One-click unsubscribe (RFC 8058): the link in every marketing message, no sign-in needed.

`List-Unsubscribe: <…/api/v1/unsubscribe?token=…>` with `List-Unsubscribe-Post: List-Unsubscribe=One-Click`:
a mail client (Gmail, Apple Mail) POSTs the form body `List-Unsubscribe=One-Click` to that URL. A GET (a
person, or a mail scanner following links) only shows a page that confirms before anything changes.
The token is the credential: a session, valid, expired or absent, plays no part.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

import grpc
from flask import Blueprint, Response, request
from kaseum.consent.v1 import consent_pb2
from spectree import Response as Resp

from ..auth import backends
from ..errors import error_response, from_rpc
from ..openapi import spec
from ..schemas import ErrorOut, UnsubscribeOut

bp = Blueprint("unsubscribe", __name__)
PATH = "/api/v1/unsubscribe"
# Consent's machine codes for a bad token and the HTTP status API.md gives them.
TOKEN_ERRORS = {"invalid_token": 400, "token_expired": 410}


def _token() -> str:
    token = request.args.get("token", "")
    if not token and request.mimetype == "application/json":
        try:
            body: Any = json.loads(request.get_data(cache=True) or b"{}")
        except ValueError:
            body = None
        token = body.get("token", "") if isinstance(body, dict) and isinstance(body.get("token"), str) else ""
    return token.strip()[:1000]


def _token_error(exc: grpc.RpcError) -> tuple[int, str, str]:
    err = from_rpc(exc)
    return TOKEN_ERRORS.get(err.code, err.status), err.code, err.message


def _wants_html() -> bool:
    # Only a browser that asks for HTML first gets a page; mail clients and scripts (`*/*`) get JSON.
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html"


def _page(status: int, title: str, text: str, form: bool = False) -> Response:
    button = ""
    if form:
        button = ('<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
                  '<button type="submit">Unsubscribe</button></form>')
    html = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title></head>'
            f"<body><main><h1>{escape(title)}</h1><p>{escape(text)}</p>{button}</main></body></html>")
    return Response(html, status=status, mimetype="text/html")


@bp.get(PATH)
@spec.validate(resp=Resp(HTTP_200=None, HTTP_400=None, HTTP_410=None), tags=["consent"])  # HTML pages
def confirm_page() -> Response:
    """A page that asks before unsubscribing: a GET never changes anything."""
    token = _token()
    if not token:
        return _page(400, "Link not valid", "This unsubscribe link is incomplete.")
    try:
        found = backends().consent.CheckUnsubscribe(consent_pb2.UnsubscribeRequest(token=token))
    except grpc.RpcError as exc:
        status, _code, message = _token_error(exc)
        return _page(status, "Link not valid", message)
    if found.already:
        return _page(200, "You are unsubscribed", "You no longer receive marketing e-mails from us.")
    return _page(200, "Unsubscribe from marketing e-mails?",
                 "You will still receive messages about your account and support tickets.", form=True)


@bp.post(PATH)
# The 200 is UnsubscribeOut as JSON, or a page for a browser that asks for HTML: not validated as one model.
@spec.validate(resp=Resp(HTTP_200=None, HTTP_400=ErrorOut, HTTP_410=ErrorOut), tags=["consent"])
def unsubscribe() -> Response | tuple[dict[str, Any], int]:
    """RFC 8058 one-click: form body `List-Unsubscribe=One-Click` (or JSON `{token}`); idempotent.
    Answers `{status: "unsubscribed", channel, already}`."""
    token = _token()
    if not token:
        return error_response(400, "invalid_token", "the unsubscribe token is missing")
    try:
        done = backends().consent.Unsubscribe(consent_pb2.UnsubscribeRequest(token=token))
    except grpc.RpcError as exc:
        status, code, message = _token_error(exc)
        if _wants_html():
            return _page(status, "Link not valid", message)
        return error_response(status, code, message)
    if _wants_html():
        return _page(200, "You are unsubscribed", "You will no longer receive marketing e-mails from us.")
    answer = UnsubscribeOut(status="unsubscribed", channel=done.channel, already=done.already)
    return answer.model_dump(), 200
