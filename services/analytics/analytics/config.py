"""Analytics' settings: the common ones plus thresholds, roll-up timing and the privacy budget."""

from __future__ import annotations

from pydantic import SecretStr, field_validator
from servicekit.settings import ServiceSettings

# Below five a published count is commonly treated as identifying (small-number suppression
# in official statistics uses 5 to 10); a deployment may raise the threshold, never lower it.
MIN_GROUP_SIZE_FLOOR = 5


class AnalyticsSettings(ServiceSettings):
    # Cells with fewer distinct users than this are suppressed (R-DATA-3, notice 3.3).
    min_group_size: int = 10
    # How often the roll-up job looks for finished days.
    rollup_interval_seconds: float = 600.0
    # A day is rolled up (and its key destroyed) this long after it ends: late events arrive first.
    rollup_grace_seconds: float = 3600.0
    # Differential privacy: epsilon per analyst per calendar month, and per query at most.
    dp_budget_epsilon: float = 10.0
    dp_max_epsilon_per_query: float = 2.0
    # Other regions' analytics services, "eu=analytics.eu.internal:50055,us=…": a query for several
    # regions asks them for their released cells (regions.py). Empty: this region alone.
    analytics_peers: str = ""
    # Signs and checks the tokens peers present (peers.py); shared by the peer regions only, never
    # KASEUM_SERVICE_SECRET. Empty: this region neither asks nor answers peers.
    analytics_peer_secret: SecretStr = SecretStr("")

    @field_validator("analytics_peers")
    @classmethod
    def _peer_list(cls, value: str) -> str:
        from .peers import parse_peers

        parse_peers(value)
        return value

    def peers(self) -> dict[str, str]:
        from .peers import parse_peers

        return {r: a for r, a in parse_peers(self.analytics_peers).items() if r != self.region}

    def peer_secret(self) -> bytes:
        secret = self.analytics_peer_secret.get_secret_value().encode()
        if self.peers() and len(secret) < 32:
            raise RuntimeError("ANALYTICS_PEERS is set: ANALYTICS_PEER_SECRET must be at least 32 characters")
        return secret

    @field_validator("min_group_size")
    @classmethod
    def _not_identifying(cls, value: int) -> int:
        if value < MIN_GROUP_SIZE_FLOOR:
            raise ValueError(f"min_group_size must be at least {MIN_GROUP_SIZE_FLOOR}")
        return value

    @field_validator("dp_budget_epsilon", "dp_max_epsilon_per_query")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("epsilon settings must be positive")
        return value
