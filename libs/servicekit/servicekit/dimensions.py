"""Coarse dimension values of usage statistics, shared by the gateway (which publishes uses) and
analytics (which stores and counts them).

A use's product comes from what the customer typed in a ticket's `product` field: free text, which
could carry a person's or a project's name into an aggregate label that analysts read (and a label
held by one person is itself a small group). So only the products on the deployment's list
(ANALYTICS_PRODUCTS, the products it sells) become dimension values; anything else is "other", and
no product at all is "". Both sides apply the list: defence in depth, and an event published by an
older or misconfigured gateway still cannot put free text into a cell.
"""

from __future__ import annotations

import re
from collections.abc import Collection

# The products a deployment sells unless ANALYTICS_PRODUCTS says otherwise.
DEFAULT_PRODUCTS = ("portal", "billing", "support")
OTHER_PRODUCT = "other"
# Values the cells use for "other" and "no product": a product cannot be named so.
RESERVED = (OTHER_PRODUCT, "none")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")


def parse_products(text: str) -> tuple[str, ...]:
    """A comma-separated list of product slugs (lower case, at most 40 characters), checked."""
    products = tuple(dict.fromkeys(p.strip().lower() for p in text.split(",") if p.strip()))
    bad = [p for p in products if not _SLUG.match(p) or p in RESERVED]
    if bad:
        raise ValueError(f"not a product slug, or reserved ({', '.join(RESERVED)}): {', '.join(bad)}")
    return products


def coarse_product(value: object, products: Collection[str]) -> str:
    """The dimension value of a product as given: itself if listed (case and surrounding spaces
    ignored), "" if none, else "other"."""
    if not isinstance(value, str) or not value.strip():
        return ""
    slug = value.strip().lower()
    return slug if slug in products and slug not in RESERVED else OTHER_PRODUCT


# Customer organisation size bands (employees), the coarse dimension "org_size_band". An exact
# head count would make a small company identifiable; a band of four never does on its own.
SIZE_BANDS = ("1-9", "10-49", "50-249", "250+")
_BAND_FLOORS = ((250, "250+"), (50, "50-249"), (10, "10-49"), (1, "1-9"))


def size_band_of(employees: int) -> str:
    """The band of a declared employee count (at least 1)."""
    if employees < 1:
        raise ValueError("an employee count is at least 1")
    return next(band for floor, band in _BAND_FLOORS if employees >= floor)
