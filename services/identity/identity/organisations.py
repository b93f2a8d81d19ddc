"""Organisations and reseller relationships (privacy notice section 5.1.1; R-SHARE-1, R-SEC-1).

Customers belong to a customer organisation (their company). A reseller
organisation may support a customer only if it sold the customer's
organisation a product (a link here) or operates in the customer's country
(its countries here); `reseller_scope` gives the tickets service both.

Who may do what is decided here, from the caller's principal, deny by default:
administrators (a person with role "admin") and the operator CLI manage
organisations; the tickets service (and administrators) read a reseller's
scope. Every change is written to the append-only audit trail and published
as `identity.reseller.relationship_changed` in the same transaction.

Knows nothing of gRPC or SQL: it works through the unit of work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pycountry
from kaseum.events.v1 import identity_events_pb2 as ev
from servicekit import cursors
from servicekit.caller import Principal
from servicekit.db import UnitOfWork, UnitOfWorkFactory, new_id, utcnow
from servicekit.dimensions import SIZE_BANDS, size_band_of
from servicekit.errors import Conflict, InvalidArgument, NotFound, PermissionDenied, Unauthenticated

from .models import Organisation, OrganisationAudit, Repository, ResellerCustomer

KINDS = ("customer", "reseller")
MAX_NAME = 200
MAX_COUNTRIES = 250
DEFAULT_PAGE = 50
MAX_PAGE = 100
# Service principals that may manage organisations, and that may read a reseller's scope.
ADMIN_SERVICES = frozenset({"cli"})
SCOPE_SERVICES = frozenset({"tickets", "cli"})
RELATIONSHIP_CHANGED = "identity.reseller.relationship_changed"
SHARING_CHANGED = "identity.organisation.ticket_sharing_changed"


@dataclass(frozen=True)
class OrganisationView:
    organisation: Organisation
    countries: list[str] = field(default_factory=list)
    customer_organisation_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class OrganisationPage:
    items: list[OrganisationView]
    next_cursor: str


@dataclass(frozen=True)
class ResellerScope:
    """What a reseller account may see: its organisation's customers and countries, read at `as_of`."""

    reseller_id: str
    customer_organisation_ids: list[str]
    countries: list[str]
    as_of: datetime


def _present(principal: Principal | None) -> Principal:
    if principal is None:
        raise Unauthenticated("sign-in required")
    return principal


def is_admin(principal: Principal) -> bool:
    if principal.is_service:
        return principal.subject_id in ADMIN_SERVICES
    return principal.kind == "person" and principal.role == "admin"


def require_admin(principal: Principal | None) -> Principal:
    principal = _present(principal)
    if not is_admin(principal):
        raise PermissionDenied("only an administrator may manage organisations")
    return principal


def require_scope_reader(principal: Principal | None) -> Principal:
    principal = _present(principal)
    allowed = principal.subject_id in SCOPE_SERVICES if principal.is_service else is_admin(principal)
    if not allowed:
        raise PermissionDenied("not allowed for this caller")
    return principal


def name_of(value: str) -> str:
    name = " ".join(value.split())  # trims and folds runs of whitespace (and drops control whitespace)
    if not name or len(name) > MAX_NAME:
        raise InvalidArgument(f"name must be 1–{MAX_NAME} characters", "invalid_name")
    if any(not ch.isprintable() for ch in name):
        raise InvalidArgument("name must not contain control characters", "invalid_name")
    return name


def name_key(name: str) -> str:
    """Case-insensitive key; the same one sign-up uses to find a customer's company."""
    return name.strip().casefold()


def countries_of(values: list[str]) -> list[str]:
    """ISO 3166-1 alpha-2 codes, upper-cased, de-duplicated and sorted."""
    if len(values) > MAX_COUNTRIES:
        raise InvalidArgument(f"at most {MAX_COUNTRIES} countries", "invalid_country")
    codes = set()
    for value in values:
        code = value.strip().upper()
        if len(code) != 2 or not code.isascii() or not code.isalpha() or pycountry.countries.get(alpha_2=code) is None:
            raise InvalidArgument("countries must be ISO 3166-1 alpha-2 codes", "invalid_country")
        codes.add(code)
    return sorted(codes)


class OrganisationRules:
    def __init__(self, uow: UnitOfWorkFactory[Repository]) -> None:
        self.uow = uow

    # --- organisations ---------------------------------------------------------------------
    def create(self, principal: Principal | None, name: str, kind: str, countries: list[str]) -> OrganisationView:
        actor = require_admin(principal)
        clean = name_of(name)
        if kind not in KINDS:
            raise InvalidArgument("kind must be customer or reseller", "invalid_kind")
        codes = countries_of(countries)
        if codes and kind != "reseller":
            raise InvalidArgument("only a reseller operates in countries", "invalid_country")
        now = utcnow()
        org = Organisation(id=new_id(), name=clean, name_key=name_key(clean), kind=kind, created_at=now)
        with self.uow() as uow:
            if uow.repo.organisation_named(org.name_key, kind) is not None:
                raise Conflict(f"a {kind} organisation with this name already exists", "organisation_exists")
            uow.repo.add(org)
            uow.repo.flush()
            self._audit(uow, actor, "organisation_created", org.id, detail=kind)
            if codes:
                uow.repo.replace_countries(org.id, codes)
                self._changed(uow, actor, org.id, "countries_set", countries=codes)
            uow.commit()
        return OrganisationView(org, codes, [])

    def get(self, principal: Principal | None, organisation_id: str) -> OrganisationView:
        require_admin(principal)
        with self.uow() as uow:
            return self._view(uow, self._existing(uow, organisation_id))

    def page(self, principal: Principal | None, kind: str, cursor: str, page_size: int) -> OrganisationPage:
        require_admin(principal)
        if kind and kind not in KINDS:
            raise InvalidArgument("kind must be customer or reseller", "invalid_kind")
        size = page_size or DEFAULT_PAGE
        if not 1 <= size <= MAX_PAGE:
            raise InvalidArgument(f"page_size must be between 1 and {MAX_PAGE}", "invalid_page_size")
        with self.uow() as uow:
            orgs = uow.repo.organisations_page(kind=kind, after=cursors.decode(cursor), limit=size + 1)
            more = len(orgs) > size
            orgs = orgs[:size]
            resellers = [o.id for o in orgs if o.kind == "reseller"]
            countries = uow.repo.countries_of(resellers)
            customers = uow.repo.customers_of(resellers)
        items = [OrganisationView(o, countries.get(o.id, []), customers.get(o.id, [])) for o in orgs]
        next_cursor = cursors.encode(orgs[-1].created_at, orgs[-1].id) if more else ""
        return OrganisationPage(items, next_cursor)

    def reseller_scope(self, principal: Principal | None, reseller_account_id: str) -> ResellerScope:
        """The customer organisations and countries a reseller account may support (R-SHARE-1).

        Anything but a reseller account in a reseller organisation is "not found": the caller
        then grants nothing (deny by default).
        """
        require_scope_reader(principal)
        with self.uow() as uow:
            account = uow.repo.account(reseller_account_id) if reseller_account_id else None
            org = uow.repo.organisation(account.organisation_id or "") if account is not None else None
            if account is None or account.role != "reseller" or org is None or org.kind != "reseller":
                raise NotFound("no reseller account with this id", "not_a_reseller")
            as_of = utcnow()
            return ResellerScope(org.id, uow.repo.customers_of([org.id])[org.id],
                                 uow.repo.countries_of([org.id])[org.id], as_of)

    # --- reseller relationships -----------------------------------------------------------
    def set_countries(self, principal: Principal | None, reseller_id: str, countries: list[str]) -> OrganisationView:
        actor = require_admin(principal)
        codes = countries_of(countries)
        with self.uow() as uow:
            org = self._reseller(uow, reseller_id)
            if uow.repo.countries_of([org.id])[org.id] != codes:  # an unchanged list is no change
                uow.repo.replace_countries(org.id, codes)
                self._changed(uow, actor, org.id, "countries_set", countries=codes)
                uow.commit()
            return self._view(uow, org)

    def add_customer(self, principal: Principal | None, reseller_id: str,
                     customer_organisation_id: str) -> ResellerCustomer:
        actor = require_admin(principal)
        with self.uow() as uow:
            org = self._reseller(uow, reseller_id)
            customer = uow.repo.organisation(customer_organisation_id)
            if customer is None:
                raise NotFound("customer organisation not found")
            if customer.kind != "customer":
                raise InvalidArgument("a reseller can be linked only to a customer organisation", "not_a_customer")
            if uow.repo.reseller_customer(org.id, customer.id) is not None:
                raise Conflict("the reseller is already linked to this customer organisation", "already_linked")
            link = ResellerCustomer(reseller_id=org.id, customer_organisation_id=customer.id, since=utcnow())
            if not uow.repo.link_customer(link):
                raise Conflict("the reseller is already linked to this customer organisation", "already_linked")
            self._changed(uow, actor, org.id, "customer_added", customer=customer.id)
            uow.commit()
        return link

    def remove_customer(self, principal: Principal | None, reseller_id: str, customer_organisation_id: str) -> None:
        actor = require_admin(principal)
        with self.uow() as uow:
            org = self._reseller(uow, reseller_id)
            link = uow.repo.reseller_customer(org.id, customer_organisation_id) if customer_organisation_id else None
            if link is None:
                raise NotFound("the reseller is not linked to this customer organisation", "not_linked")
            uow.repo.unlink_customer(link)
            self._changed(uow, actor, org.id, "customer_removed", customer=customer_organisation_id)
            uow.commit()

    def set_ticket_sharing(self, principal: Principal | None, organisation_id: str, enabled: bool) -> OrganisationView:
        """Let a customer organisation's members see each other's tickets (or stop it); audited."""
        actor = require_admin(principal)
        with self.uow() as uow:
            org = self._existing(uow, organisation_id)
            if org.kind != "customer":
                raise InvalidArgument("only a customer organisation shares tickets", "not_a_customer")
            if org.ticket_sharing != enabled:
                org.ticket_sharing = enabled
                self._audit(uow, actor, "ticket_sharing_enabled" if enabled else "ticket_sharing_disabled", org.id)
                uow.events.publish(SHARING_CHANGED, org.id, ev.TicketSharingChanged(
                    organisation_id=org.id, enabled=enabled, changed_by=actor.subject_id))
                uow.commit()
            return self._view(uow, org)

    # --- size bands (usage statistics' dimension "org_size_band") ----------------------------
    def set_size_band(self, principal: Principal | None, organisation_id: str, size_band: str,
                      employees: int = 0) -> OrganisationView:
        """Set a customer organisation's size band, from a band or a declared employee count (only
        the band is kept: an exact count of a small company could single it out), or clear it
        (neither given); audited."""
        actor = require_admin(principal)
        if employees < 0:
            raise InvalidArgument("employees must be a positive count", "invalid_employees")
        if size_band and size_band not in SIZE_BANDS:
            raise InvalidArgument(f"size_band must be one of {', '.join(SIZE_BANDS)}", "invalid_size_band")
        band = size_band
        if employees:
            band = size_band_of(employees)
            if size_band and size_band != band:
                raise InvalidArgument(f"{employees} employees is the band {band}, not {size_band}",
                                      "invalid_size_band")
        with self.uow() as uow:
            org = self._existing(uow, organisation_id)
            if org.kind != "customer":
                raise InvalidArgument("only a customer organisation has a size band", "not_a_customer")
            if org.size_band != band:
                org.size_band = band
                self._audit(uow, actor, "size_band_set" if band else "size_band_cleared", org.id, detail=band)
                uow.commit()
            return self._view(uow, org)

    def size_band(self, principal: Principal | None, organisation_id: str) -> str:
        """The band alone, for usage statistics: to the organisation's own members (the gateway asks
        with the member's token, whose `org` claim names it), admins and services. Unknown or another
        organisation: not found, so the answer says nothing of who exists."""
        caller = _present(principal)
        own = not caller.is_service and caller.organisation_id == organisation_id and organisation_id != ""
        if not (own or caller.is_service or is_admin(caller)):
            raise NotFound("organisation not found")
        with self.uow() as uow:
            org = uow.repo.organisation(organisation_id) if organisation_id else None
            if org is None:
                raise NotFound("organisation not found")
            return org.size_band if org.kind == "customer" else ""

    # --- helpers -------------------------------------------------------------------------
    @staticmethod
    def _existing(uow: UnitOfWork[Repository], organisation_id: str) -> Organisation:
        org = uow.repo.organisation(organisation_id)
        if org is None:
            raise NotFound("organisation not found")
        return org

    def _reseller(self, uow: UnitOfWork[Repository], reseller_id: str) -> Organisation:
        org = self._existing(uow, reseller_id)
        if org.kind != "reseller":
            raise InvalidArgument("this organisation is not a reseller", "not_a_reseller")
        return org

    @staticmethod
    def _view(uow: UnitOfWork[Repository], org: Organisation) -> OrganisationView:
        if org.kind != "reseller":
            return OrganisationView(org)
        return OrganisationView(org, uow.repo.countries_of([org.id])[org.id], uow.repo.customers_of([org.id])[org.id])

    @staticmethod
    def _audit(uow: UnitOfWork[Repository], actor: Principal, action: str, organisation_id: str,
               customer: str = "", detail: str = "") -> None:
        uow.repo.append_audit(OrganisationAudit(
            id=new_id(), at=utcnow(), actor_kind=actor.kind, actor_id=actor.subject_id, action=action,
            organisation_id=organisation_id, customer_organisation_id=customer, detail=detail))

    def _changed(self, uow: UnitOfWork[Repository], actor: Principal, reseller_id: str, change: str,
                 customer: str = "", countries: list[str] | None = None) -> None:
        """Audit the change and publish it, in the transaction that makes it."""
        current = countries if countries is not None else uow.repo.countries_of([reseller_id])[reseller_id]
        self._audit(uow, actor, change, reseller_id, customer=customer,
                    detail=",".join(current) if countries is not None else "")
        uow.events.publish(RELATIONSHIP_CHANGED, reseller_id, ev.ResellerRelationshipChanged(
            reseller_id=reseller_id, change=change, customer_organisation_id=customer, countries=current,
            changed_by=actor.subject_id))
