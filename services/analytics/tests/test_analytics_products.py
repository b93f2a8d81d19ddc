"""The product dimension comes from what customers type: only the deployment's listed products ever
become a dimension value (an aggregate's label), anything else is "other" (N §3.3; R-DATA-3)."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from analytics.config import AnalyticsSettings
from analytics.models import Repository, UsageDaily, UsageReleased
from analytics.service import AnalyticsService, Use, accepted
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from servicekit.db import UnitOfWorkFactory
from servicekit.dimensions import DEFAULT_PRODUCTS
from servicekit.pseudonyms import Exclusions, PseudonymKeys, pseudonym
from servicekit.testing import Clock
from sqlalchemy import select

DAY = date(2025, 3, 3)
LISTED = ("erp", "billing")
FREE_TEXT = ("Ada Lovelace's secret project", "billing-for-jane-doe", "jane.doe@example.com", "ERP for Acme Ltd")


def use(region: str, n: int, product: str) -> Use:
    return Use(uuid.uuid4().hex, DAY, region, "tickets.open", pseudonym(b"k", f"subject-{n}-{product}"), product)


@pytest.mark.rule("R-DATA-3")
@given(st.text(max_size=60))
def test_any_text_becomes_a_listed_product_other_or_nothing(product: str) -> None:
    kept = accepted(Use("e" * 32, DAY, "uk", "tickets.open", "a" * 64, product), LISTED)
    assert kept is not None and kept.product in {*LISTED, "other", ""}


@pytest.mark.rule("R-DATA-3")
@pytest.mark.notice("3.3")
def test_a_free_text_product_never_reaches_an_aggregate_label(
        uow: UnitOfWorkFactory[Repository], region: str, keys: PseudonymKeys, exclusions: Exclusions,
        clock: Clock) -> None:
    service = AnalyticsService(uow, region, keys, exclusions, clock=clock, products=LISTED)
    # Twelve people per product typed: each would be a visible cell (threshold 10) if it were a label.
    typed = ("ERP ", "billing", "", "other", "none", "support", *FREE_TEXT)
    service.ingest([use(region, n, product) for product in typed for n in range(12)])
    service.rollup(DAY)
    with uow() as u:
        counted = {(r.value, r.users) for r in u.session.scalars(
            select(UsageDaily).where(UsageDaily.dimension == "product", UsageDaily.feature == "tickets.open"))}
        released = set(u.session.scalars(select(UsageReleased.value).where(UsageReleased.dimension == "product")))
    # "support" is a product of the default list, not of this deployment's: "other" too.
    other = 12 * (3 + len(FREE_TEXT))  # "other", "none", "support" and the free text
    assert counted == {("erp", 12), ("billing", 12), ("none", 12), ("other", other)}
    assert released <= {"", "erp", "billing", "none", "other"} and "other" in released


@pytest.mark.rule("R-DATA-3")
def test_the_product_list_is_a_setting_of_slugs() -> None:
    assert AnalyticsSettings().products() == DEFAULT_PRODUCTS
    assert AnalyticsSettings(analytics_products=" ERP, billing,erp ").products() == ("erp", "billing")
    for bad in ("Jane Doe", "other", "billing,none", "x" * 41):
        with pytest.raises(ValidationError):
            AnalyticsSettings(analytics_products=bad)
