"""The DPO's page (/dpo): the record of processing and the queue of rights requests, as HTML.

As with the analyst dashboard, the page itself holds no data (anyone may load it); its script
signs the DPO in (the token stays in memory) and fetches `/api/v1/dpo/page.html` with the bearer
token. That fragment is rendered for the DPO only (401 without a session, 403 for any other role),
from the same sources as GET /api/v1/dpo/ropa and the rights service's ListRequests, so the page
cannot show more than the API would, nor drift from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import grpc
from flask import Blueprint, Response, render_template
from kaseum.rights.v1 import rights_pb2
from servicekit import governance_report
from spectree import Response as Resp

from .. import convert
from ..auth import backends, require_role
from ..openapi import BEARER, spec
from ..schemas import ErrorOut
from .analytics_page import CSP

bp = Blueprint("dpo_page", __name__, template_folder="../templates", static_folder="../static",
               static_url_path="/static/dpo")
# Requests the DPO still has to answer; completed and refused ones are not in the queue.
OPEN = ("received", "verifying", "in_progress", "extended")
PAGE = 100
# A queue longer than this per status is cut (and the page says so): the API pages through the rest.
MAX_PAGES = 10


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def queue(items: Iterable[Mapping[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Open requests by due date, overdue first, each marked overdue or due soon (within DUE_SOON)."""
    rows = []
    for item in items:
        due = _when(item["due_at"])
        overdue = due < now
        rows.append({**item, "due": due, "overdue": overdue,
                     "due_soon": not overdue and due <= now + convert.DUE_SOON})
    return sorted(rows, key=lambda r: (not r["overdue"], r["due"], r["id"]))


def open_requests(metadata: Any) -> tuple[list[dict[str, Any]], bool]:
    """Every open request, through ListRequests as the DPO (each listing is on the audit trail)."""
    items: list[dict[str, Any]] = []
    cut = False
    for status in OPEN:
        cursor = ""
        for _ in range(MAX_PAGES):
            page = backends().rights.ListRequests(
                rights_pb2.ListRequestsRequest(status=status, cursor=cursor, page_size=PAGE), metadata=metadata)
            items += [convert.rights_request(r) for r in page.items]
            cursor = page.next_cursor
            if not cursor:
                break
        cut = cut or bool(cursor)
    return items, cut


@bp.get("/dpo")
def page() -> Response:
    response = Response(render_template("dpo.html"), mimetype="text/html")
    response.headers["Content-Security-Policy"] = CSP
    return response


@bp.get("/api/v1/dpo/page.html")
@spec.validate(resp=Resp(HTTP_401=ErrorOut, HTTP_403=ErrorOut), tags=["governance"], security=BEARER)
def fragment() -> Response:
    """The DPO's page content: the rights-request queue and the record of processing, as HTML."""
    caller = require_role("dpo")
    now = datetime.now(UTC)
    record = governance_report.record_of_processing(backends().governance, caller.metadata)
    problem = ""
    try:
        items, cut = open_requests(caller.metadata)
    except grpc.RpcError:
        # The record still shows; the queue says it could not be read rather than looking empty.
        items, cut, problem = [], False, "The rights service is not answering: the queue cannot be shown now."
    html = render_template("dpo_content.html", record=record, queue=queue(items, now), cut=cut, problem=problem,
                           now=now)
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    return response
