"""Who may see which ticket: need to know, deny by default (sections 5.1.1 and 11; R-SHARE-1, R-SEC-1).

- a customer: their own tickets, and their organisation's when an admin enabled sharing for it;
- an agent: the deployment's queue (every ticket of this region);
- a reseller: tickets of the customer organisations it sold to, or of customers in the countries it
  operates in, while identity says so (see scopes.py);
- anyone else (dpo, analyst, admin, services): none. The DPO reaches ticket data through the
  personal-data contract of a rights request, never by browsing.

`Viewer.can_see` decides for one ticket; the repository applies the same rules as a SQL filter for
listings and search, and the tests hold both to one table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from servicekit.caller import Principal

AGENTS = frozenset({"agent"})
RESELLERS = frozenset({"reseller"})
# Who may write internal notes and read them: the company's own support staff.
NOTE_READERS = AGENTS


@dataclass(frozen=True)
class Scope:
    """The customer organisations and countries a reseller may support, as identity said."""

    reseller_id: str = ""
    customer_organisation_ids: frozenset[str] = field(default_factory=frozenset)
    countries: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Viewer:
    """The caller, with what their role lets them see."""

    principal: Principal
    # Customers: their organisation, when it shares tickets among its members.
    shared_organisation: str = ""
    # Resellers: their scope.
    scope: Scope = field(default_factory=Scope)

    @property
    def subject_id(self) -> str:
        return self.principal.subject_id

    @property
    def role(self) -> str:
        return self.principal.role

    @property
    def is_agent(self) -> bool:
        return self.role in AGENTS

    @property
    def is_reseller(self) -> bool:
        return self.role in RESELLERS

    @property
    def is_customer(self) -> bool:
        return self.role == "customer"

    @property
    def sees_notes(self) -> bool:
        return self.role in NOTE_READERS

    @property
    def is_support(self) -> bool:
        """Answers tickets for the company: agents and resellers (whose edits a restriction freezes)."""
        return self.is_agent or self.is_reseller

    def can_see(self, requester_id: str, organisation_id: str, requester_country: str) -> bool:
        if self.is_customer:
            return requester_id == self.subject_id or (
                bool(self.shared_organisation) and organisation_id == self.shared_organisation)
        if self.is_agent:
            return True
        if self.is_reseller:
            return (bool(organisation_id) and organisation_id in self.scope.customer_organisation_ids) or (
                bool(requester_country) and requester_country in self.scope.countries)
        return False

    @property
    def may_list(self) -> bool:
        return self.is_customer or self.is_agent or self.is_reseller
