"""Analytics' settings: the common ones plus the small-group threshold and the rollup cadence."""

from __future__ import annotations

from pydantic import field_validator
from servicekit.settings import ServiceSettings

# Below five a published count is commonly treated as identifying (small-number suppression
# in official statistics uses 5 to 10); a deployment may raise the threshold, never lower it.
MIN_GROUP_SIZE_FLOOR = 5


class AnalyticsSettings(ServiceSettings):
    # Cells with fewer distinct users than this are suppressed (R-DATA-3, notice 3.3).
    min_group_size: int = 10
    # How often finished days are rolled up and their pseudonymous events deleted.
    rollup_interval_seconds: float = 3600.0

    @field_validator("min_group_size")
    @classmethod
    def _not_identifying(cls, value: int) -> int:
        if value < MIN_GROUP_SIZE_FLOOR:
            raise ValueError(f"min_group_size must be at least {MIN_GROUP_SIZE_FLOOR}")
        return value
