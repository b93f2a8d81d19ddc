"""Hosting providers and transfer safeguards declared in a deployment's settings: checked by every service
at start-up through the transfer policy, logged, and shown to the DPO (R-XFER-1, R-SHARE-2)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.api import PASSWORD, Api
from tools.stack import Stack

KASEUM = str(Path(sys.executable).parent / "kaseum")
PROVIDERS = [{"name": "Example Cloud UK", "country": "GB", "categories": ["3.2.1", "ticket_content"]},
             {"name": "Example Cloud EU", "country": "IE", "categories": ["3.2.1", "ticket_content"]}]


def safeguards_file(folder: Path, expires: str) -> Path:
    path = folder / "safeguards.json"
    path.write_text(json.dumps({"safeguards": [{
        "reference": "IDTA-2026-042", "type": "IDTA", "risk_assessment": "TRA-2026-042",
        "recipient": "Example Cloud IN", "country": "IN", "categories": ["3.2.1"], "expires": expires}]}))
    return path


def env_for(stack: Stack) -> dict[str, str]:
    return {"KASEUM_ENV_FILE": str(stack.var / "kaseum.env"), "PATH": "/usr/bin:/bin",
            **{f"{n.upper()}_ADDR": stack.grpc_addr(n) for n in stack.grpc_ports}}


def dpo_session(stack: Stack) -> Api:
    api = Api(stack.gateway_url)
    admin_name, dpo_name = f"admin_{uuid.uuid4().hex[:8]}", f"dpo_{uuid.uuid4().hex[:8]}"
    done = subprocess.run([KASEUM, "users", "create", "--role", "admin", "--username", admin_name, "--email",
                           f"{admin_name}@kaseum.example", "--password-stdin"], input=PASSWORD + "\n", text=True,
                          capture_output=True, env=env_for(stack), timeout=60)
    assert done.returncode == 0, done.stderr
    admin = api.as_user(api.call("POST", "/api/v1/sessions", json={"login": admin_name, "password": PASSWORD})
                        .json()["token"])
    assert admin.call("POST", "/api/v1/admin/users", json={"role": "dpo", "username": dpo_name, "email":
                      f"{dpo_name}@kaseum.example", "password": PASSWORD}).status_code == 201
    return api.as_user(api.call("POST", "/api/v1/sessions", json={"login": dpo_name, "password": PASSWORD})
                       .json()["token"])


@pytest.mark.notice("10.2.1")
@pytest.mark.notice("10.2.2")
@pytest.mark.notice("5.1.2")
@pytest.mark.rule("R-XFER-1")
@pytest.mark.rule("R-SHARE-2")
def test_declared_hosting_providers_are_checked_logged_and_in_the_record(
        make_stack: Callable[..., Stack], tmp_path: Path) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    stack = make_stack(HOSTING_PROVIDERS=json.dumps(PROVIDERS),
                       TRANSFER_SAFEGUARDS_FILE=str(safeguards_file(tmp_path, tomorrow)))
    stack.start()
    dpo = dpo_session(stack)
    log = dpo.call("GET", "/api/v1/dpo/transfers")
    assert log.status_code == 200, log.text
    decisions = {(d["service"], d["recipient"], d["allowed"], d["basis"]) for d in log.json()["items"]}
    for service in ("tickets", "rights"):
        assert (service, "Example Cloud UK", True, "domestic") in decisions
        assert (service, "Example Cloud EU", True, "adequacy") in decisions
    assert all(s["intact"] for s in dpo.call("GET", "/api/v1/dpo/audit/verify",
                                             params={"chain": "transfers"}).json()["services"])
    record = dpo.call("GET", "/api/v1/dpo/ropa").json()["transfers"]
    assert {h["name"] for h in record["hosting_providers"]} == {"Example Cloud UK", "Example Cloud EU"}
    assert [s["reference"] for s in record["safeguards"]] == ["IDTA-2026-042"]
    assert record["adequacy_as_of"] and "KR" in record["adequate_destinations"]
    listed = subprocess.run([KASEUM, "transfers", "list"], capture_output=True, text=True, env=env_for(stack),
                            timeout=60)
    assert listed.returncode == 0 and "hosting" in listed.stdout and "Example Cloud EU" in listed.stdout


@pytest.mark.notice("10.2.1")
@pytest.mark.notice("10.2.2")
@pytest.mark.rule("R-XFER-1")
def test_a_hosting_provider_without_a_valid_safeguard_stops_the_service_with_the_reason(
        make_stack: Callable[..., Stack], tmp_path: Path) -> None:
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    stack = make_stack(HOSTING_PROVIDERS=json.dumps([{"name": "Example Cloud IN", "country": "IN",
                                                       "categories": ["3.2.1"]}]),
                       TRANSFER_SAFEGUARDS_FILE=str(safeguards_file(tmp_path, yesterday)))
    with pytest.raises(RuntimeError, match="exited"):
        stack.start(wait=40)
    logs = "".join((stack.var / "log" / f"{name}.log").read_text(errors="replace") for name in ("tickets", "rights"))
    assert "Example Cloud IN" in logs and "expired on " + yesterday in logs
