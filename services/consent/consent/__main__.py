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
from .calls import CallLists
from .campaigns import Campaigns
from .config import ConsentSettings
from .governance import DECLARATION
from .grpc_api import PUBLIC_METHODS, SERVICE, ConsentApi
from .identity_client import IdentityDirectory
from .keys import Keys
from .mailer import SmtpMailer
from .models import GOVERNANCE, Inbox, Outbox, Repository
from .rights_client import RightsCodes
from .sending import Sender, SenderConfig
from .service import ConsentService

MIGRATIONS = Path(__file__).parent / "migrations"


def bootstrap(base: ServiceSettings
              ) -> tuple[ServiceRuntime[Repository], ConsentService, Campaigns, CallLists, Sender]:
    settings = ConsentSettings(**base.model_dump())
    runtime = ServiceRuntime(settings, Outbox, Inbox, Repository)
    keys = Keys.from_secret(settings.service_secret(), settings.suppression_key.get_secret_value().encode())
    directory = IdentityDirectory(settings.identity_addr, runtime.credentials)
    service = ConsentService(runtime.uow, settings.region, settings.notice_version, keys, directory,
                             unsubscribe_days=settings.unsubscribe_token_days)
    campaigns = Campaigns(runtime.uow)
    mailer = SmtpMailer(settings.smtp_host, settings.smtp_port, settings.smtp_username,
                        settings.smtp_password.get_secret_value(), settings.smtp_starttls, settings.smtp_timeout)
    codes = RightsCodes(settings.rights_addr, runtime.credentials)
    sender = Sender(runtime.uow, service, directory, codes, mailer, SenderConfig(
        base_url=settings.public_base_url, sender=settings.mail_from, batch=settings.send_batch,
        max_attempts=settings.send_max_attempts))
    runtime.subscribe("consent", [s.format(region=settings.region) for s in events.SUBJECTS],
                      events.handlers(service))
    # Every replica works the outgoing queue; leases keep them off each other's rows.
    runtime.every(settings.send_poll_seconds, sender.drain)
    return runtime, service, campaigns, CallLists(runtime.uow, service, directory), sender


def serve(base: ServiceSettings) -> None:
    runtime, service, campaigns, calls, _ = bootstrap(base)
    runtime.governance(DECLARATION, GOVERNANCE)
    runtime.serve([
        (consent_pb2_grpc.add_ConsentServicer_to_server, ConsentApi(service, campaigns, calls), SERVICE),
        (personal_data_pb2_grpc.add_PersonalDataServicer_to_server, PersonalDataApi(
                "consent", service, runtime.scrubber.request),
             PERSONAL_DATA),
    ], PUBLIC_METHODS)


if __name__ == "__main__":
    main_entry("consent", MIGRATIONS, serve)
