"""A reseller's scope is asked of identity and trusted for at most a minute (section 5.1.1)."""

from __future__ import annotations

import pytest
from tickets.scopes import ResellerScopes
from tickets.visibility import Scope

from .conftest import ACME, FakeIdentity

pytestmark = [pytest.mark.notice("5.1.1"), pytest.mark.rule("R-SHARE-1")]


class Ticking:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_cached_scope_expires_and_a_changed_relationship_is_forgotten_at_once() -> None:
    identity, clock = FakeIdentity(), Ticking()
    identity.scopes["acct"] = Scope("reseller-1", frozenset({ACME}))
    scopes = ResellerScopes(identity, ttl=30, clock=clock)
    assert scopes.of("acct").customer_organisation_ids == {ACME}
    identity.scopes["acct"] = Scope("reseller-1")  # identity ends the relationship
    clock.now = 29.9
    assert scopes.of("acct").customer_organisation_ids == {ACME} and identity.asked == 1
    clock.now = 30.0
    assert scopes.of("acct").customer_organisation_ids == set() and identity.asked == 2
    identity.scopes["acct"] = Scope("reseller-1", frozenset({ACME}))
    scopes.forget("reseller-1")  # the relationship_changed event
    assert scopes.of("acct").customer_organisation_ids == {ACME} and identity.asked == 3


def test_no_cache_may_outlive_a_minute() -> None:
    with pytest.raises(ValueError):
        ResellerScopes(FakeIdentity(), ttl=61)
