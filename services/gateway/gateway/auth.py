"""Who is calling: the bearer token.

The gateway verifies signature and expiry itself against identity's public keys (JWKS,
fetched once and again only for an unknown key id), so a forged or expired token costs
no call. Liveness comes from the region's revoked-session bucket on NATS, which identity
writes before it answers a logout, a password change, a reset or an erasure: a revoked
session is refused on its very next request with one key lookup. When the bucket cannot
be read, the gateway asks identity instead (fail closed).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, g, request
from kaseum.identity.v1 import identity_pb2
from servicekit import errors
from servicekit.caller import TokenVerifier, person_metadata
from servicekit.revocations import RevocationList

from .backends import Backends
from .errors import ApiError, fail


@dataclass(frozen=True)
class Caller:
    subject_id: str
    role: str
    region: str
    session_id: str
    token: str
    # The organisation in the token's `org` claim (a customer's company), "" if none.
    organisation_id: str = ""

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        # Services verify this token themselves; the gateway's check is not trusted downstream.
        return person_metadata(self.token)


def backends() -> Backends:
    return current_app.extensions["kaseum_backends"]  # type: ignore[no-any-return]


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header or scheme.lower() != "bearer" or not token.strip():
        fail(401, "unauthenticated", "sign-in required: send Authorization: Bearer <token>")
    return token.strip()


def revocations() -> RevocationList:
    return current_app.extensions["kaseum_revocations"]  # type: ignore[no-any-return]


def verifier() -> TokenVerifier:
    return current_app.extensions["kaseum_verifier"]  # type: ignore[no-any-return]


def require_caller() -> Caller:
    if "caller" not in g:
        token = bearer_token()
        def ask_identity() -> None:
            # Raises (UNAUTHENTICATED → 401) for a revoked session.
            backends().identity.Authenticate(identity_pb2.AuthenticateRequest(token=token))

        try:
            p = verifier().verify_person(token)
            revocations().refuse_revoked(p.session_id, ask_identity)
        except errors.Unauthenticated as exc:
            fail(401, exc.code, exc.message)
        except errors.Unavailable as exc:  # identity's keys cannot be had now: try again, not "signed out"
            raise ApiError(503, exc.code, exc.message, retry_after=1) from exc
        g.caller = Caller(p.subject_id, p.role, p.region, p.session_id, token, p.organisation_id)
    return g.caller  # type: ignore[no-any-return]


def require_role(*roles: str) -> Caller:
    caller = require_caller()
    if caller.role not in roles:
        fail(403, "forbidden", "not allowed for your role")
    return caller
