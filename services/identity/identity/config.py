"""Identity's settings: the common ones plus the token signing key and hashing cost."""

from __future__ import annotations

from pydantic import SecretStr
from servicekit.settings import ServiceSettings


class IdentitySettings(ServiceSettings):
    # Ed25519 private key (PEM) that signs session tokens; from the environment only.
    identity_signing_key: SecretStr = SecretStr("")
    # Access tokens are short-lived; sessions live on through single-use refresh tokens.
    token_ttl_seconds: int = 900
    session_lifetime_days: int = 30
    notice_version: str = "2024-01"
    # argon2id cost; at or above OWASP's recommendation (m=19 MiB, t=2, p=1).
    argon2_memory_kib: int = 19456
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    # Technical Data (section 3.2.3) is kept this long, then purged.
    technical_retention_days: int = 90
    purge_interval_seconds: float = 3600
