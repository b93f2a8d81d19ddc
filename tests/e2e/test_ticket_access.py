"""Every ticket endpoint × every role, through the gateway and on the Tickets gRPC service directly, with
the status each must get (R-SEC-1, R-SHARE-1).

The tables below are the authorisation contract of the support desk. A gateway route that reaches
tickets and is not in MATRIX fails the test (a route reaches tickets when its path names tickets,
like the ticket-sharing admin route, or its view calls the Tickets service), and so does a method
of the Tickets gRPC service that is not in GRPC: a new endpoint must say who may use it.
"""

from __future__ import annotations

import inspect
import re
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from flask import Blueprint, Flask
from kaseum.tickets.v1 import tickets_pb2, tickets_pb2_grpc
from servicekit import caller
from servicekit.testing import eventually

from tests.e2e.test_staff import cli, log_in
from tests.support.api import PASSWORD, Api, signup_body
from tools.stack import Stack

pytestmark = [pytest.mark.notice("5.1.1"), pytest.mark.notice("11"), pytest.mark.rule("R-SEC-1"),
              pytest.mark.rule("R-SHARE-1")]

ORGS = "/api/v1/admin/organisations"
NOTICES = "/api/v1/reseller/notices"
ABSENT_NOTICE = uuid.uuid4().hex
ROLES = ["requester", "other_customer", "colleague", "colleague_shared", "agent", "reseller_linked",
         "reseller_unlinked", "reseller_revoked", "dpo", "analyst", "admin"]

# (method, path pattern) → (JSON body, the status each role gets, in ROLES order). "{ticket_id}" is the
# requester's ticket, for every role but colleague_shared: for it, a ticket of a colleague in a second
# company that shares tickets. "colleague" is in the requester's company, whose sharing is off. The linked
# reseller sold to the requester's company; the revoked one did, until the relationship was ended.
# "{organisation_id}" is the sharing company (the admin sets what it already is). "{notice_id}" is a recipient
# notice of no organisation: a reseller gets the 404 another organisation's notice gets (Art. 19 notices are
# shown and acknowledged in tests/e2e/test_recipient_notices.py).
MATRIX: dict[tuple[str, str], tuple[dict[str, Any] | None, list[int]]] = {
    #                                          req  other coll shared agent r_lnk r_unl r_rev dpo analyst admin
    ("POST", "/api/v1/tickets"): ({"subject": "Help", "body": "Please"},
                                  [201, 201, 201, 201, 403, 403, 403, 403, 403, 403, 403]),
    ("GET", "/api/v1/tickets"): (None, [200, 200, 200, 200, 200, 200, 200, 200, 403, 403, 403]),
    ("GET", "/api/v1/tickets/{ticket_id}"): (None, [200, 404, 404, 200, 200, 200, 404, 404, 404, 404, 404]),
    ("POST", "/api/v1/tickets/{ticket_id}/replies"): ({"body": "An answer"},
                                                      [201, 404, 404, 403, 201, 201, 404, 404, 404, 404, 404]),
    ("PATCH", "/api/v1/tickets/{ticket_id}"): ({"priority": "high"},
                                               [403, 404, 404, 403, 200, 403, 404, 404, 404, 404, 404]),
    ("PUT", ORGS + "/{organisation_id}/ticket-sharing"): ({"enabled": True},
                                                          [403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 200]),
    ("GET", NOTICES): (None, [403, 403, 403, 403, 403, 200, 200, 200, 403, 403, 403]),
    ("POST", NOTICES + "/{notice_id}/acknowledge"): (None,
                                                    [403, 403, 403, 403, 403, 404, 404, 404, 403, 403, 403]),
}

GRPC_CODES = {200: grpc.StatusCode.OK, 201: grpc.StatusCode.OK, 403: grpc.StatusCode.PERMISSION_DENIED,
              404: grpc.StatusCode.NOT_FOUND}
# Every method of kaseum.tickets.v1.Tickets → its request on the ticket, and the gateway route whose row
# it must match when called directly (no service trusts that the gateway checked).
GRPC: dict[str, tuple[Callable[[str], Any], tuple[str, str]]] = {
    "OpenTicket": (lambda _t: tickets_pb2.OpenTicketRequest(subject="Help", body="Please"),
                   ("POST", "/api/v1/tickets")),
    "ListTickets": (lambda _t: tickets_pb2.ListTicketsRequest(), ("GET", "/api/v1/tickets")),
    "GetTicket": (lambda t: tickets_pb2.GetTicketRequest(id=t), ("GET", "/api/v1/tickets/{ticket_id}")),
    "AddReply": (lambda t: tickets_pb2.AddReplyRequest(ticket_id=t, body="An answer"),
                 ("POST", "/api/v1/tickets/{ticket_id}/replies")),
    "UpdateTicket": (lambda t: tickets_pb2.UpdateTicketRequest(id=t, priority="high"),
                     ("PATCH", "/api/v1/tickets/{ticket_id}")),
    "ListRecipientNotices": (lambda _t: tickets_pb2.ListRecipientNoticesRequest(), ("GET", NOTICES)),
    "AcknowledgeRecipientNotice": (lambda _t: tickets_pb2.AcknowledgeRecipientNoticeRequest(id=ABSENT_NOTICE),
                                   ("POST", NOTICES + "/{notice_id}/acknowledge")),
}


def tag() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def world(system: Stack) -> dict[str, Any]:
    """A customer company with two members (sharing off), a second company with two members (sharing on),
    another customer, and one account per staff role; three resellers: linked, never linked, revoked."""
    api = Api(system.gateway_url)
    name = f"root_{tag()}"
    done = cli(system, "users", "create", "--role", "admin", "--username", name, "--email",
               f"{name}@kaseum.example", "--password-stdin", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    admin = log_in(api, name)
    company, sharing_company = f"Acme {tag()}", f"Initech {tag()}"
    users: dict[str, Api] = {"admin": admin}
    for role, body in (("requester", signup_body(company=company)), ("colleague", signup_body(company=company)),
                       ("other_customer", signup_body(company=f"Globex {tag()}")),
                       ("sharing_requester", signup_body(company=sharing_company)),
                       ("colleague_shared", signup_body(company=sharing_company))):
        assert api.call("POST", "/api/v1/accounts", json=body).status_code == 201
        users[role] = log_in(api, body["username"])
    for role in ("agent", "dpo", "analyst"):
        users[role] = staff(admin, api, role)
    linked_org, unlinked_org, revoked_org = f"Channel {tag()}", f"Elsewhere {tag()}", f"Former {tag()}"
    users["reseller_linked"] = staff(admin, api, "reseller", linked_org)
    users["reseller_unlinked"] = staff(admin, api, "reseller", unlinked_org)
    users["reseller_revoked"] = staff(admin, api, "reseller", revoked_org)
    orgs = {o["name"]: o for kind in ("customer", "reseller")
            for o in admin.call("GET", ORGS, params={"kind": kind}).json()["items"]}
    company_id, reseller_id = orgs[company]["id"], orgs[linked_org]["id"]
    revoked_id, sharing_id = orgs[revoked_org]["id"], orgs[sharing_company]["id"]
    for seller in (reseller_id, revoked_id):
        linked = admin.call("POST", f"{ORGS}/{seller}/customers", json={"customer_organisation_id": company_id})
        assert linked.status_code == 201, linked.text
    ticket = users["requester"].call("POST", "/api/v1/tickets", json={"subject": "Printer", "body": "On fire"})
    assert ticket.status_code == 201
    shared = users["sharing_requester"].call("POST", "/api/v1/tickets", json={"subject": "Fax", "body": "Jammed"})
    assert shared.status_code == 201
    ticket_id, shared_id = ticket.json()["id"], shared.json()["id"]
    # The revoked reseller did see the ticket, before the relationship ended.
    assert users["reseller_revoked"].call("GET", f"/api/v1/tickets/{ticket_id}").status_code == 200
    assert admin.call("DELETE", f"{ORGS}/{revoked_id}/customers/{company_id}").status_code == 204
    assert admin.call("PUT", f"{ORGS}/{sharing_id}/ticket-sharing", json={"enabled": True}).status_code == 200
    eventually(lambda: users["reseller_revoked"].call("GET", f"/api/v1/tickets/{ticket_id}").status_code == 404,
               timeout=60, what="the revoked reseller's access to end")
    eventually(lambda: users["colleague_shared"].call("GET", f"/api/v1/tickets/{shared_id}").status_code == 200,
               what="sharing to reach tickets")
    return {"users": users, "ticket": ticket_id, "shared_ticket": shared_id, "company": company_id,
            "sharing_company": sharing_id, "reseller": reseller_id, "admin": admin}


def staff(admin: Api, api: Api, role: str, organisation: str = "") -> Api:
    name = f"{role}_{tag()}"
    body = {"role": role, "username": name, "email": f"{name}@kaseum.example", "password": PASSWORD}
    if organisation:
        body["organisation"] = organisation
    made = admin.call("POST", "/api/v1/admin/users", json=body)
    assert made.status_code == 201, made.text
    return log_in(api, name)


def ticket_of(world: dict[str, Any], role: str) -> str:
    return str(world["shared_ticket"] if role == "colleague_shared" else world["ticket"])


def routes_reaching_tickets() -> set[tuple[str, str]]:
    """Every route of the gateway's code whose path names tickets or whose view calls the Tickets service."""
    from gateway import app

    # Every blueprint the app factory registers (imported into its module, as modules or as objects).
    names = vars(app).values()
    probe = Flask("probe")
    for blueprint in [n for n in names if isinstance(n, Blueprint)] + [
            n.bp for n in names if inspect.ismodule(n) and isinstance(getattr(n, "bp", None), Blueprint)]:
        probe.register_blueprint(blueprint)
    found = set()
    for rule in probe.url_map.iter_rules():
        source = inspect.getsource(inspect.unwrap(probe.view_functions[rule.endpoint]))
        if "ticket" in rule.rule or re.search(r"\.tickets\.[A-Z]\w*\(", source):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            found |= {(method, path) for method in rule.methods or () if method not in ("HEAD", "OPTIONS")}
    return found


def test_every_route_reaching_tickets_is_in_the_table(system: Stack) -> None:
    served = routes_reaching_tickets()
    assert ("PUT", ORGS + "/{organisation_id}/ticket-sharing") in served  # the check sees past /api/v1/tickets
    assert served == set(MATRIX), f"add to MATRIX: {served - set(MATRIX)}; remove: {set(MATRIX) - served}"
    documented = Api(system.gateway_url).call("GET", "/api/openapi.json").json()["paths"]
    assert all(path in documented for _, path in MATRIX)


def test_every_tickets_grpc_method_is_in_the_table() -> None:
    methods = {m.name for m in tickets_pb2.DESCRIPTOR.services_by_name["Tickets"].methods}
    assert methods == set(GRPC), f"add to GRPC: {methods - set(GRPC)}; remove: {set(GRPC) - methods}"
    assert all(route in MATRIX for _, route in GRPC.values())


@pytest.mark.parametrize(("method", "path"), list(MATRIX))
def test_each_role_gets_its_status(world: dict[str, Any], method: str, path: str) -> None:
    body, expected = MATRIX[(method, path)]
    got = []
    for role in ROLES:
        url = path.format(ticket_id=ticket_of(world, role), organisation_id=world["sharing_company"],
                          notice_id=ABSENT_NOTICE)
        response = world["users"][role].call(method, url, json=body)
        assert response.status_code < 500, response.text
        got.append(response.status_code)
    assert dict(zip(ROLES, got, strict=True)) == dict(zip(ROLES, expected, strict=True))


@pytest.mark.parametrize("name", list(GRPC))
def test_each_role_gets_its_status_from_the_service_itself(system: Stack, world: dict[str, Any], name: str) -> None:
    request, route = GRPC[name]
    expected = [GRPC_CODES[status] for status in MATRIX[route][1]]
    got = []
    with grpc.insecure_channel(system.grpc_addr("tickets")) as channel:
        stub = tickets_pb2_grpc.TicketsStub(channel)
        for role in ROLES:
            ticket = ticket_of(world, role)
            try:
                getattr(stub, name)(request(ticket), metadata=caller.person_metadata(world["users"][role].token),
                                    timeout=10)
                got.append(grpc.StatusCode.OK)
            except grpc.RpcError as exc:
                assert isinstance(exc, grpc.Call)
                got.append(exc.code())
    assert dict(zip(ROLES, got, strict=True)) == dict(zip(ROLES, expected, strict=True))


def listed(user: Api, ticket_id: str) -> bool:
    response = user.call("GET", "/api/v1/tickets")
    assert response.status_code == 200, response.text
    return ticket_id in [t["id"] for t in response.json()["items"]]


def test_listings_show_exactly_what_reading_allows(world: dict[str, Any]) -> None:
    users, ticket = world["users"], world["ticket"]
    assert {role: listed(users[role], ticket_of(world, role)) for role in
            ("requester", "other_customer", "colleague", "colleague_shared", "agent", "reseller_linked",
             "reseller_unlinked", "reseller_revoked")} == {
        "requester": True, "other_customer": False, "colleague": False, "colleague_shared": True, "agent": True,
        "reseller_linked": True, "reseller_unlinked": False, "reseller_revoked": False}
    assert not listed(users["colleague"], world["shared_ticket"])  # another company's sharing is not theirs
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
