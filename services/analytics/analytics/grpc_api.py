"""gRPC translation for analytics: requests in, rules called, messages out."""

from __future__ import annotations

from typing import Any

from kaseum.analytics.v1 import analytics_pb2 as pb
from kaseum.analytics.v1 import analytics_pb2_grpc
from servicekit import caller

from .service import AnalyticsService, Point

SERVICE = "kaseum.analytics.v1.Analytics"


def point_message(p: Point) -> pb.Point:
    return pb.Point(period=p.period.isoformat(), users=p.users, percentage=p.percentage,
                    suppressed=p.suppressed)


class AnalyticsApi(analytics_pb2_grpc.AnalyticsServicer):
    def __init__(self, service: AnalyticsService) -> None:
        self.service = service

    def FeatureUsage(self, request: pb.FeatureUsageRequest, context: Any) -> pb.FeatureUsageResponse:
        points = self.service.feature_usage(caller.require_person(), request.feature, request.from_date,
                                            request.to_date, request.granularity)
        return pb.FeatureUsageResponse(series=[point_message(p) for p in points])
