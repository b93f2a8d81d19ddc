"""Organisations and reseller relationships through the gateway, the CLI and real gRPC (section 5.1.1)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import grpc
import pytest
from kaseum.identity.v1 import organisations_pb2, organisations_pb2_grpc
from servicekit import caller
from servicekit.testing import eventually

from tests.e2e.test_staff import cli, log_in
from tests.support import jetstream
from tests.support.api import PASSWORD, Api, sign_up_and_log_in
from tools.stack import Stack, generate_secrets

pytestmark = [pytest.mark.notice("5.1.1"), pytest.mark.rule("R-SHARE-1")]

BASE = "/api/v1/admin/organisations"
CHANGED = "uk.identity.reseller.relationship_changed"


def tag() -> str:
    return uuid.uuid4().hex[:8]


def error_of(response: Any, status: int) -> dict[str, str]:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return body["error"]  # type: ignore[no-any-return]


def create(admin: Api, name: str, kind: str, countries: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "kind": kind}
    if countries is not None:
        body["countries"] = countries
    response = admin.call("POST", BASE, json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def scope(system: Stack, account_id: str, metadata: tuple[tuple[str, str], ...]) -> Any:
    with grpc.insecure_channel(system.grpc_addr("identity")) as channel:
        return organisations_pb2_grpc.OrganisationsStub(channel).ResellerScope(
            organisations_pb2.ResellerScopeRequest(reseller_account_id=account_id), metadata=metadata, timeout=5)


def service_metadata(system: Stack, service: str) -> tuple[tuple[str, str], ...]:
    secret = generate_secrets(system.var / "kaseum.env")["KASEUM_SERVICE_SECRET"].encode()
    return ((caller.SERVICE_HEADER, caller.mint_service_token(secret, service)),)


@pytest.mark.rule("R-SEC-1")
def test_an_admin_links_a_customer_and_the_reseller_scope_follows(system: Stack, api: Api, admin: Api) -> None:
    before = jetstream.count(system.nats_url, "KASEUM_UK", CHANGED)
    reseller = create(admin, f"Channel Partners {tag()}", "reseller", ["gb", "IE"])
    assert reseller["kind"] == "reseller" and reseller["countries"] == ["GB", "IE"]
    assert reseller["customer_organisation_ids"] == [] and reseller["created_at"].endswith("Z")
    customer = create(admin, f"Analytical Engines {tag()}", "customer")
    assert customer["countries"] == [] and customer["kind"] == "customer"

    linked = admin.call("POST", f"{BASE}/{reseller['id']}/customers",
                        json={"customer_organisation_id": customer["id"]})
    assert linked.status_code == 201, linked.text
    assert linked.json()["customer_organisation_id"] == customer["id"] and linked.json()["since"]
    again = admin.call("POST", f"{BASE}/{reseller['id']}/customers", json={"customer_organisation_id": customer["id"]})
    assert error_of(again, 409)["code"] == "already_linked"

    seen = admin.call("GET", f"{BASE}/{reseller['id']}")
    assert seen.status_code == 200, seen.text
    assert seen.json()["customer_organisation_ids"] == [customer["id"]] and seen.json()["countries"] == ["GB", "IE"]
    resellers = admin.call("GET", BASE, params={"kind": "reseller"})
    assert resellers.status_code == 200, resellers.text
    assert reseller["id"] in [o["id"] for o in resellers.json()["items"]]
    assert all(o["kind"] == "reseller" for o in resellers.json()["items"])

    # A reseller account joins its organisation by name; its scope is what the tickets service asks for.
    name = f"reseller_{tag()}"
    staff = admin.call("POST", "/api/v1/admin/users", json={
        "role": "reseller", "username": name, "email": f"{name}@partner.example", "password": PASSWORD,
        "organisation": reseller["name"]})
    assert staff.status_code == 201, staff.text
    seller_id = staff.json()["id"]
    tickets = service_metadata(system, "tickets")
    found = scope(system, seller_id, tickets)
    assert found.reseller_id == reseller["id"]
    assert list(found.customer_organisation_ids) == [customer["id"]] and list(found.countries) == ["GB", "IE"]
    assert found.as_of.seconds > 0

    countries = admin.call("PUT", f"{BASE}/{reseller['id']}/countries", json={"countries": ["FR"]})
    assert countries.status_code == 200, countries.text
    assert countries.json()["countries"] == ["FR"]

    gone = admin.call("DELETE", f"{BASE}/{reseller['id']}/customers/{customer['id']}")
    assert gone.status_code == 204, gone.text
    after = scope(system, seller_id, tickets)
    assert list(after.customer_organisation_ids) == [] and list(after.countries) == ["FR"]
    assert error_of(admin.call("DELETE", f"{BASE}/{reseller['id']}/customers/{customer['id']}"), 404)

    # Every change was published through the outbox: countries at creation, link, countries, unlink.
    eventually(lambda: jetstream.count(system.nats_url, "KASEUM_UK", CHANGED) - before >= 4, timeout=30,
               what="relationship_changed events on JetStream")


@pytest.mark.rule("R-SEC-1")
def test_the_scope_is_only_for_services_that_need_it(system: Stack, api: Api, admin: Api) -> None:
    reseller = create(admin, f"Scope Partners {tag()}", "reseller", ["GB"])
    name = f"reseller_{tag()}"
    staff = admin.call("POST", "/api/v1/admin/users", json={
        "role": "reseller", "username": name, "email": f"{name}@partner.example", "password": PASSWORD,
        "organisation": reseller["name"]})
    assert staff.status_code == 201, staff.text
    seller = log_in(api, name)
    for metadata, code in ((caller.person_metadata(seller.token), grpc.StatusCode.PERMISSION_DENIED),
                           (service_metadata(system, "consent"), grpc.StatusCode.PERMISSION_DENIED),
                           ((), grpc.StatusCode.UNAUTHENTICATED),
                           (((caller.SERVICE_HEADER, caller.mint_service_token(b"x" * 40, "tickets")),),
                            grpc.StatusCode.UNAUTHENTICATED)):
        with pytest.raises(grpc.RpcError) as refused:
            scope(system, staff.json()["id"], metadata)
        assert refused.value.code() == code
    assert list(scope(system, staff.json()["id"], caller.person_metadata(admin.token)).countries) == ["GB"]
    _, created, _ = sign_up_and_log_in(api)
    with pytest.raises(grpc.RpcError) as not_reseller:
        scope(system, created["id"], service_metadata(system, "tickets"))
    assert not_reseller.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.rule("R-SEC-1")
def test_customers_agents_and_resellers_are_forbidden(system: Stack, api: Api, admin: Api) -> None:
    reseller = create(admin, f"Forbidden Partners {tag()}", "reseller")
    customer_org = create(admin, f"Forbidden Customer {tag()}", "customer")
    customer, _, _ = sign_up_and_log_in(api)
    name = f"agent_{tag()}"
    assert admin.call("POST", "/api/v1/admin/users", json={
        "role": "agent", "username": name, "email": f"{name}@kaseum.example", "password": PASSWORD}).status_code == 201
    agent = log_in(api, name)
    rid, cid = reseller["id"], customer_org["id"]
    for who in (customer, agent):
        for method, path, body in (
            ("POST", BASE, {"name": "Sneaky", "kind": "reseller"}),
            ("GET", BASE, None),
            ("GET", f"{BASE}/{rid}", None),
            ("PUT", f"{BASE}/{rid}/countries", {"countries": ["GB"]}),
            ("POST", f"{BASE}/{rid}/customers", {"customer_organisation_id": cid}),
            ("DELETE", f"{BASE}/{rid}/customers/{cid}", None),
        ):
            assert error_of(who.call(method, path, json=body), 403)["code"] == "forbidden", (method, path)
    assert error_of(api.call("GET", BASE), 401)["code"] == "unauthenticated"
    assert admin.call("GET", f"{BASE}/{rid}").json()["customer_organisation_ids"] == []  # nothing changed


def test_unknown_ids_are_404_and_bad_input_is_400_or_422(system: Stack, admin: Api) -> None:
    reseller = create(admin, f"Careful Partners {tag()}", "reseller")
    customer = create(admin, f"Careful Customer {tag()}", "customer")
    rid, unknown = reseller["id"], "0" * 32
    assert error_of(admin.call("GET", f"{BASE}/{unknown}"), 404)["code"] == "not_found"
    assert error_of(admin.call("PUT", f"{BASE}/{unknown}/countries", json={"countries": ["GB"]}), 404)
    assert error_of(admin.call("POST", f"{BASE}/{unknown}/customers",
                               json={"customer_organisation_id": customer["id"]}), 404)
    assert error_of(admin.call("POST", f"{BASE}/{rid}/customers", json={"customer_organisation_id": unknown}), 404)
    assert error_of(admin.call("DELETE", f"{BASE}/{rid}/customers/{unknown}"), 404)

    assert error_of(admin.call("POST", BASE, json={"name": "Bad", "kind": "reseller", "countries": ["XX"]}),
                    422)["code"] == "invalid_country"
    assert error_of(admin.call("PUT", f"{BASE}/{rid}/countries", json={"countries": ["GB", "GBR"]}),
                    422)["code"] == "invalid_country"
    assert error_of(admin.call("PUT", f"{BASE}/{customer['id']}/countries", json={"countries": ["GB"]}),
                    422)["code"] == "not_a_reseller"
    assert error_of(admin.call("POST", BASE, json={"name": "Bad", "kind": "partner"}), 422)["code"] == "invalid_kind"
    assert error_of(admin.call("POST", BASE, json={"kind": "customer"}), 422)["code"] == "invalid"  # no name
    assert error_of(admin.call("POST", BASE, json={"name": "X", "kind": "customer", "extra": 1}), 422)
    assert error_of(admin.call("PUT", f"{BASE}/{rid}/countries", json={"countries": "GB"}), 422)
    assert error_of(admin.call("GET", BASE, params={"cursor": "garbage!"}), 422)["code"] == "invalid_cursor"

    for method, path in (("POST", BASE), ("PUT", f"{BASE}/{rid}/countries"), ("POST", f"{BASE}/{rid}/customers")):
        malformed = admin.call(method, path, data="{not json", headers={"Content-Type": "application/json"})
        assert error_of(malformed, 400)["code"] == "malformed"
    name = f"Twice {tag()}"
    create(admin, name, "customer")
    assert error_of(admin.call("POST", BASE, json={"name": name.upper(), "kind": "customer"}),
                    409)["code"] == "organisation_exists"


def test_the_cli_creates_organisations_and_links_them(system: Stack, admin: Api) -> None:
    made = cli(system, "organisations", "create", "--name", f"CLI Partners {tag()}", "--kind", "reseller",
               "--country", "GB", "--country", "de")
    assert made.returncode == 0, made.stderr
    assert "created reseller" in made.stdout and "DE, GB" in made.stdout
    reseller_id = re.search(r"\(([0-9a-f]{32})\)", made.stdout).group(1)  # type: ignore[union-attr]
    customer = cli(system, "organisations", "create", "--name", f"CLI Customer {tag()}", "--kind", "customer")
    assert customer.returncode == 0, customer.stderr
    customer_id = re.search(r"\(([0-9a-f]{32})\)", customer.stdout).group(1)  # type: ignore[union-attr]

    linked = cli(system, "organisations", "link", "--reseller", reseller_id, "--customer", customer_id)
    assert linked.returncode == 0, linked.stderr
    seen = admin.call("GET", f"{BASE}/{reseller_id}").json()
    assert seen["customer_organisation_ids"] == [customer_id] and seen["countries"] == ["DE", "GB"]

    twice = cli(system, "organisations", "link", "--reseller", reseller_id, "--customer", customer_id)
    assert twice.returncode == 1 and "already_linked" in twice.stderr
    bad = cli(system, "organisations", "create", "--name", "Nope", "--kind", "reseller", "--country", "XX")
    assert bad.returncode == 1 and "invalid_country" in bad.stderr
    assert cli(system, "organisations", "create", "--name", "Nope", "--kind", "partner").returncode != 0
