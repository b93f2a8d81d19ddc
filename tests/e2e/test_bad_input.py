"""Bad input gets a clear error in API.md's shape and never a 5xx."""

from __future__ import annotations

import base64
import json

import pytest

from tests.support.api import Api, sign_up_and_log_in, signup_body


def error_of(response: object, status: int) -> dict[str, str]:
    assert response.status_code == status, (response.status_code, response.text)  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    return body["error"]  # type: ignore[no-any-return]


def test_malformed_json_is_400(api: Api) -> None:
    response = api.call("POST", "/api/v1/accounts", data="{not json",
                        headers={"Content-Type": "application/json"})
    assert error_of(response, 400)["code"] == "malformed"


def test_empty_body_and_wrong_content_type_are_400(api: Api) -> None:
    assert error_of(api.call("POST", "/api/v1/sessions", headers={"Content-Type": "application/json"}),
                    400)["code"] == "malformed"
    assert error_of(api.call("POST", "/api/v1/sessions", data="login=a&password=b",
                             headers={"Content-Type": "application/x-www-form-urlencoded"}), 400)


def test_wrong_types_and_unknown_fields_are_422(api: Api) -> None:
    body = signup_body(username=12345, marketing={"email": "yes"})
    error = error_of(api.call("POST", "/api/v1/accounts", json=body), 422)
    assert "username" in error["message"] and "marketing.email" in error["message"]
    assert error_of(api.call("POST", "/api/v1/accounts", json=[1, 2]), 422)
    assert error_of(api.call("POST", "/api/v1/accounts", json=signup_body(is_admin=True)), 422)


@pytest.mark.notice("3.2.2")
def test_invalid_fields_are_422_without_echoing_values(api: Api) -> None:
    for field, value in (("email", "not-an-address"), ("phone", "12"), ("country", "XX"), ("password", "short")):
        error = error_of(api.call("POST", "/api/v1/accounts", json=signup_body(**{field: value})), 422)
        assert value not in error["message"], field


def test_a_six_mebibyte_body_is_413(api: Api) -> None:
    payload = json.dumps({"subject": "x", "body": "y" * (6 * 1024 * 1024)})
    response = api.call("POST", "/api/v1/tickets", data=payload, headers={"Content-Type": "application/json"})
    assert error_of(response, 413)["code"] == "too_large"


@pytest.mark.notice("3.2.1")
def test_a_taken_username_or_address_answers_exactly_like_a_new_account(api: Api) -> None:
    body = signup_body()
    first = api.call("POST", "/api/v1/accounts", json=body)
    assert first.status_code == 201
    # Neither a taken username nor a taken address is revealed: the answer has the status and
    # shape of a new account (the address's owner is told by a service message instead).
    clashes = [(signup_body(username=body["username"].upper()), "email"),
               (signup_body(email=body["email"]), "username")]
    for clash, its_own in clashes:
        again = api.call("POST", "/api/v1/accounts", json=clash)
        assert again.status_code == 201 and set(again.json()) == set(first.json())
        assert again.json()["id"] != first.json()["id"]
        assert again.json()["username"] == clash["username"]
        # Nothing was created: the clashing sign-up's own login name does not work.
        login = api.call("POST", "/api/v1/sessions", json={"login": clash[its_own], "password": clash["password"]})
        assert login.status_code == 401


@pytest.mark.rule("R-SEC-1")
def test_unknown_and_someone_elses_ticket_are_both_404(api: Api) -> None:
    owner, _, _ = sign_up_and_log_in(api)
    other, _, _ = sign_up_and_log_in(api)
    ticket = owner.call("POST", "/api/v1/tickets", json={"subject": "Mine", "body": "private"}).json()
    unknown = error_of(other.call("GET", "/api/v1/tickets/0123456789abcdef0123456789abcdef"), 404)
    foreign = error_of(other.call("GET", f"/api/v1/tickets/{ticket['id']}"), 404)
    assert unknown == foreign  # the same answer: existence never leaks
    assert error_of(other.call("POST", f"/api/v1/tickets/{ticket['id']}/replies", json={"body": "hi"}), 404)
    assert other.call("GET", "/api/v1/tickets").json()["items"] == []


def test_a_customer_cannot_write_internal_notes(api: Api) -> None:
    user, _, _ = sign_up_and_log_in(api)
    ticket = user.call("POST", "/api/v1/tickets", json={"subject": "s", "body": "b"}).json()
    error_of(user.call("POST", f"/api/v1/tickets/{ticket['id']}/replies", json={"body": "n", "internal": True}),
             403)


@pytest.mark.rule("R-SEC-2")
def test_no_token_forged_token_and_tampered_token_are_401(api: Api) -> None:
    assert error_of(api.call("GET", "/api/v1/me"), 401)
    assert error_of(api.call("GET", "/api/v1/me", headers={"Authorization": "Bearer forged.token.here"}), 401)
    assert error_of(api.call("GET", "/api/v1/me", headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401)
    user, _, _ = sign_up_and_log_in(api)
    header, claims, signature = user.token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    decoded["role"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(decoded).encode()).decode().rstrip("=")
    assert error_of(api.as_user(f"{header}.{forged}.{signature}").call("GET", "/api/v1/me"), 401)


@pytest.mark.notice("11")
def test_wrong_password_and_unknown_login_get_the_same_401(api: Api) -> None:
    _, _, body = sign_up_and_log_in(api)
    wrong = api.call("POST", "/api/v1/sessions", json={"login": body["username"], "password": "nope nope nope"})
    unknown = api.call("POST", "/api/v1/sessions", json={"login": "nobody_here", "password": "nope nope nope"})
    assert error_of(wrong, 401) == error_of(unknown, 401)


def test_bad_cursor_and_status_are_422(api: Api) -> None:
    user, _, _ = sign_up_and_log_in(api)
    assert error_of(user.call("GET", "/api/v1/tickets", params={"cursor": "%%%"}), 422)
    assert error_of(user.call("GET", "/api/v1/tickets", params={"status": "lost"}), 422)


def test_unknown_path_and_method_use_the_error_shape(api: Api) -> None:
    assert error_of(api.call("GET", "/api/v1/nothing-here"), 404)
    assert error_of(api.call("PUT", "/api/v1/accounts", json={}), 405)


@pytest.mark.rule("R-XFER-2")
def test_sign_up_from_another_region_is_422(api: Api) -> None:
    error = error_of(api.call("POST", "/api/v1/accounts", json=signup_body(country="DE")), 422)
    assert error["code"] == "wrong_region"


@pytest.mark.rule("R-SEC-1")
def test_customers_cannot_create_staff(api: Api) -> None:
    user, _, _ = sign_up_and_log_in(api)
    body = {"role": "admin", "username": "sneaky", "email": "s@example.com", "password": "x" * 16}
    assert error_of(user.call("POST", "/api/v1/admin/users", json=body), 403)
