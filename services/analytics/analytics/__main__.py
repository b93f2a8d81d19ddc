"""`python -m analytics [serve|migrate]`: bootstrap wires settings, database, bus and gRPC."""

from __future__ import annotations

from pathlib import Path

from kaseum.analytics.v1 import analytics_pb2_grpc
from kaseum.privacy.v1 import personal_data_pb2_grpc
from servicekit.personal_data import FULL_NAME as PERSONAL_DATA
from servicekit.personal_data import PersonalDataApi
from servicekit.runtime import ServiceRuntime, main_entry
from servicekit.settings import ServiceSettings

from .config import AnalyticsSettings
from .events import HANDLERS, SUBJECTS
from .grpc_api import SERVICE, AnalyticsApi
from .models import Inbox, Outbox, Repository
from .service import AnalyticsService

MIGRATIONS = Path(__file__).parent / "migrations"


def bootstrap(base: ServiceSettings) -> tuple[ServiceRuntime[Repository], AnalyticsService]:
    settings = AnalyticsSettings(**base.model_dump())
    runtime = ServiceRuntime(settings, Outbox, Inbox, Repository)
    service = AnalyticsService(runtime.uow, settings.region, settings.min_group_size)
    runtime.subscribe("analytics", [s.format(region=settings.region) for s in SUBJECTS], HANDLERS)
    runtime.every(settings.rollup_interval_seconds, service.rollup_finished_days)
    return runtime, service


def serve(base: ServiceSettings) -> None:
    runtime, service = bootstrap(base)
    runtime.serve(
        [
            (analytics_pb2_grpc.add_AnalyticsServicer_to_server, AnalyticsApi(service), SERVICE),
            (personal_data_pb2_grpc.add_PersonalDataServicer_to_server, PersonalDataApi("analytics", service),
             PERSONAL_DATA),
        ],
        # No public method: every call carries a signed-in person or a service token.
        public_methods=(),
    )


if __name__ == "__main__":
    main_entry("analytics", MIGRATIONS, serve)
