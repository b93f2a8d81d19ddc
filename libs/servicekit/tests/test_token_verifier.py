"""Unit tests of servicekit's TokenVerifier (R-SEC-2): what a service answers before and while it can fetch
identity's public keys. The JWKS source is a fake here: identity's own key handling is tested in identity."""

from __future__ import annotations

import json
import time
from datetime import datetime, tzinfo
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


class Keys:
    """GetJwks as a callable whose published keys can change."""

    def __init__(self, *keys: tuple[str, Ed25519PrivateKey]) -> None:
        self.publish(*keys)

    def publish(self, *keys: tuple[str, Ed25519PrivateKey]) -> None:
        self.jwks = {"keys": [{**json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key())), "kid": kid}
                              for kid, key in keys]}

    def __call__(self) -> dict[str, Any]:
        return self.jwks


def counting_decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens whose signature the verifier checks from here on."""
    checked: list[str] = []
    decode = jwt.decode

    def counted(token: str, *args: Any, **kwargs: Any) -> Any:
        checked.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr(caller.jwt, "decode", counted)
    return checked


@pytest.mark.rule("R-SEC-2")
def test_a_tokens_signature_is_checked_once_and_its_expiry_on_every_use(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = caller.TokenVerifier(Identity(up=True), b"")
    checked = counting_decodes(monkeypatch)
    good = token()
    assert verifier.verify_person(good) == verifier.verify_person(good)
    assert checked == [good]
    # A changed byte is not the token remembered: it is checked, and refused.
    forged = good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1]
    with pytest.raises(Unauthenticated):
        verifier.verify_person(forged)
    assert checked == [good, forged] and len(verifier.verified) == 1
    # Past its expiry the remembered token is refused like any expired one.
    later = time.time() + 301

    class Later(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> Later:
            return cls.fromtimestamp(later, tz)

    monkeypatch.setattr(caller.time, "time", lambda: later)
    monkeypatch.setattr(jwt.api_jwt, "datetime", Later)
    with pytest.raises(Unauthenticated):
        verifier.verify_person(good)
    assert len(verifier.verified) == 0


@pytest.mark.rule("R-SEC-2")
def test_a_key_identity_withdraws_stops_its_remembered_tokens_at_the_next_fetch(
        monkeypatch: pytest.MonkeyPatch) -> None:
    new_key = Ed25519PrivateKey.generate()
    keys = Keys(("k1", KEY))
    verifier = caller.TokenVerifier(keys, b"")
    old = token("k1")
    verifier.verify_person(old)
    # Rotation: identity publishes k2 and withdraws k1; a token of k2 makes the verifier fetch again.
    keys.publish(("k2", new_key))
    real = time.monotonic
    monkeypatch.setattr(caller.time, "monotonic", lambda: real() + 10)  # past the 5 s between fetches
    verifier.verify_person(token("k2", new_key))
    with pytest.raises(Unauthenticated):
        verifier.verify_person(old)


@pytest.mark.rule("R-SEC-2")
def test_a_key_kept_through_a_fetch_keeps_its_tokens_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    new_key = Ed25519PrivateKey.generate()
    keys = Keys(("k1", KEY))
    verifier = caller.TokenVerifier(keys, b"")
    kept = token("k1")
    verifier.verify_person(kept)
    keys.publish(("k1", KEY), ("k2", new_key))
    real = time.monotonic
    monkeypatch.setattr(caller.time, "monotonic", lambda: real() + 10)
    verifier.verify_person(token("k2", new_key))
    checked = counting_decodes(monkeypatch)
    verifier.verify_person(kept)
    assert checked == []


def test_the_tokens_remembered_are_bounded() -> None:
    remembered = caller.VerifiedTokens(kept=3)
    who = caller.Principal("person", "a" * 32, "customer")
    for n in range(5):
        remembered.add(f"token-{n}", who, time.time() + 60)
    assert len(remembered) == 3
    assert remembered.get("token-0") is None and remembered.get("token-4") == who
