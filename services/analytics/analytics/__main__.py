"""`python -m analytics [serve|migrate]`: bootstrap wires settings, database, bus and gRPC."""

from __future__ import annotations

import gc
import hashlib
import hmac
from datetime import timedelta
from pathlib import Path

from kaseum.analytics.v1 import analytics_pb2_grpc
from kaseum.privacy.v1 import personal_data_pb2_grpc
from servicekit.personal_data import FULL_NAME as PERSONAL_DATA
from servicekit.personal_data import PersonalDataApi
from servicekit.pseudonyms import Exclusions, PseudonymKeys, key_ttl_seconds
from servicekit.runtime import ServiceRuntime, main_entry
from servicekit.settings import ServiceSettings

from .config import AnalyticsSettings
from .events import SUBJECTS, handlers
from .governance import declaration
from .grpc_api import PUBLIC_METHODS, SERVICE, AnalyticsApi
from .ingest import UsageConsumer
from .models import GOVERNANCE, Inbox, Outbox, Repository
from .peers import GrpcPeers
from .queries import AnalyticsQueries
from .regions import RegionalQueries
from .service import AnalyticsService

MIGRATIONS = Path(__file__).parent / "migrations"


def bootstrap(base: ServiceSettings) -> tuple[ServiceRuntime[Repository], AnalyticsService, AnalyticsQueries]:
    settings = AnalyticsSettings(**base.model_dump())
    runtime = ServiceRuntime(settings, Outbox, Inbox, Repository)
    region = settings.region
    # The keys' TTL follows the roll-up's timing: no key may expire before its day is rolled up.
    keys = PseudonymKeys(runtime.bus, region, enforce_ttl=True, ttl=key_ttl_seconds(
        settings.rollup_grace_seconds, settings.rollup_interval_seconds))
    service = AnalyticsService(runtime.uow, region, keys, Exclusions(runtime.bus, region),
                               rollup_grace=timedelta(seconds=settings.rollup_grace_seconds),
                               min_group_size=settings.min_group_size, products=settings.products())
    # The budget ledger names analysts by a keyed hash; the key is derived from the deployment secret.
    ledger_key = hmac.new(settings.service_secret(), b"analytics-privacy-ledger", hashlib.sha256).digest()
    queries = AnalyticsQueries(runtime.uow, region, settings.min_group_size, settings.dp_budget_epsilon,
                               settings.dp_max_epsilon_per_query, ledger_key)
    runtime.subscribe("analytics-exclusions", [s.format(region=region) for s in SUBJECTS], handlers(service))
    UsageConsumer(runtime.bus, region, service).start()
    # The roll-up is the purge of usage events (governance.py); kept noisy answers and the budget
    # ledger are purged by the retention job that runtime.governance() schedules.
    runtime.every(settings.rollup_interval_seconds, service.rollup_finished_days)
    return runtime, service, queries


def serve(base: ServiceSettings) -> None:
    runtime, service, queries = bootstrap(base)
    settings = AnalyticsSettings(**base.model_dump())
    # Other regions answer a query for several regions with their released cells (regions.py).
    peer_secret = settings.peer_secret()
    regional = RegionalQueries(queries, GrpcPeers(settings.peers(), peer_secret, settings.region))
    # No legal-hold projection: it would put subject ids in a database that holds none, and no row
    # here can be tied to a subject id for a hold to cover (see governance.py).
    runtime.governance(declaration(settings.rollup_grace_seconds), GOVERNANCE,
                       hold_events=False)
    # What start-up made (modules, settings, engine) lives as long as the process: out of the
    # collector's way, so a full collection in the middle of a query scans only what queries made
    # (otherwise a pause of tens of milliseconds now and then, the p99 of a year's series).
    gc.freeze()
    runtime.serve(
        [
            (analytics_pb2_grpc.add_AnalyticsServicer_to_server, AnalyticsApi(queries, regional, peer_secret),
             SERVICE),
            (personal_data_pb2_grpc.add_PersonalDataServicer_to_server, PersonalDataApi(
                "analytics", service, runtime.scrubber.request),
             PERSONAL_DATA),
        ],
        # Every call carries a signed-in person or a service token, but RegionUsage: a peer region's
        # token, checked by the method itself (peers.py).
        public_methods=PUBLIC_METHODS,
    )


if __name__ == "__main__":
    main_entry("analytics", MIGRATIONS, serve)
