"""gRPC translation for analytics: requests in, rules called, messages out."""

from __future__ import annotations

from typing import Any

from kaseum.analytics.v1 import analytics_pb2 as pb
from kaseum.analytics.v1 import analytics_pb2_grpc
from kaseum.privacy.v1 import personal_data_pb2 as pd
from kaseum.privacy.v1 import personal_data_pb2_grpc
from servicekit import caller
from servicekit.personal_data import erase_response, export_response, require_rights_caller

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


class AnalyticsPersonalData(personal_data_pb2_grpc.PersonalDataServicer):
    def __init__(self, service: AnalyticsService) -> None:
        self.service = service

    def Export(self, request: pd.ExportRequest, context: Any) -> pd.ExportResponse:
        require_rights_caller()
        tables, note = self.service.export(request.subject_id)
        return export_response("analytics", tables, note)

    def Erase(self, request: pd.EraseRequest, context: Any) -> pd.EraseResponse:
        require_rights_caller()
        erased, kept = self.service.erase(request.subject_id)
        return erase_response("analytics", erased, kept)

    def Rectify(self, request: pd.RectifyRequest, context: Any) -> pd.RectifyResponse:
        # Analytics owns no field about a person, so there is nothing to correct.
        require_rights_caller()
        return pd.RectifyResponse(service="analytics")

    def Restrict(self, request: pd.RestrictRequest, context: Any) -> pd.RestrictResponse:
        require_rights_caller()
        return pd.RestrictResponse(service="analytics",
                                   restricted=self.service.set_restricted(request.subject_id, True))

    def LiftRestriction(self, request: pd.LiftRestrictionRequest, context: Any) -> pd.LiftRestrictionResponse:
        require_rights_caller()
        return pd.LiftRestrictionResponse(
            service="analytics", restricted=self.service.set_restricted(request.subject_id, False))
