"""Keys consent derives from its secrets, one per use, so that no key serves two purposes."""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def derive(secret: bytes, label: str) -> bytes:
    return hmac.new(secret, f"kaseum-consent/{label}".encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class Keys:
    unsubscribe: bytes
    suppression: bytes
    seal: bytes

    @classmethod
    def from_secret(cls, service_secret: bytes, suppression_key: bytes = b"") -> Keys:
        return cls(unsubscribe=derive(service_secret, "unsubscribe"),
                   suppression=derive(suppression_key or service_secret, "suppression"),
                   seal=derive(service_secret, "seal"))

    def seal_text(self, text: str, associated: str) -> bytes:
        """AES-GCM with a random nonce; `associated` binds the sealed text to its row."""
        nonce = os.urandom(12)
        return nonce + AESGCM(self.seal).encrypt(nonce, text.encode(), associated.encode())

    def open_text(self, sealed: bytes, associated: str) -> str:
        return AESGCM(self.seal).decrypt(sealed[:12], sealed[12:], associated.encode()).decode()
