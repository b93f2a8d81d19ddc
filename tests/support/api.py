"""A small client for the gateway's JSON API, as a customer's script would use it."""

from __future__ import annotations

import uuid
from typing import Any

import requests

PASSWORD = "correct horse battery staple"


class Api:
    def __init__(self, base: str, token: str = "") -> None:
        self.base = base
        self.token = token

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if self.token and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {self.token}"
        return requests.request(method, self.base + path, headers=headers, timeout=15, **kwargs)

    def as_user(self, token: str) -> Api:
        return Api(self.base, token)


def signup_body(**overrides: Any) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:10]
    body: dict[str, Any] = {
        "username": f"user_{tag}", "email": f"{tag}@example.com", "password": PASSWORD,
        "first_name": "Ada", "last_name": "Lovelace", "company": "Analytical Engines Ltd",
        "job_title": "Engineer", "phone": "+44 20 7946 0018", "country": "GB",
    }
    body.update(overrides)
    return body


def sign_up_and_log_in(api: Api, **overrides: Any) -> tuple[Api, dict[str, Any], dict[str, Any]]:
    body = signup_body(**overrides)
    created = api.call("POST", "/api/v1/accounts", json=body)
    assert created.status_code == 201, created.text
    session = api.call("POST", "/api/v1/sessions", json={"login": body["username"], "password": body["password"]})
    assert session.status_code == 200, session.text
    return api.as_user(session.json()["token"]), created.json(), body


def log_in(api: Api, login: str, password: str = PASSWORD) -> Api:
    response = api.call("POST", "/api/v1/sessions", json={"login": login, "password": password})
    assert response.status_code == 200, response.text
    return api.as_user(response.json()["token"])


def staff(api: Api, admin: Api, role: str) -> tuple[Api, str]:
    """A new staff member of `role`, created by an administrator, signed in; and their id."""
    name = f"{role}_{uuid.uuid4().hex[:8]}"
    created = admin.call("POST", "/api/v1/admin/users", json={
        "role": role, "username": name, "email": f"{name}@kaseum.example", "password": PASSWORD})
    assert created.status_code == 201, created.text
    return log_in(api, name), created.json()["id"]
