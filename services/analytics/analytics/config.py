"""Analytics' settings: the common ones plus thresholds, roll-up timing and the privacy budget."""

from __future__ import annotations

from pydantic import field_validator
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
