"""`python -m consent [serve|migrate]`."""

from __future__ import annotations

from pathlib import Path

from kaseum.consent.v1 import consent_pb2_grpc
from kaseum.privacy.v1 import personal_data_pb2_grpc
from servicekit.personal_data import FULL_NAME as PERSONAL_DATA
from servicekit.personal_data import PersonalDataApi
from servicekit.runtime import ServiceRuntime, main_entry
from servicekit.settings import ServiceSettings

from . import events
from .config import ConsentSettings
from .grpc_api import SERVICE, ConsentApi
from .models import Inbox, Outbox, Repository
from .service import ConsentService

MIGRATIONS = Path(__file__).parent / "migrations"


def bootstrap(base: ServiceSettings) -> tuple[ServiceRuntime[Repository], ConsentService]:
    settings = ConsentSettings(**base.model_dump())
    runtime = ServiceRuntime(settings, Outbox, Inbox, Repository)
    service = ConsentService(runtime.uow, settings.region, settings.notice_version)
    runtime.subscribe("consent", [s.format(region=settings.region) for s in events.SUBJECTS],
                      events.handlers(service))
    return runtime, service


def serve(base: ServiceSettings) -> None:
    runtime, service = bootstrap(base)
    runtime.serve([
        (consent_pb2_grpc.add_ConsentServicer_to_server, ConsentApi(service), SERVICE),
        (personal_data_pb2_grpc.add_PersonalDataServicer_to_server, PersonalDataApi("consent", service),
             PERSONAL_DATA),
    ])


if __name__ == "__main__":
    main_entry("consent", MIGRATIONS, serve)
