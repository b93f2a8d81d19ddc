"""The analyst dashboard: a page with one line chart per feature, drawn as SVG by the gateway.

The page itself holds no data (anyone may load it); its script signs the analyst in and fetches
each chart from `/api/v1/analytics/feature-usage.svg` with the bearer token, so the same role
check and the same suppression apply as for the JSON API.
"""

from __future__ import annotations

from flask import Blueprint, Response, render_template
from spectree import Response as Resp

from ..auth import require_role
from ..charts import line_chart
from ..openapi import BEARER, spec
from ..schemas import ErrorOut, UsageQuery
from .analytics import usage

bp = Blueprint("analytics_page", __name__, template_folder="../templates", static_folder="../static",
               static_url_path="/static/analytics")
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"


def chart_title(feature: str, granularity: str) -> str:
    """Say what a point counts: a week's or month's point is its busiest day (pseudonyms change
    daily, so distinct users over a week or month cannot be counted)."""
    if granularity == "day":
        return f"{feature}: distinct users per day"
    return f"{feature}: busiest day's distinct users, per {granularity}"


@bp.get("/analytics")
def dashboard() -> Response:
    response = Response(render_template("analytics.html"), mimetype="text/html")
    response.headers["Content-Security-Policy"] = CSP
    return response


@bp.get("/api/v1/analytics/feature-usage.svg")
@spec.validate(query=UsageQuery, resp=Resp(HTTP_401=ErrorOut, HTTP_403=ErrorOut, HTTP_422=ErrorOut),
               tags=["analytics"], security=BEARER)
def chart(query: UsageQuery) -> Response:
    caller = require_role("analyst")
    answer = usage(query, caller.metadata)
    periods = sorted({c["period"] for c in answer["series"]})
    series: dict[str, list[int | None]] = {}
    for cell in answer["series"]:
        label = cell.get("value") or "all users"
        series.setdefault(label, [None] * len(periods))[periods.index(cell["period"])] = cell.get("users")
    title = chart_title(query.feature, query.granularity)
    return Response(line_chart(title, periods, series), mimetype="image/svg+xml")
