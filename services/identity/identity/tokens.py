"""Session tokens: EdDSA-signed JWTs whose public key is published as a JWKS."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from servicekit import caller


class TokenSigner:
    def __init__(self, private_pem: str, ttl_seconds: int) -> None:
        if not private_pem.strip():
            raise RuntimeError("IDENTITY_SIGNING_KEY (an Ed25519 private key in PEM) must be set")
        key = serialization.load_pem_private_key(private_pem.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise RuntimeError("IDENTITY_SIGNING_KEY must be an Ed25519 key")
        self._key = key
        self.public_key: Ed25519PublicKey = key.public_key()
        raw = self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.kid = base64.urlsafe_b64encode(hashlib.sha256(raw).digest()[:12]).decode().rstrip("=")
        self.ttl = ttl_seconds

    def sign(self, subject_id: str, role: str, region: str, session_id: str, organisation_id: str = "",
             country: str = "") -> tuple[str, datetime]:
        """An access token. `org` and `cty` let the owning services scope data (a reseller's customers,
        colleagues' tickets) without a call per request; they are ids and codes, never names."""
        now = int(time.time())
        exp = now + self.ttl
        claims: dict[str, Any] = {"sub": subject_id, "role": role, "region": region, "sid": session_id,
                                  "iat": now, "exp": exp, "iss": caller.ISSUER, "aud": caller.USER_AUDIENCE}
        if organisation_id:
            claims["org"] = organisation_id
        if country:
            claims["cty"] = country
        token = jwt.encode(claims, self._key, algorithm="EdDSA", headers={"kid": self.kid})
        return token, datetime.fromtimestamp(exp, UTC)

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(self.public_key))
        jwk.update({"kid": self.kid, "alg": "EdDSA", "use": "sig"})
        return {"keys": [jwk]}


def generate_private_pem() -> str:
    """A fresh Ed25519 key in PEM (used by `make run` and the tests)."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
