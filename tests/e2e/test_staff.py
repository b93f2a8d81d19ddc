"""Staff: the first admin from the `kaseum` CLI, staff created over the API, agents on the queue."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support.api import PASSWORD, Api, sign_up_and_log_in
from tools.stack import Stack

KASEUM = str(Path(sys.executable).parent / "kaseum")


def cli(system: Stack, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {"KASEUM_ENV_FILE": str(system.var / "kaseum.env"), "IDENTITY_ADDR": system.grpc_addr("identity"),
           "PATH": "/usr/bin:/bin"}
    return subprocess.run([KASEUM, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60)


def log_in(api: Api, login: str) -> Api:
    response = api.call("POST", "/api/v1/sessions", json={"login": login, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return api.as_user(response.json()["token"])


@pytest.fixture(scope="module")
def admin(system: Stack, api: Api) -> Api:
    name = f"admin_{uuid.uuid4().hex[:8]}"
    done = cli(system, "users", "create", "--role", "admin", "--username", name, "--email",
               f"{name}@kaseum.example", "--password-stdin", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    assert "created admin" in done.stdout and PASSWORD not in done.stdout + done.stderr
    return log_in(api, name)


@pytest.mark.rule("R-SEC-1", "R-SEC-2")
def test_the_cli_refuses_a_password_argument_and_bad_roles(system: Stack) -> None:
    no_stdin = cli(system, "users", "create", "--role", "admin", "--username", "x_admin", "--email", "x@e.com")
    assert no_stdin.returncode != 0 and "--password-stdin" in no_stdin.stderr
    bad_role = cli(system, "users", "create", "--role", "root", "--username", "y", "--email", "y@e.com",
                   "--password-stdin", stdin=PASSWORD)
    assert bad_role.returncode != 0 and "--role" in bad_role.stderr


@pytest.mark.rule("R-SEC-1", "R-SEC-2")
def test_the_cli_needs_the_deployment_secret(system: Stack) -> None:
    env = {"KASEUM_ENV_FILE": "/nonexistent", "IDENTITY_ADDR": system.grpc_addr("identity"),
           "KASEUM_SERVICE_SECRET": "w" * 40}
    done = subprocess.run([KASEUM, "users", "create", "--role", "admin", "--username", "intruder", "--email",
                           "i@e.com", "--password-stdin"], input=PASSWORD, capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.returncode == 1 and "credentials" in done.stderr


@pytest.mark.notice("11")
@pytest.mark.rule("R-SEC-1")
def test_admin_creates_an_agent_who_works_the_queue_with_internal_notes(api: Api, admin: Api) -> None:
    name = f"agent_{uuid.uuid4().hex[:8]}"
    created = admin.call("POST", "/api/v1/admin/users", json={
        "role": "agent", "username": name, "email": f"{name}@kaseum.example", "password": PASSWORD})
    assert created.status_code == 201, created.text
    assert created.json()["role"] == "agent"
    agent = log_in(api, name)

    customer, _, _ = sign_up_and_log_in(api)
    ticket = customer.call("POST", "/api/v1/tickets", json={"subject": "Help", "body": "Broken"}).json()
    queue = agent.call("GET", "/api/v1/tickets")
    assert queue.status_code == 200 and ticket["id"] in [t["id"] for t in queue.json()["items"]]
    note = agent.call("POST", f"/api/v1/tickets/{ticket['id']}/replies", json={"body": "VIP", "internal": True})
    assert note.status_code == 201
    public = agent.call("POST", f"/api/v1/tickets/{ticket['id']}/replies", json={"body": "On it"})
    assert public.status_code == 201
    seen_by_customer = customer.call("GET", f"/api/v1/tickets/{ticket['id']}").json()["replies"]
    assert [r["body"] for r in seen_by_customer] == ["On it"]  # internal notes never reach the customer
    seen_by_agent = agent.call("GET", f"/api/v1/tickets/{ticket['id']}").json()["replies"]
    assert [r["body"] for r in seen_by_agent] == ["VIP", "On it"]
    # An agent cannot open tickets, nor administer.
    assert agent.call("POST", "/api/v1/tickets", json={"subject": "s", "body": "b"}).status_code == 403
    assert agent.call("POST", "/api/v1/admin/users", json={
        "role": "admin", "username": "up", "email": "up@e.com", "password": PASSWORD}).status_code == 403


@pytest.mark.rule("R-SEC-1")
def test_an_admin_cannot_make_a_customer_account(api: Api, admin: Api) -> None:
    name = f"cust_{uuid.uuid4().hex[:8]}"
    refused = admin.call("POST", "/api/v1/admin/users", json={
        "role": "customer", "username": name, "email": f"{name}@example.com", "password": PASSWORD})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_role"
    assert api.call("POST", "/api/v1/sessions", json={"login": name, "password": PASSWORD}).status_code == 401


@pytest.mark.notice("6.1")
def test_staff_have_no_marketing_preferences_page(api: Api, admin: Api) -> None:
    assert admin.call("GET", "/api/v1/me/preferences").status_code == 403
