"""Aggregated feature usage for analysts."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from kaseum.analytics.v1 import analytics_pb2
from spectree import Response as Resp

from ..auth import backends, require_caller
from ..openapi import BEARER, spec
from ..schemas import ErrorOut, UsageOut, UsageQuery

bp = Blueprint("analytics", __name__)


@bp.get("/api/v1/analytics/feature-usage")
@spec.validate(query=UsageQuery, resp=Resp(HTTP_200=UsageOut, HTTP_401=ErrorOut, HTTP_403=ErrorOut,
                                           HTTP_422=ErrorOut), tags=["analytics"], security=BEARER)
def feature_usage(query: UsageQuery) -> dict[str, Any]:
    caller = require_caller()
    result = backends().analytics.FeatureUsage(analytics_pb2.FeatureUsageRequest(
        feature=query.feature, from_date=query.from_, to_date=query.to, granularity=query.granularity),
        metadata=caller.metadata)
    series: list[dict[str, Any]] = [
        {"period": p.period, "suppressed": True} if p.suppressed
        else {"period": p.period, "users": p.users, "percentage": round(p.percentage, 2)}
        for p in result.series
    ]
    return {"series": series}
