"""Caller identity: who is calling, carried in gRPC metadata and checked by the callee.

People carry the session token identity issued (`authorization: Bearer …`,
EdDSA, verified against identity's JWKS). Services and the operator CLI carry a
short-lived HS256 token signed with KASEUM_SERVICE_SECRET (`x-kaseum-service`).
No service trusts that the gateway already checked.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import jwt

from .errors import PermissionDenied, Unauthenticated, Unavailable

USER_AUDIENCE = "kaseum"
SERVICE_AUDIENCE = "kaseum-internal"
ISSUER = "kaseum-identity"
SERVICE_HEADER = "x-kaseum-service"

STAFF_ROLES = frozenset({"agent", "reseller", "dpo", "analyst", "admin"})
ROLES = STAFF_ROLES | {"customer"}


@dataclass(frozen=True)
class Principal:
    """Who a request speaks for. `kind` is "person" or "service"."""

    kind: str
    subject_id: str
    role: str
    region: str = ""
    session_id: str = ""
    # A person's organisation (customer company or reseller) and country (ISO 3166-1 alpha-2), as
    # identity knew them when it signed the token (at most one access-token lifetime old); "" if none.
    organisation_id: str = ""
    country: str = ""

    @property
    def is_service(self) -> bool:
        return self.kind == "service"


_current: ContextVar[Principal | None] = ContextVar("kaseum_principal", default=None)


def current() -> Principal | None:
    return _current.get()


def set_current(principal: Principal | None) -> object:
    return _current.set(principal)


def reset_current(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]


def require_person(*roles: str) -> Principal:
    """The calling person, who must hold one of `roles` (any role if none given)."""
    principal = _current.get()
    if principal is None:
        raise Unauthenticated("sign-in required")
    if principal.is_service or (roles and principal.role not in roles):
        raise PermissionDenied("not allowed for this role")
    return principal


def require_service(*names: str) -> Principal:
    """A calling service (or the operator CLI), optionally one of `names`."""
    principal = _current.get()
    if principal is None:
        raise Unauthenticated("service credentials required")
    if not principal.is_service or (names and principal.subject_id not in names):
        raise PermissionDenied("not allowed for this caller")
    return principal


def require_any() -> Principal:
    principal = _current.get()
    if principal is None:
        raise Unauthenticated("sign-in required")
    return principal


def mint_service_token(secret: bytes, service: str, ttl: int = 120) -> str:
    now = int(time.time())
    claims = {"sub": service, "aud": SERVICE_AUDIENCE, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm="HS256")


class ServiceCredentials:
    """Mints and caches this process's service token (re-minted before it expires)."""

    def __init__(self, secret: bytes, service: str) -> None:
        self._secret = secret
        self._service = service
        self._token = ""
        self._expires = 0.0
        self._lock = threading.Lock()

    def metadata(self) -> tuple[tuple[str, str], ...]:
        with self._lock:
            if time.time() > self._expires - 30:
                self._token = mint_service_token(self._secret, self._service)
                self._expires = time.time() + 120
            return ((SERVICE_HEADER, self._token),)


JwksSource = Callable[[], dict[str, Any]]


# Person tokens remembered as verified (VerifiedTokens): a few MiB at most per process.
VERIFIED_TOKENS_KEPT = 4096


class VerifiedTokens:
    """Person tokens whose signature and claims were checked, with who they speak for, until they expire.

    A person sends the same token with every request for its life (minutes), and its signature check was a
    third of what an authenticated request costs at the gateway; each service checks it again. Only a
    verified token is kept, keyed by its whole text, so a changed byte is checked afresh; its expiry is
    checked on every use. Revocation is not a property of the token: the gateway asks the revoked-session
    bucket on every request, cached or not. Bounded: past `kept` tokens the oldest is forgotten.
    """

    def __init__(self, kept: int = VERIFIED_TOKENS_KEPT) -> None:
        self._kept = kept
        self._tokens: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> Principal | None:
        found = self._tokens.get(token)
        if found is None:
            return None
        if time.time() < found[1]:  # PyJWT's rule with no leeway: expired from `exp` on
            return found[0]
        with self._lock:
            self._tokens.pop(token, None)
        return None

    def add(self, token: str, principal: Principal, expires: float) -> None:
        with self._lock:
            if len(self._tokens) >= self._kept:
                del self._tokens[next(iter(self._tokens))]  # the oldest kept (dicts keep insertion order)
            self._tokens[token] = (principal, expires)

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()

    def __len__(self) -> int:
        return len(self._tokens)


class TokenVerifier:
    """Verifies person and service tokens; person keys come from identity's JWKS."""

    def __init__(self, jwks_source: JwksSource, service_secret: bytes) -> None:
        self._jwks_source = jwks_source
        self._service_secret = service_secret
        self._keys: dict[str, Any] = {}
        self._last_fetch = 0.0
        self._lock = threading.Lock()
        self._published: dict[str, dict[str, Any]] = {}  # the JWKs behind `_keys`, by kid
        self.verified = VerifiedTokens()

    def warm_up(self) -> None:
        """Fetch the keys in the background now, retrying until identity answers (every 0.2 s while the
        system starts, then backing off to 5 s), so that tokens can be checked later even while identity is
        away. Until then `has_keys()` is False: a service reports itself not ready (runtime.py), since it
        could check no person's token."""
        def fetch() -> None:
            began, wait = time.monotonic(), 0.2
            while True:
                try:
                    jwks = self._jwks_source()
                except Exception:  # identity not up yet: try again shortly
                    time.sleep(wait)
                    if time.monotonic() - began > 10:
                        wait = min(wait * 2, 5.0)
                    continue
                with self._lock:
                    if not self._keys:  # a fetch on demand may have been first
                        self._set_keys(jwks)
                return

        threading.Thread(target=fetch, name="jwks", daemon=True).start()

    def has_keys(self) -> bool:
        """Whether identity's public keys are held (person tokens can be checked)."""
        with self._lock:
            return bool(self._keys)

    def _key(self, kid: str) -> Any:
        """The key `kid` names, None if identity has no such key; Unavailable when that cannot be told now
        (no keys fetched yet, or identity unreachable for a key not seen before): a 503, not a 401 that
        would tell a signed-in person their token is bad."""
        with self._lock:
            # Refetch on an unknown kid (key rotation), at most every 5 s.
            if kid not in self._keys and time.monotonic() - self._last_fetch > 5:
                self._last_fetch = time.monotonic()
                try:
                    jwks = self._jwks_source()
                except Exception as exc:
                    raise Unavailable("the keys that check sign-in tokens cannot be fetched now") from exc
                self._set_keys(jwks)
            if not self._keys:
                raise Unavailable("the keys that check sign-in tokens are not fetched yet")
            return self._keys.get(kid)

    def _set_keys(self, jwks: dict[str, Any]) -> None:
        """Hold a fresh key set (under the lock). If a key held before is gone or changed, the tokens
        remembered as verified are checked again, so a key identity has withdrawn stops working at once."""
        published = {k["kid"]: k for k in jwks.get("keys", []) if "kid" in k}
        if any(published.get(kid) != jwk for kid, jwk in self._published.items()):
            self.verified.clear()
        self._published = published
        self._keys = {kid: jwt.PyJWK.from_dict(jwk).key for kid, jwk in published.items()}
        self._last_fetch = time.monotonic()

    def verify_person(self, token: str) -> Principal:
        known = self.verified.get(token)
        if known is not None:
            return known
        try:
            header = jwt.get_unverified_header(token)
            key = self._key(str(header.get("kid", "")))
            if key is None:
                raise Unauthenticated("invalid token")
            claims = jwt.decode(
                token, key, algorithms=["EdDSA"], audience=USER_AUDIENCE, issuer=ISSUER,
                options={"require": ["exp", "sub", "sid", "role", "region"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated("invalid or expired token") from exc
        principal = Principal("person", str(claims["sub"]), str(claims["role"]), str(claims["region"]),
                              str(claims["sid"]), str(claims.get("org", "")), str(claims.get("cty", "")))
        self.verified.add(token, principal, float(claims["exp"]))
        return principal

    def verify_service(self, token: str) -> Principal:
        if len(self._service_secret) < 32:
            # A process without the deployment secret (the gateway) accepts no service token.
            raise Unauthenticated("invalid service credentials")
        try:
            claims = jwt.decode(token, self._service_secret, algorithms=["HS256"],
                                audience=SERVICE_AUDIENCE, options={"require": ["exp", "sub"]})
        except jwt.PyJWTError as exc:
            raise Unauthenticated("invalid service credentials") from exc
        return Principal("service", str(claims["sub"]), "service")

    def from_metadata(self, metadata: dict[str, str]) -> Principal | None:
        if SERVICE_HEADER in metadata:
            return self.verify_service(metadata[SERVICE_HEADER])
        auth = metadata.get("authorization", "")
        if auth:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise Unauthenticated("malformed authorization")
            return self.verify_person(token)
        return None


def person_metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def jwks_from_json(text: str) -> dict[str, Any]:
    data = json.loads(text)
    return data if isinstance(data, dict) else {}
