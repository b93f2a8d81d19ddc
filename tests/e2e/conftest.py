"""Fixtures shared by the whole-system tests: the gateway client, an administrator, a DPO."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support.api import PASSWORD, Api, log_in, staff
from tools.stack import Stack

KASEUM = str(Path(sys.executable).parent / "kaseum")


@pytest.fixture(scope="module")
def api(system: Stack) -> Api:
    return Api(system.gateway_url)


@pytest.fixture(scope="module")
def admin(system: Stack, api: Api) -> Api:
    """The first administrator, made with the operator CLI as a new deployment does."""
    name = f"admin_{uuid.uuid4().hex[:8]}"
    done = subprocess.run([KASEUM, "users", "create", "--role", "admin", "--username", name, "--email",
                           f"{name}@kaseum.example", "--password-stdin"], input=PASSWORD + "\n", text=True,
                          capture_output=True, timeout=60,
                          env={"KASEUM_ENV_FILE": str(system.var / "kaseum.env"), "PATH": "/usr/bin:/bin",
                               "IDENTITY_ADDR": system.grpc_addr("identity")})
    assert done.returncode == 0, done.stderr
    return log_in(api, name)


@pytest.fixture(scope="module")
def dpo(api: Api, admin: Api) -> Api:
    return staff(api, admin, "dpo")[0]
