"""Aggregated feature usage for analysts (no row, event or pseudonym is ever returned)."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint
from kaseum.analytics.v1 import analytics_pb2
from spectree import Response as Resp

from ..auth import backends, require_role
from ..openapi import BEARER, spec
from ..schemas import ErrorOut, FeaturesOut, UsageOut, UsageQuery

bp = Blueprint("analytics", __name__)


def usage(query: UsageQuery, metadata: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    # FeatureUsage is retried on UNAVAILABLE (backends.IDEMPOTENT): the id, the same in every
    # attempt, makes a retried noisy query return its first answer instead of spending twice.
    result = backends().analytics.FeatureUsage(analytics_pb2.FeatureUsageRequest(
        feature=query.feature, from_date=query.from_, to_date=query.to, granularity=query.granularity,
        dimension=query.dimension, region=query.region, epsilon=query.epsilon, request_id=uuid.uuid4().hex),
        metadata=metadata)
    series: list[dict[str, Any]] = []
    for p in result.series:
        cell: dict[str, Any] = {"period": p.period}
        if query.dimension:
            cell["value"] = p.value or None
        if p.suppressed:
            cell["suppressed"] = True
        else:
            cell.update(users=p.users, percentage=round(p.percentage, 2))
        series.append(cell)
    # For a week or month, `users` is the busiest day's ("peak_daily_users"): say so in the answer.
    answer = {"series": series, "dimension": result.dimension, "measure": result.measure,
              "min_group_size": result.min_group_size, "epsilon_spent": result.epsilon_spent,
              "budget_remaining": round(result.budget_remaining, 6)}
    if result.regions or result.not_reporting:
        # Combined over regions: which ones, and which did not answer (never silently left out).
        answer.update(regions=list(result.regions), not_reporting=dict(result.not_reporting))
    return answer


@bp.get("/api/v1/analytics/feature-usage")
@spec.validate(query=UsageQuery, resp=Resp(HTTP_200=UsageOut, HTTP_401=ErrorOut, HTTP_403=ErrorOut,
                                           HTTP_422=ErrorOut, HTTP_429=ErrorOut), tags=["analytics"],
               security=BEARER)
def feature_usage(query: UsageQuery) -> dict[str, Any]:
    # The analytics service decides too; refusing here spares it the call.
    caller = require_role("analyst")
    return usage(query, caller.metadata)


@bp.get("/api/v1/analytics/features")
@spec.validate(resp=Resp(HTTP_200=FeaturesOut, HTTP_401=ErrorOut, HTTP_403=ErrorOut), tags=["analytics"],
               security=BEARER)
def features() -> dict[str, Any]:
    caller = require_role("analyst")
    result = backends().analytics.ListFeatures(analytics_pb2.ListFeaturesRequest(), metadata=caller.metadata)
    return {"features": list(result.features)}
