"""Home regions and the region guard: a service stores and serves only its own region's subjects."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from .errors import InvalidArgument, WrongRegion


@lru_cache(maxsize=1)
def _table() -> tuple[dict[str, str], str]:
    raw = json.loads(resources.files("servicekit").joinpath("data/regions.json").read_text())
    by_country = {c: region for region, countries in raw["regions"].items() for c in countries}
    return by_country, str(raw["default"])


def home_region(country: str) -> str:
    """The region that holds the data of a subject living in `country`."""
    if len(country) != 2 or not country.isalpha():
        raise InvalidArgument("country must be an ISO 3166-1 alpha-2 code", "invalid_country")
    by_country, default = _table()
    return by_country.get(country.upper(), default)


class RegionGuard:
    """Refuses subjects whose home region is not this deployment's."""

    def __init__(self, region: str) -> None:
        self.region = region

    def check(self, subject_region: str) -> None:
        if subject_region != self.region:
            raise WrongRegion(
                f"this deployment serves region '{self.region}'; the subject's home region is "
                f"'{subject_region}'"
            )
