"""Every ticket endpoint × every role through the gateway, with the status each must get (R-SEC-1, R-SHARE-1).

The table below is the authorisation contract of the support desk. A ticket route the gateway
serves that is not in the table fails the test: a new endpoint must say who may use it.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.test_staff import cli, log_in
from tests.support.api import PASSWORD, Api, signup_body
from tests.support.waiting import eventually
from tools.stack import Stack

pytestmark = [pytest.mark.notice("5.1.1"), pytest.mark.notice("11"), pytest.mark.rule("R-SEC-1"),
              pytest.mark.rule("R-SHARE-1")]

ORGS = "/api/v1/admin/organisations"
ROLES = ["requester", "other_customer", "colleague", "agent", "reseller_linked", "reseller_unlinked",
         "dpo", "analyst", "admin"]

# (method, path pattern, JSON body) → the status each role gets, in ROLES order. "{id}" is the
# requester's ticket. Colleagues' sharing is off; the linked reseller sold to the requester's company.
MATRIX: dict[tuple[str, str], tuple[dict[str, Any] | None, list[int]]] = {
    ("POST", "/api/v1/tickets"): ({"subject": "Help", "body": "Please"},
                                  [201, 201, 201, 403, 403, 403, 403, 403, 403]),
    ("GET", "/api/v1/tickets"): (None, [200, 200, 200, 200, 200, 200, 403, 403, 403]),
    ("GET", "/api/v1/tickets/{ticket_id}"): (None, [200, 404, 404, 200, 200, 404, 404, 404, 404]),
    ("POST", "/api/v1/tickets/{ticket_id}/replies"): ({"body": "An answer"},
                                                      [201, 404, 404, 201, 201, 404, 404, 404, 404]),
    ("PATCH", "/api/v1/tickets/{ticket_id}"): ({"priority": "high"},
                                               [403, 404, 404, 200, 403, 404, 404, 404, 404]),
}


def tag() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def world(system: Stack) -> dict[str, Any]:
    """A customer company with two members, another customer, and one account per staff role."""
    api = Api(system.gateway_url)
    name = f"root_{tag()}"
    done = cli(system, "users", "create", "--role", "admin", "--username", name, "--email",
               f"{name}@kaseum.example", "--password-stdin", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    admin = log_in(api, name)
    company = f"Acme {tag()}"
    users: dict[str, Api] = {"admin": admin}
    for role, body in (("requester", signup_body(company=company)), ("colleague", signup_body(company=company)),
                       ("other_customer", signup_body(company=f"Globex {tag()}"))):
        assert api.call("POST", "/api/v1/accounts", json=body).status_code == 201
        users[role] = log_in(api, body["username"])
    for role in ("agent", "dpo", "analyst"):
        users[role] = staff(admin, api, role)
    linked_org, unlinked_org = f"Channel {tag()}", f"Elsewhere {tag()}"
    users["reseller_linked"] = staff(admin, api, "reseller", linked_org)
    users["reseller_unlinked"] = staff(admin, api, "reseller", unlinked_org)
    orgs = {o["name"]: o for kind in ("customer", "reseller")
            for o in admin.call("GET", ORGS, params={"kind": kind}).json()["items"]}
    company_id, reseller_id = orgs[company]["id"], orgs[linked_org]["id"]
    linked = admin.call("POST", f"{ORGS}/{reseller_id}/customers", json={"customer_organisation_id": company_id})
    assert linked.status_code == 201, linked.text
    ticket = users["requester"].call("POST", "/api/v1/tickets", json={"subject": "Printer", "body": "On fire"})
    assert ticket.status_code == 201
    return {"users": users, "ticket": ticket.json()["id"], "company": company_id, "reseller": reseller_id,
            "admin": admin}


def staff(admin: Api, api: Api, role: str, organisation: str = "") -> Api:
    name = f"{role}_{tag()}"
    body = {"role": role, "username": name, "email": f"{name}@kaseum.example", "password": PASSWORD}
    if organisation:
        body["organisation"] = organisation
    made = admin.call("POST", "/api/v1/admin/users", json=body)
    assert made.status_code == 201, made.text
    return log_in(api, name)


def test_every_ticket_route_is_in_the_table(system: Stack) -> None:
    doc = Api(system.gateway_url).call("GET", "/api/openapi.json").json()
    served = {(method.upper(), path) for path, item in doc["paths"].items() if path.startswith("/api/v1/tickets")
              for method in item if method in ("get", "post", "put", "patch", "delete")}
    assert served == set(MATRIX), f"add to MATRIX: {served - set(MATRIX)}; remove: {set(MATRIX) - served}"


@pytest.mark.parametrize(("method", "path"), list(MATRIX))
def test_each_role_gets_its_status(world: dict[str, Any], method: str, path: str) -> None:
    body, expected = MATRIX[(method, path)]
    got = []
    for role in ROLES:
        response = world["users"][role].call(method, path.format(ticket_id=world["ticket"]), json=body)
        assert response.status_code < 500, response.text
        got.append(response.status_code)
    assert dict(zip(ROLES, got, strict=True)) == dict(zip(ROLES, expected, strict=True))


def listed(user: Api, ticket_id: str) -> bool:
    response = user.call("GET", "/api/v1/tickets")
    assert response.status_code == 200, response.text
    return ticket_id in [t["id"] for t in response.json()["items"]]


def test_listings_show_exactly_what_reading_allows(world: dict[str, Any]) -> None:
    users, ticket = world["users"], world["ticket"]
    assert {role: listed(users[role], ticket) for role in
            ("requester", "other_customer", "colleague", "agent", "reseller_linked", "reseller_unlinked")} == {
        "requester": True, "other_customer": False, "colleague": False, "agent": True,
        "reseller_linked": True, "reseller_unlinked": False}
    search = users["reseller_unlinked"].call("GET", "/api/v1/tickets", params={"q": "printer"})
    assert search.status_code == 200 and search.json()["items"] == []
    found = users["agent"].call("GET", "/api/v1/tickets", params={"q": "printer fire"})
    assert ticket in [t["id"] for t in found.json()["items"]]


def test_colleagues_see_each_others_tickets_only_while_the_organisation_shares_them(world: dict[str, Any]) -> None:
    users, ticket, admin = world["users"], world["ticket"], world["admin"]
    path = f"{ORGS}/{world['company']}/ticket-sharing"
    assert admin.call("PUT", path, json={"enabled": True}).json()["ticket_sharing"] is True
    eventually(lambda: users["colleague"].call("GET", f"/api/v1/tickets/{ticket}").status_code == 200,
               what="the colleague to see the shared ticket")
    assert listed(users["colleague"], ticket)
    # Seeing is not owning: a colleague cannot answer or close it.
    assert users["colleague"].call("PATCH", f"/api/v1/tickets/{ticket}", json={"status": "closed"}).status_code == 403
    assert users["agent"].call("PUT", path, json={"enabled": True}).status_code == 403
    assert admin.call("PUT", path, json={"enabled": False}).status_code == 200
    eventually(lambda: users["colleague"].call("GET", f"/api/v1/tickets/{ticket}").status_code == 404,
               what="sharing to stop")


def test_a_reseller_loses_access_when_the_relationship_ends(world: dict[str, Any]) -> None:
    users, ticket, admin = world["users"], world["ticket"], world["admin"]
    reseller = users["reseller_linked"]
    assert reseller.call("GET", f"/api/v1/tickets/{ticket}").status_code == 200
    ended = admin.call("DELETE", f"{ORGS}/{world['reseller']}/customers/{world['company']}")
    assert ended.status_code == 204
    # The event makes tickets forget the scope at once; the cache could not keep it past a minute anyway.
    eventually(lambda: reseller.call("GET", f"/api/v1/tickets/{ticket}").status_code == 404, timeout=60,
               what="the reseller's access to end")
    assert not listed(reseller, ticket)
    relinked = admin.call("POST", f"{ORGS}/{world['reseller']}/customers",
                          json={"customer_organisation_id": world["company"]})
    assert relinked.status_code == 201


def test_the_status_lifecycle_through_the_api(world: dict[str, Any]) -> None:
    users = world["users"]
    opened = users["requester"].call("POST", "/api/v1/tickets", json={"subject": "Lifecycle", "body": "b",
                                                                       "priority": "urgent"}).json()
    assert opened["status"] == "open" and opened["priority"] == "urgent" and opened["closed_at"] is None
    path = f"/api/v1/tickets/{opened['id']}"
    agent = users["agent"]
    me = agent.call("GET", "/api/v1/sessions/current").json()["subject_id"]
    taken = agent.call("PATCH", path, json={"status": "pending", "assignee_id": me})
    assert taken.status_code == 200 and taken.json()["assignee_id"] == me
    mine = agent.call("GET", "/api/v1/tickets", params={"assignee": "me", "status": "pending"}).json()["items"]
    assert opened["id"] in [t["id"] for t in mine]
    assert users["requester"].call("PATCH", path, json={"status": "resolved"}).status_code == 422
    closed = users["requester"].call("PATCH", path, json={"status": "closed"}).json()
    assert closed["status"] == "closed" and closed["closed_at"].endswith("Z")
    assert users["requester"].call("PATCH", path, json={"status": "open"}).json()["closed_at"] is None
    assert agent.call("PATCH", path, json={"priority": "whenever"}).status_code == 422
