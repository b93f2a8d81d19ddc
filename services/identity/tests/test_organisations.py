"""Organisations and reseller relationships (section 5.1.1) against a real, migrated database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from identity.__main__ import MIGRATIONS
from identity.models import Account, Organisation, OrganisationAudit, Outbox, Repository
from identity.organisations import OrganisationRules
from kaseum.events.v1 import envelope_pb2
from kaseum.events.v1 import identity_events_pb2 as ev
from servicekit.caller import Principal
from servicekit.db import UnitOfWorkFactory, new_id, utcnow
from servicekit.errors import Conflict, InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from servicekit.testing import migrated_uow, person
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError

pytestmark = [pytest.mark.notice("5.1.1"), pytest.mark.rule("R-SHARE-1")]

ADMIN = person("a" * 32, "admin")
CLI = Principal("service", "cli", "service")
TICKETS = Principal("service", "tickets", "service")


@pytest.fixture
def uow(database_url: str) -> Iterator[UnitOfWorkFactory[Repository]]:
    factory = migrated_uow(MIGRATIONS, database_url, Outbox, Repository)
    yield factory
    factory.session_factory.kw["bind"].dispose()


@pytest.fixture
def rules(uow: UnitOfWorkFactory[Repository]) -> OrganisationRules:
    return OrganisationRules(uow)


def account_in(uow: UnitOfWorkFactory[Repository], organisation_id: str | None, role: str = "reseller") -> str:
    """A staff account row in an organisation (the accounts rules are tested in test_accounts.py)."""
    now, tag = utcnow(), new_id()
    with uow() as work:
        work.repo.add(Account(
            id=tag, username=f"u{tag[:10]}", username_key=f"u{tag[:10]}", email=f"{tag}@example.com",
            email_key=f"{tag}@example.com", password_hash="x", first_name="", last_name="", company="",
            job_title="", phone="", country="GB", region="uk", role=role, organisation_id=organisation_id,
            restricted=False, created_at=now, updated_at=now))
        work.commit()
    return tag


def relationship_events(uow: UnitOfWorkFactory[Repository]) -> list[ev.ResellerRelationshipChanged]:
    found = []
    with uow() as work:
        for row in work.session.scalars(select(Outbox).order_by(Outbox.created_at)):
            env = envelope_pb2.Envelope.FromString(row.data)
            if env.type == "identity.reseller.relationship_changed":
                assert row.subject == "uk.identity.reseller.relationship_changed"
                event = ev.ResellerRelationshipChanged()
                assert env.payload.Unpack(event)
                assert env.subject_id == event.reseller_id
                found.append(event)
    return found


def audit(uow: UnitOfWorkFactory[Repository], organisation_id: str) -> list[OrganisationAudit]:
    with uow() as work:
        return work.repo.audit_trail(organisation_id)


def test_an_admin_creates_a_reseller_with_countries_normalised_audited_and_published(
        rules: OrganisationRules, uow: UnitOfWorkFactory[Repository]) -> None:
    made = rules.create(ADMIN, "  Channel   Partners Ltd ", "reseller", ["gb", "IE", "GB"])
    assert (made.organisation.name, made.organisation.kind) == ("Channel Partners Ltd", "reseller")
    assert made.countries == ["GB", "IE"] and made.customer_organisation_ids == []
    assert rules.get(ADMIN, made.organisation.id).countries == ["GB", "IE"]
    [event] = relationship_events(uow)
    assert (event.change, list(event.countries), event.changed_by) == ("countries_set", ["GB", "IE"], ADMIN.subject_id)
    trail = audit(uow, made.organisation.id)
    assert [(a.action, a.actor_kind, a.actor_id) for a in trail] == [
        ("organisation_created", "person", ADMIN.subject_id), ("countries_set", "person", ADMIN.subject_id)]
    assert trail[1].detail == "GB,IE" and all(a.at is not None for a in trail)


def test_the_cli_may_manage_organisations(rules: OrganisationRules) -> None:
    made = rules.create(CLI, "Acme", "customer", [])
    assert rules.get(CLI, made.organisation.id).organisation.kind == "customer"


@pytest.mark.rule("R-SEC-1")
@pytest.mark.parametrize("who", [person("c" * 32, "customer"), person("g" * 32, "agent"),
                                 person("r" * 32, "reseller"), person("d" * 32, "dpo"),
                                 person("n" * 32, "analyst"), TICKETS, Principal("service", "rights", "service"),
                                 Principal("service", "admin", "service")])
def test_everyone_but_admins_and_the_cli_is_denied(rules: OrganisationRules, who: Principal) -> None:
    reseller = rules.create(ADMIN, "Resell", "reseller", [])
    customer = rules.create(ADMIN, "Buyer", "customer", [])
    rid, cid = reseller.organisation.id, customer.organisation.id
    attempts = [
        lambda: rules.create(who, "Other", "customer", []),
        lambda: rules.get(who, rid),
        lambda: rules.page(who, "", "", 0),
        lambda: rules.set_countries(who, rid, ["GB"]),
        lambda: rules.add_customer(who, rid, cid),
        lambda: rules.remove_customer(who, rid, cid),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDenied):
            attempt()
    with pytest.raises(Unauthenticated):
        rules.create(None, "Anonymous", "customer", [])
    assert rules.get(ADMIN, rid).customer_organisation_ids == []  # nothing changed


@pytest.mark.parametrize(("name", "kind", "countries"), [
    ("", "customer", []), ("   ", "reseller", []), ("x" * 201, "customer", []), ("Bad\x00Name", "customer", []),
    ("Acme", "partner", []), ("Acme", "", []), ("Acme", "reseller", ["XX"]), ("Acme", "reseller", ["GBR"]),
    ("Acme", "reseller", [""]), ("Acme", "reseller", ["1A"]), ("Acme", "customer", ["GB"]),
])
def test_invalid_organisations_are_refused(rules: OrganisationRules, name: str, kind: str,
                                           countries: list[str]) -> None:
    with pytest.raises(InvalidArgument):
        rules.create(ADMIN, name, kind, countries)


def test_names_are_unique_per_kind_case_insensitively(rules: OrganisationRules) -> None:
    rules.create(ADMIN, "Engines Ltd", "customer", [])
    with pytest.raises(Conflict):
        rules.create(ADMIN, "ENGINES LTD", "customer", [])
    assert rules.create(ADMIN, "Engines Ltd", "reseller", []).organisation.kind == "reseller"


def test_linking_a_customer_widens_the_scope_and_unlinking_narrows_it(
        rules: OrganisationRules, uow: UnitOfWorkFactory[Repository]) -> None:
    reseller = rules.create(ADMIN, "Channel", "reseller", ["FR"]).organisation
    customer = rules.create(ADMIN, "Buyer", "customer", []).organisation
    other = rules.create(ADMIN, "Not sold to", "customer", []).organisation
    seller = account_in(uow, reseller.id)
    scope = rules.reseller_scope(TICKETS, seller)
    assert (scope.reseller_id, scope.customer_organisation_ids, scope.countries) == (reseller.id, [], ["FR"])

    link = rules.add_customer(ADMIN, reseller.id, customer.id)
    assert (link.reseller_id, link.customer_organisation_id) == (reseller.id, customer.id) and link.since
    scope = rules.reseller_scope(TICKETS, seller)
    assert scope.customer_organisation_ids == [customer.id] and other.id not in scope.customer_organisation_ids
    assert rules.get(ADMIN, reseller.id).customer_organisation_ids == [customer.id]
    with pytest.raises(Conflict):
        rules.add_customer(CLI, reseller.id, customer.id)

    rules.remove_customer(CLI, reseller.id, customer.id)
    assert rules.reseller_scope(ADMIN, seller).customer_organisation_ids == []
    with pytest.raises(NotFound):
        rules.remove_customer(ADMIN, reseller.id, customer.id)

    changes = [(e.change, e.customer_organisation_id, e.changed_by) for e in relationship_events(uow)]
    assert changes == [("countries_set", "", ADMIN.subject_id), ("customer_added", customer.id, ADMIN.subject_id),
                       ("customer_removed", customer.id, "cli")]
    assert [e.countries for e in relationship_events(uow)][-1] == ["FR"]
    trail = [(a.action, a.actor_id, a.customer_organisation_id) for a in audit(uow, reseller.id)]
    assert trail[-2:] == [("customer_added", ADMIN.subject_id, customer.id), ("customer_removed", "cli", customer.id)]


def test_links_need_a_reseller_and_a_customer_that_exist(rules: OrganisationRules) -> None:
    reseller = rules.create(ADMIN, "Channel", "reseller", []).organisation
    customer = rules.create(ADMIN, "Buyer", "customer", []).organisation
    another_reseller = rules.create(ADMIN, "Channel 2", "reseller", []).organisation
    with pytest.raises(NotFound):
        rules.add_customer(ADMIN, "0" * 32, customer.id)
    with pytest.raises(NotFound):
        rules.add_customer(ADMIN, reseller.id, "0" * 32)
    with pytest.raises(NotFound):
        rules.add_customer(ADMIN, "", "")
    with pytest.raises(InvalidArgument):
        rules.add_customer(ADMIN, customer.id, customer.id)  # a customer is not a reseller
    with pytest.raises(InvalidArgument):
        rules.add_customer(ADMIN, reseller.id, another_reseller.id)  # resellers are not customers
    with pytest.raises(NotFound):
        rules.remove_customer(ADMIN, reseller.id, "0" * 32)
    with pytest.raises(NotFound):
        rules.get(ADMIN, "0" * 32)


def test_countries_are_replaced_and_an_unchanged_list_is_no_change(
        rules: OrganisationRules, uow: UnitOfWorkFactory[Repository]) -> None:
    reseller = rules.create(ADMIN, "Channel", "reseller", []).organisation
    customer = rules.create(ADMIN, "Buyer", "customer", []).organisation
    assert rules.set_countries(ADMIN, reseller.id, ["de", "AT"]).countries == ["AT", "DE"]
    assert rules.set_countries(ADMIN, reseller.id, ["AT", "DE"]).countries == ["AT", "DE"]
    assert rules.set_countries(CLI, reseller.id, []).countries == []
    assert [list(e.countries) for e in relationship_events(uow)] == [["AT", "DE"], []]
    with pytest.raises(InvalidArgument):
        rules.set_countries(ADMIN, reseller.id, ["GB", "ZZ"])
    with pytest.raises(InvalidArgument):
        rules.set_countries(ADMIN, customer.id, ["GB"])
    with pytest.raises(NotFound):
        rules.set_countries(ADMIN, "0" * 32, ["GB"])
    assert rules.get(ADMIN, reseller.id).countries == []


@pytest.mark.rule("R-SEC-1")
def test_the_scope_is_for_the_tickets_service_and_admins_only(
        rules: OrganisationRules, uow: UnitOfWorkFactory[Repository]) -> None:
    reseller = rules.create(ADMIN, "Channel", "reseller", ["GB"]).organisation
    seller = account_in(uow, reseller.id)
    for who in (person(seller, "reseller"), person("c" * 32, "customer"), person("g" * 32, "agent"),
                Principal("service", "consent", "service")):
        with pytest.raises(PermissionDenied):
            rules.reseller_scope(who, seller)
    with pytest.raises(Unauthenticated):
        rules.reseller_scope(None, seller)
    assert rules.reseller_scope(CLI, seller).countries == ["GB"]


def test_only_reseller_accounts_have_a_scope(rules: OrganisationRules, uow: UnitOfWorkFactory[Repository]) -> None:
    reseller = rules.create(ADMIN, "Channel", "reseller", ["GB"]).organisation
    customer = rules.create(ADMIN, "Buyer", "customer", []).organisation
    for account in (account_in(uow, customer.id, role="customer"), account_in(uow, reseller.id, role="agent"),
                    account_in(uow, customer.id, role="reseller"), account_in(uow, None), "0" * 32, ""):
        with pytest.raises(NotFound):
            rules.reseller_scope(TICKETS, account)


@pytest.mark.rule("R-SEC-1")
def test_the_audit_trail_is_append_only_in_the_database(
        rules: OrganisationRules, uow: UnitOfWorkFactory[Repository]) -> None:
    reseller = rules.create(ADMIN, "Channel", "reseller", ["GB"]).organisation
    for change in (update(OrganisationAudit).values(actor_id="someone else"), delete(OrganisationAudit)):
        with uow() as work, pytest.raises(DBAPIError, match="append-only"):
            work.session.execute(change)
            work.commit()
    assert len(audit(uow, reseller.id)) == 2


def test_organisations_are_listed_newest_first_by_kind_with_a_cursor(rules: OrganisationRules) -> None:
    made = [rules.create(ADMIN, f"Org {i}", "reseller" if i % 2 else "customer", ["GB"] if i % 2 else []).organisation
            for i in range(5)]
    seen, cursor = [], ""
    while True:
        page = rules.page(ADMIN, "", cursor, 2)
        assert len(page.items) <= 2
        seen += [v.organisation.id for v in page.items]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert seen == [o.id for o in reversed(made)]
    resellers = rules.page(CLI, "reseller", "", 0).items
    assert [v.organisation.id for v in resellers] == [made[3].id, made[1].id]
    assert all(v.countries == ["GB"] for v in resellers)
    for kind, cursor, size in (("partner", "", 0), ("", "not-a-cursor!", 0), ("", "", 101), ("", "", -1)):
        with pytest.raises(InvalidArgument):
            rules.page(ADMIN, kind, cursor, size)


@pytest.mark.notice("11")
def test_ticket_sharing_is_off_until_an_admin_enables_it_audited_and_published(
        rules: OrganisationRules, uow: UnitOfWorkFactory[Repository]) -> None:
    company = rules.create(ADMIN, "Acme", "customer", []).organisation
    assert company.ticket_sharing is False
    assert rules.set_ticket_sharing(ADMIN, company.id, True).organisation.ticket_sharing is True
    rules.set_ticket_sharing(ADMIN, company.id, True)  # unchanged: no second event
    assert rules.set_ticket_sharing(CLI, company.id, False).organisation.ticket_sharing is False
    with uow() as work:
        events = []
        for row in work.session.scalars(select(Outbox).order_by(Outbox.created_at)):
            env = envelope_pb2.Envelope.FromString(row.data)
            if env.type == "identity.organisation.ticket_sharing_changed":
                event = ev.TicketSharingChanged()
                assert env.payload.Unpack(event)
                events.append((event.organisation_id, event.enabled))
    assert events == [(company.id, True), (company.id, False)]
    assert [a.action for a in audit(uow, company.id)][-2:] == ["ticket_sharing_enabled", "ticket_sharing_disabled"]
    reseller = rules.create(ADMIN, "Channel", "reseller", ["GB"]).organisation
    with pytest.raises(InvalidArgument):
        rules.set_ticket_sharing(ADMIN, reseller.id, True)
    with pytest.raises(PermissionDenied):
        rules.set_ticket_sharing(person("c" * 32, "agent"), company.id, True)
    with pytest.raises(NotFound):
        rules.set_ticket_sharing(ADMIN, "nope", True)


# --- size bands ------------------------------------------------------------------------------
@pytest.mark.notice("3.3")
@pytest.mark.rule("R-DATA-3")
def test_a_customer_organisations_size_band_is_set_from_a_band_or_a_count_and_only_the_band_is_kept(
        rules: OrganisationRules, uow: UnitOfWorkFactory[Repository]) -> None:
    company = rules.create(ADMIN, "Acme", "customer", []).organisation
    assert company.size_band == ""
    assert rules.set_size_band(ADMIN, company.id, "10-49").organisation.size_band == "10-49"
    assert rules.set_size_band(CLI, company.id, "", employees=312).organisation.size_band == "250+"
    assert rules.set_size_band(ADMIN, company.id, "1-9", employees=9).organisation.size_band == "1-9"
    assert rules.set_size_band(ADMIN, company.id, "").organisation.size_band == ""  # cleared
    assert [(a.action, a.detail) for a in audit(uow, company.id)][-4:] == [
        ("size_band_set", "10-49"), ("size_band_set", "250+"), ("size_band_set", "1-9"), ("size_band_cleared", "")]
    # The head count is never stored: nothing in the organisation's row or its audit says 312. The generated
    # id and creation time are left out: random hex or a clock can hold "312" by chance.
    with uow() as work:
        stored = work.session.execute(select(Organisation.__table__).where(Organisation.id == company.id)).one()
        trail = " ".join(str(a.detail) for a in work.session.scalars(select(OrganisationAudit)))
    written = [str(value) for column, value in stored._mapping.items() if column not in ("id", "created_at")]
    assert written and "312" not in " ".join(written) and "312" not in trail
    for band, employees in (("11-20", 0), ("1-9", 12), ("", -3)):
        with pytest.raises(InvalidArgument):
            rules.set_size_band(ADMIN, company.id, band, employees)
    reseller = rules.create(ADMIN, "Channel", "reseller", ["GB"]).organisation
    with pytest.raises(InvalidArgument):
        rules.set_size_band(ADMIN, reseller.id, "1-9")
    with pytest.raises(PermissionDenied):
        rules.set_size_band(person("c" * 32, "analyst"), company.id, "1-9")


@pytest.mark.notice("3.3")
@pytest.mark.rule("R-DATA-3")
def test_the_band_is_read_by_the_organisations_members_admins_and_services_only(rules: OrganisationRules) -> None:
    company = rules.create(ADMIN, "Acme", "customer", []).organisation
    other = rules.create(ADMIN, "Globex", "customer", []).organisation
    rules.set_size_band(ADMIN, company.id, "50-249")
    member = Principal("person", "m" * 32, "customer", "uk", "s", organisation_id=company.id)
    for who in (member, ADMIN, Principal("service", "gateway", "service")):
        assert rules.size_band(who, company.id) == "50-249"
    assert rules.size_band(member.__class__("person", "n" * 32, "customer", "uk", "s", organisation_id=other.id),
                           other.id) == ""
    # Another organisation's band, or one that does not exist: not found, whoever asks.
    with pytest.raises(NotFound):
        rules.size_band(member, other.id)
    with pytest.raises(NotFound):
        rules.size_band(ADMIN, "nope")
    with pytest.raises(Unauthenticated):
        rules.size_band(None, company.id)
