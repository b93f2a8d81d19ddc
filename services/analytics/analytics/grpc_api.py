"""gRPC translation for analytics: requests in, rules called, messages out."""

from __future__ import annotations

from typing import Any

from kaseum.analytics.v1 import analytics_pb2 as pb
from kaseum.analytics.v1 import analytics_pb2_grpc
from servicekit import caller

from .queries import AnalyticsQueries, Point

SERVICE = "kaseum.analytics.v1.Analytics"


def point_message(p: Point) -> pb.Point:
    return pb.Point(period=p.period.isoformat(), users=p.users, percentage=p.percentage,
                    suppressed=p.suppressed, value=p.value)


class AnalyticsApi(analytics_pb2_grpc.AnalyticsServicer):
    def __init__(self, queries: AnalyticsQueries) -> None:
        self.queries = queries

    def FeatureUsage(self, request: pb.FeatureUsageRequest, context: Any) -> pb.FeatureUsageResponse:
        usage = self.queries.feature_usage(caller.require_person(), request.feature, request.from_date,
                                           request.to_date, request.granularity, request.dimension,
                                           request.region, request.epsilon, request.request_id)
        return pb.FeatureUsageResponse(series=[point_message(p) for p in usage.series],
                                       dimension=usage.dimension, epsilon_spent=usage.epsilon_spent,
                                       budget_remaining=usage.budget_remaining,
                                       min_group_size=self.queries.k, measure=usage.measure)

    def ListFeatures(self, request: pb.ListFeaturesRequest, context: Any) -> pb.ListFeaturesResponse:
        return pb.ListFeaturesResponse(features=self.queries.features(caller.require_person()))

    def PrivacyBudget(self, request: pb.PrivacyBudgetRequest, context: Any) -> pb.PrivacyBudgetResponse:
        budget = self.queries.budget(caller.require_person())
        return pb.PrivacyBudgetResponse(period=budget.period.isoformat(), total=budget.total,
                                        spent=budget.spent, max_per_query=budget.max_per_query)
