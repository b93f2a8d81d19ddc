"""Unit tests of servicekit's TokenVerifier (R-SEC-2): what a service answers before and while it can fetch
identity's public keys. The JWKS source is a fake here: identity's own key handling is tested in identity."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from servicekit import caller
from servicekit.errors import Unauthenticated, Unavailable
from servicekit.testing import eventually

KEY = Ed25519PrivateKey.generate()
JWKS = {"keys": [{**json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(KEY.public_key())), "kid": "k1"}]}


def token(kid: str = "k1", key: Ed25519PrivateKey = KEY) -> str:
    now = int(time.time())
    claims = {"sub": "a" * 32, "role": "customer", "region": "uk", "sid": "s" * 32, "iat": now, "exp": now + 300,
              "iss": caller.ISSUER, "aud": caller.USER_AUDIENCE}
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})


class Identity:
    """GetJwks as a callable: up or down."""

    def __init__(self, up: bool) -> None:
        self.up = up
        self.asked = 0

    def __call__(self) -> dict[str, Any]:
        self.asked += 1
        if not self.up:
            raise ConnectionError("identity is down")
        return JWKS


def test_without_keys_a_good_token_is_unavailable_not_refused() -> None:
    identity = Identity(up=False)
    verifier = caller.TokenVerifier(identity, b"")
    # Identity cannot be asked: the token cannot be checked now, which is a 503, never "signed out".
    with pytest.raises(Unavailable):
        verifier.verify_person(token())
    # Asked again within 5 s (no new fetch): still no keys, still unavailable.
    with pytest.raises(Unavailable):
        verifier.verify_person(token())
    assert identity.asked == 1 and not verifier.has_keys()


def test_warm_up_keeps_trying_until_identity_answers_and_then_the_keys_outlive_it() -> None:
    identity = Identity(up=False)
    verifier = caller.TokenVerifier(identity, b"")
    verifier.warm_up()
    eventually(lambda: identity.asked >= 2)  # it retried
    assert not verifier.has_keys()
    identity.up = True
    eventually(verifier.has_keys)
    identity.up = False
    assert verifier.verify_person(token()).subject_id == "a" * 32
    # A token signed by a key identity never published is refused as ever.
    with pytest.raises(Unauthenticated):
        verifier.verify_person(token(key=Ed25519PrivateKey.generate()))
