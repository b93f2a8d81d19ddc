"""`python -m rights [serve|migrate]`: bootstrap wires settings, database, bus and gRPC."""

from __future__ import annotations

import hashlib
import hmac
import threading
from datetime import timedelta
from pathlib import Path

from kaseum.privacy.v1 import personal_data_pb2_grpc
from kaseum.rights.v1 import holds_pb2_grpc, rights_pb2_grpc
from servicekit.personal_data import FULL_NAME as PERSONAL_DATA
from servicekit.personal_data import PersonalDataApi
from servicekit.runtime import ServiceRuntime, main_entry
from servicekit.settings import ServiceSettings

from . import events
from .config import RightsSettings
from .export_parts import ExportWriter
from .governance import DECLARATION
from .grpc_api import SERVICE, RightsApi
from .grpc_steps import GrpcStepRunner, IdentityDirectory
from .holds import HoldRules
from .holds_api import FULL_NAME as LEGAL_HOLDS
from .holds_api import LegalHoldsApi
from .models import GOVERNANCE, Inbox, Outbox, Repository
from .orchestration import Orchestrator
from .portability import Pusher
from .service import RightsService

MIGRATIONS = Path(__file__).parent / "migrations"


def bootstrap(base: ServiceSettings) -> tuple[ServiceRuntime[Repository], RightsService]:
    settings = RightsSettings(**base.model_dump())
    runtime = ServiceRuntime(settings, Outbox, Inbox, Repository)
    runner = GrpcStepRunner(settings, runtime.credentials, ExportWriter(runtime.uow))
    # The one-time codes' hashes are keyed by a key derived from the deployment's service secret.
    code_key = hmac.new(settings.service_secret(), b"kaseum-rights-verification-codes", hashlib.sha256).digest()
    return runtime, RightsService(runtime.uow, settings.region, settings.page_size_default, runner=runner,
                                  directory=IdentityDirectory(settings, runtime.credentials), code_key=code_key,
                                  lift_notice=timedelta(hours=settings.restriction_lift_notice_hours))


def serve(base: ServiceSettings) -> None:
    runtime, service = bootstrap(base)
    # Rights owns the holds: its own table is the truth, so it does not subscribe to their events.
    runtime.governance(DECLARATION, GOVERNANCE, hold_events=False)
    runtime.subscribe("rights", [s.format(region=base.region) for s in events.SUBJECTS], events.handlers(service))
    # Every replica drives due steps; leases in the database keep them from running one twice.
    settings = RightsSettings(**base.model_dump())
    pusher = Pusher(runtime.uow, runtime.transfers, service.export_loader, settings.portability_ca_file)
    runner = service.runner or GrpcStepRunner(settings, runtime.credentials, ExportWriter(runtime.uow))
    orchestrator = Orchestrator(runtime.uow, runner, pusher=pusher)
    # Its own thread: woken at once by work filed in this process, else every interval for other replicas'.
    service.wake = orchestrator.wake
    threading.Thread(target=orchestrator.loop, args=(settings.orchestrator_interval_seconds,
                                                     lambda: runtime.bus.stopping),
                     name="rights-orchestrator", daemon=True).start()
    runtime.every(settings.due_soon_check_seconds, service.warn_due_soon)
    runtime.serve(
        [
            (rights_pb2_grpc.add_RightsServicer_to_server, RightsApi(service), SERVICE),
            (holds_pb2_grpc.add_LegalHoldsServicer_to_server, LegalHoldsApi(HoldRules(runtime.uow, base.region)),
             LEGAL_HOLDS),
            (personal_data_pb2_grpc.add_PersonalDataServicer_to_server, PersonalDataApi(
                "rights", service, runtime.scrubber.request),
             PERSONAL_DATA),
        ],
        # No public method: every call carries a signed-in person or a service token.
        public_methods=(),
    )


if __name__ == "__main__":
    main_entry("rights", MIGRATIONS, serve)
