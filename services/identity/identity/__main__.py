"""`python -m identity [serve|migrate]`: bootstrap wires settings, database, bus and gRPC."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from kaseum.identity.v1 import identity_pb2_grpc, organisations_pb2_grpc
from kaseum.privacy.v1 import personal_data_pb2_grpc
from servicekit.errors import Unavailable
from servicekit.personal_data import FULL_NAME as PERSONAL_DATA
from servicekit.personal_data import PersonalDataApi
from servicekit.revocations import ENTRY_TTL_SECONDS
from servicekit.revocations import Unavailable as RevocationsUnavailable
from servicekit.runtime import ServiceRuntime, main_entry
from servicekit.settings import ServiceSettings

from .config import IdentitySettings
from .governance import declaration
from .grpc_api import PUBLIC_METHODS, SERVICE, IdentityApi
from .models import GOVERNANCE, Inbox, Outbox, Repository
from .organisations import OrganisationRules
from .organisations_api import SERVICE as ORGANISATIONS
from .organisations_api import OrganisationsApi
from .passwords import Passwords
from .service import IdentityService
from .tokens import TokenSigner

MIGRATIONS = Path(__file__).parent / "migrations"


def bootstrap(base: ServiceSettings) -> tuple[ServiceRuntime[Repository], IdentityService]:
    settings = IdentitySettings(**base.model_dump())
    if settings.token_ttl_seconds > ENTRY_TTL_SECONDS:
        raise SystemExit(f"TOKEN_TTL_SECONDS must be at most {ENTRY_TTL_SECONDS:.0f}: revocations are kept that long")
    signer = TokenSigner(settings.identity_signing_key.get_secret_value(), settings.token_ttl_seconds)
    runtime = ServiceRuntime(settings, Outbox, Inbox, Repository, jwks_source=signer.jwks)
    # One helper per gRPC worker: each sign-in in progress may need one.
    passwords = Passwords(settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism,
                          helpers=settings.grpc_workers)
    service = IdentityService(runtime.uow, passwords, signer, runtime.verifier, settings.region,
                              settings.notice_version, throttle_key=settings.service_secret(),
                              session_lifetime=timedelta(days=settings.session_lifetime_days))
    service.warm_up()
    runtime.every(settings.purge_interval_seconds, service.review_inactive)
    runtime.governance(declaration(settings.technical_retention_days), GOVERNANCE)
    revocations = runtime.revocations
    # Identity confirms a session from its own database, not by calling itself.
    def confirm_locally(token: str) -> None:
        service.authenticate(token)

    runtime.ask_identity = confirm_locally

    def announce(session_ids: list[str]) -> None:
        try:
            revocations.revoke(session_ids)
        except RevocationsUnavailable as exc:
            # The session is revoked in the database; gateways must learn it before we say so.
            raise Unavailable("the sign-out could not be confirmed yet; try again") from exc

    service.announce = service.recovery.announce = announce
    return runtime, service


def serve(base: ServiceSettings) -> None:
    runtime, service = bootstrap(base)
    runtime.serve(
        [
            (identity_pb2_grpc.add_IdentityServicer_to_server, IdentityApi(service), SERVICE),
            (personal_data_pb2_grpc.add_PersonalDataServicer_to_server, PersonalDataApi(
                "identity", service, runtime.scrubber.request),
             PERSONAL_DATA),
            (organisations_pb2_grpc.add_OrganisationsServicer_to_server,
             OrganisationsApi(OrganisationRules(runtime.uow)), ORGANISATIONS),
        ],
        PUBLIC_METHODS,
    )


if __name__ == "__main__":
    main_entry("identity", MIGRATIONS, serve)
