"""`python -m tickets [serve|migrate]`."""

from __future__ import annotations

from pathlib import Path

from kaseum.privacy.v1 import personal_data_pb2_grpc
from kaseum.tickets.v1 import tickets_pb2_grpc
from servicekit.personal_data import FULL_NAME as PERSONAL_DATA
from servicekit.personal_data import PersonalDataApi
from servicekit.runtime import ServiceRuntime, main_entry
from servicekit.settings import ServiceSettings

from . import events
from .config import TicketsSettings
from .governance import DECLARATION
from .grpc_api import SERVICE, TicketsApi
from .identity_client import reseller_scope_source
from .models import GOVERNANCE, Inbox, Outbox, Repository, merge_search_index
from .scopes import ResellerScopes
from .service import TicketsService

MIGRATIONS = Path(__file__).parent / "migrations"


def bootstrap(base: ServiceSettings) -> tuple[ServiceRuntime[Repository], TicketsService]:
    settings = TicketsSettings(**base.model_dump())
    runtime = ServiceRuntime(settings, Outbox, Inbox, Repository)
    scopes = ResellerScopes(reseller_scope_source(settings.identity_addr, runtime.credentials),
                            ttl=settings.reseller_scope_ttl_seconds)
    service = TicketsService(runtime.uow, settings.region, scopes, settings.page_size_default)
    runtime.subscribe("tickets", [s.format(region=settings.region) for s in events.SUBJECTS],
                      events.handlers(service, scopes))
    return runtime, service


def serve(base: ServiceSettings) -> None:
    runtime, service = bootstrap(base)
    runtime.governance(DECLARATION, GOVERNANCE)
    service.transfers = runtime.transfers  # resellers abroad: the transfer policy decides (section 10)
    runtime.scrubber.also(merge_search_index)
    runtime.serve([
        (tickets_pb2_grpc.add_TicketsServicer_to_server, TicketsApi(service), SERVICE),
        (personal_data_pb2_grpc.add_PersonalDataServicer_to_server, PersonalDataApi(
                "tickets", service, runtime.scrubber.request),
             PERSONAL_DATA),
    ])


if __name__ == "__main__":
    main_entry("tickets", MIGRATIONS, serve)
