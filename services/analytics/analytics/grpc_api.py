"""gRPC translation for analytics: requests in, rules called, messages out."""

from __future__ import annotations

from typing import Any

from kaseum.analytics.v1 import analytics_pb2 as pb
from kaseum.analytics.v1 import analytics_pb2_grpc
from servicekit import caller
from servicekit.errors import Unauthenticated

from .peers import PEER_HEADER, verify_peer_token
from .periods import measure_of
from .queries import AnalyticsQueries, Point
from .regions import RegionalQueries

SERVICE = "kaseum.analytics.v1.Analytics"
# RegionUsage is not open to anyone: the caller interceptor lets it through without a person or
# service token because peers carry their own (PEER_HEADER), checked here.
PUBLIC_METHODS = (f"/{SERVICE}/RegionUsage",)


def point_message(p: Point) -> pb.Point:
    return pb.Point(period=p.period.isoformat(), users=p.users, percentage=p.percentage,
                    suppressed=p.suppressed, value=p.value)


class AnalyticsApi(analytics_pb2_grpc.AnalyticsServicer):
    def __init__(self, queries: AnalyticsQueries, regional: RegionalQueries | None = None,
                 peer_secret: bytes = b"") -> None:
        self.queries = queries
        self.regional = regional or RegionalQueries(queries)
        self.peer_secret = peer_secret

    def FeatureUsage(self, request: pb.FeatureUsageRequest, context: Any) -> pb.FeatureUsageResponse:
        usage = self.regional.feature_usage(caller.require_person(), request.feature, request.from_date,
                                            request.to_date, request.granularity, request.dimension,
                                            request.region, request.epsilon, request.request_id)
        return pb.FeatureUsageResponse(series=[point_message(p) for p in usage.series],
                                       dimension=usage.dimension, epsilon_spent=usage.epsilon_spent,
                                       budget_remaining=usage.budget_remaining,
                                       min_group_size=usage.min_group_size or self.queries.k, measure=usage.measure,
                                       regions=usage.regions, not_reporting=usage.not_reporting)

    def ListFeatures(self, request: pb.ListFeaturesRequest, context: Any) -> pb.ListFeaturesResponse:
        return pb.ListFeaturesResponse(features=self.queries.features(caller.require_person()))

    def PrivacyBudget(self, request: pb.PrivacyBudgetRequest, context: Any) -> pb.PrivacyBudgetResponse:
        budget = self.queries.budget(caller.require_person())
        return pb.PrivacyBudgetResponse(period=budget.period.isoformat(), total=budget.total,
                                        spent=budget.spent, max_per_query=budget.max_per_query)

    def RegionUsage(self, request: pb.RegionUsageRequest, context: Any) -> pb.RegionUsageResponse:
        token = next((v for k, v in context.invocation_metadata() if k == PEER_HEADER and isinstance(v, str)), "")
        if not token:
            raise Unauthenticated("peer credentials required")
        verify_peer_token(self.peer_secret, token, self.queries.region)
        cells = self.queries.region_cells(request.feature, request.from_date, request.to_date, request.granularity,
                                          request.dimension)
        return pb.RegionUsageResponse(
            region=self.queries.region, min_group_size=self.queries.k, measure=measure_of(request.granularity),
            cells=[pb.RegionCell(period=d.isoformat(), value=v, users=u, active_users=a, suppressed=h)
                   for d, v, u, a, h in cells])
