"""gRPC stubs for every service, built once per process in create_app()."""

from __future__ import annotations

from dataclasses import dataclass

from grpc_health.v1 import health_pb2_grpc
from kaseum.analytics.v1 import analytics_pb2_grpc
from kaseum.consent.v1 import consent_pb2_grpc
from kaseum.identity.v1 import identity_pb2_grpc, organisations_pb2_grpc
from kaseum.privacy.v1 import governance_pb2_grpc
from kaseum.rights.v1 import holds_pb2_grpc, rights_pb2_grpc
from kaseum.tickets.v1 import tickets_pb2_grpc
from servicekit import clients, governance_client
from servicekit.caller import TokenVerifier
from servicekit.runtime import jwks_source
from servicekit.settings import SERVICES

from .config import GatewaySettings

# Reads that are safe to retry when a replica is briefly unavailable.
IDEMPOTENT = {
    "identity": ("Authenticate", "GetMe", "GetJwks"),
    "tickets": ("ListTickets", "GetTicket"),
    "consent": ("GetPreferences",),
    "rights": ("ListRequests", "GetRequest"),
    "analytics": ("FeatureUsage",),
}
FULL_NAMES = {
    "identity": "kaseum.identity.v1.Identity",
    "tickets": "kaseum.tickets.v1.Tickets",
    "consent": "kaseum.consent.v1.Consent",
    "rights": "kaseum.rights.v1.Rights",
    "analytics": "kaseum.analytics.v1.Analytics",
}
# Organisations are served by the identity process, on a channel of their own (own retry policy).
ORGANISATIONS = "kaseum.identity.v1.Organisations"
ORGANISATIONS_IDEMPOTENT = ("ListOrganisations", "GetOrganisation")
# Legal holds are served by the rights process (section 12.1).
LEGAL_HOLDS = "kaseum.rights.v1.LegalHolds"


@dataclass
class Backends:
    identity: identity_pb2_grpc.IdentityStub
    tickets: tickets_pb2_grpc.TicketsStub
    consent: consent_pb2_grpc.ConsentStub
    rights: rights_pb2_grpc.RightsStub
    analytics: analytics_pb2_grpc.AnalyticsStub
    health: dict[str, health_pb2_grpc.HealthStub]
    organisations: organisations_pb2_grpc.OrganisationsStub
    # kaseum.privacy.v1.Governance of every service, for the DPO's routes (api/dpo.py).
    governance: dict[str, governance_pb2_grpc.GovernanceStub]
    holds: holds_pb2_grpc.LegalHoldsStub


def jwks_verifier(backends: Backends) -> TokenVerifier:
    """Verifies person tokens with identity's public keys (GetJwks is public: no secret here)."""
    # The gateway holds no service secret: it never verifies service tokens.
    return TokenVerifier(jwks_source(backends.identity), service_secret=b"")


def connect(settings: GatewaySettings) -> Backends:
    channels = {
        name: clients.channel(settings.addr_of(name), FULL_NAMES[name], IDEMPOTENT[name],
                              deadline=settings.upstream_deadline)
        for name in SERVICES
    }
    return Backends(
        identity=identity_pb2_grpc.IdentityStub(channels["identity"]),
        tickets=tickets_pb2_grpc.TicketsStub(channels["tickets"]),
        consent=consent_pb2_grpc.ConsentStub(channels["consent"]),
        rights=rights_pb2_grpc.RightsStub(channels["rights"]),
        analytics=analytics_pb2_grpc.AnalyticsStub(channels["analytics"]),
        health={name: health_pb2_grpc.HealthStub(ch) for name, ch in channels.items()},
        organisations=organisations_pb2_grpc.OrganisationsStub(clients.channel(
            settings.addr_of("identity"), ORGANISATIONS, ORGANISATIONS_IDEMPOTENT,
            deadline=settings.upstream_deadline)),
        governance=governance_client.stubs(settings, settings.upstream_deadline),
        holds=holds_pb2_grpc.LegalHoldsStub(clients.channel(
            settings.addr_of("rights"), LEGAL_HOLDS, ("ListHolds",), deadline=settings.upstream_deadline)),
    )
