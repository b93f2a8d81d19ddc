"""The foundation's user journey through the real system: gateway → gRPC → databases → JetStream."""

from __future__ import annotations

import uuid

import pytest

from tests.support.api import Api, sign_up_and_log_in
from tests.support.waiting import eventually
from tools.stack import Stack


def preferences_when_ready(user: Api) -> dict[str, object]:
    def probe() -> dict[str, object] | None:
        response = user.call("GET", "/api/v1/me/preferences")
        if response.status_code == 409:  # consent has not handled account.created yet
            return None
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    return eventually(probe, what="preferences from the account.created event")


@pytest.mark.notice("1.2", "3.1", "3.2.1", "3.2.2", "3.2.4", "4.1.1")
@pytest.mark.rule("R-DATA-1")
def test_sign_up_log_in_and_read_own_account(api: Api) -> None:
    user, created, body = sign_up_and_log_in(api)
    assert created["region"] == "uk" and created["username"] == body["username"]
    me = user.call("GET", "/api/v1/me")
    assert me.status_code == 200
    data = me.json()
    for field in ("username", "email", "first_name", "last_name", "company", "job_title", "country"):
        assert data[field] == body[field]
    assert data["phone"] == "+442079460018"  # stored in E.164
    assert "password" not in data and "password_hash" not in data and not any("hash" in k for k in data)


@pytest.mark.notice("3.2.1", "3.2.2", "6.1", "7")
@pytest.mark.rule("R-RECT-1", "R-XFER-2", "R-MKT-3")
def test_patch_me_changes_sign_up_fields_and_marketing_choices(api: Api) -> None:
    user, created, _ = sign_up_and_log_in(api)
    preferences_when_ready(user)
    changed = user.call("PATCH", "/api/v1/me", json={
        "job_title": "Director", "country": "je", "phone": "07797 123456",
        "marketing": {"email": True}, "third_party_marketing": True})
    assert changed.status_code == 200, changed.text
    me = changed.json()
    assert (me["job_title"], me["country"], me["region"], me["phone"]) == ("Director", "JE", "uk", "+447797123456")
    assert user.call("GET", "/api/v1/me").json() == me
    prefs = user.call("GET", "/api/v1/me/preferences").json()
    assert prefs["marketing"] == {"email": True, "telephone": False} and prefs["third_party_marketing"] is True
    # The home region is fixed at sign-up: a country of another region is refused, and nothing changes.
    moved = user.call("PATCH", "/api/v1/me", json={"country": "DE", "job_title": "Spy",
                                                   "marketing": {"email": False}})
    assert moved.status_code == 422 and moved.json()["error"]["code"] == "wrong_region"
    assert user.call("GET", "/api/v1/me").json()["job_title"] == "Director"
    assert user.call("GET", "/api/v1/me/preferences").json()["marketing"]["email"] is True
    for refused in ({"username": "someone_else"}, {"password": "x" * 20}, {"country": "XX"}):
        assert user.call("PATCH", "/api/v1/me", json=refused).status_code == 422, refused
    assert user.call("GET", "/api/v1/me").json()["id"] == created["id"]


@pytest.mark.notice("3.2.2")
@pytest.mark.rule("R-RECT-1")
def test_a_changed_address_is_verified_again_through_the_api(system: Stack, api: Api) -> None:
    from tests.e2e.test_consent_mail import link_token, wait_mail

    user, _, body = sign_up_and_log_in(api)
    [first] = wait_mail(system, body["email"], "Confirm your e-mail address")
    new = f"{uuid.uuid4().hex[:10]}@example.org"
    changed = user.call("PATCH", "/api/v1/me", json={"email": new})
    assert changed.status_code == 200 and (changed.json()["email"], changed.json()["email_verified"]) == (new, False)
    [mail] = wait_mail(system, new, "Confirm your e-mail address")
    # The link sent to the old address does not verify the new one.
    old = api.call("POST", "/api/v1/email-verifications/confirm", json={"token": link_token(first)})
    assert old.status_code == 422 and old.json()["error"]["code"] == "invalid_token"
    assert api.call("POST", "/api/v1/email-verifications/confirm", json={"token": link_token(mail)}).status_code == 204
    assert user.call("GET", "/api/v1/me").json()["email_verified"] is True


@pytest.mark.notice("3.2.2")
def test_changing_to_someone_elses_address_answers_like_a_free_one(api: Api) -> None:
    user, _, _ = sign_up_and_log_in(api)
    _, owner, other = sign_up_and_log_in(api)
    free = user.call("PATCH", "/api/v1/me", json={"email": f"{uuid.uuid4().hex[:10]}@example.org"})
    taken = user.call("PATCH", "/api/v1/me", json={"email": other["email"]})
    assert taken.status_code == free.status_code == 200, taken.text
    assert set(taken.json()) == set(free.json()) and taken.json()["email"] == other["email"]
    assert taken.json()["email_verified"] is free.json()["email_verified"] is False
    # Not applied: the address stays its owner's, and only its owner signs in with it.
    assert user.call("GET", "/api/v1/me").json()["email"] == free.json()["email"]
    session = api.call("POST", "/api/v1/sessions", json={"login": other["email"], "password": other["password"]})
    assert session.status_code == 200
    signed_in = api.as_user(session.json()["token"]).call("GET", "/api/v1/sessions/current").json()
    assert signed_in["subject_id"] == owner["id"]


@pytest.mark.notice("1.2")
def test_open_list_read_and_reply_to_a_ticket(api: Api) -> None:
    user, _, _ = sign_up_and_log_in(api)
    opened = user.call("POST", "/api/v1/tickets", json={"subject": "Licence key", "body": "It says expired."})
    assert opened.status_code == 201, opened.text
    ticket = opened.json()
    assert ticket["status"] == "open" and ticket["subject"] == "Licence key" and ticket["created_at"].endswith("Z")
    listed = user.call("GET", "/api/v1/tickets")
    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()["items"]] == [ticket["id"]]
    assert listed.json()["next_cursor"] is None
    reply = user.call("POST", f"/api/v1/tickets/{ticket['id']}/replies", json={"body": "Any news?"})
    assert reply.status_code == 201, reply.text
    read = user.call("GET", f"/api/v1/tickets/{ticket['id']}")
    assert read.status_code == 200
    assert [r["body"] for r in read.json()["replies"]] == ["Any news?"]


@pytest.mark.notice("6.1", "7")
@pytest.mark.rule("R-MKT-1", "R-MKT-3")
def test_default_preferences_come_from_the_account_created_event(api: Api) -> None:
    user, _, _ = sign_up_and_log_in(api)
    prefs = preferences_when_ready(user)
    assert prefs["marketing"] == {"email": False, "telephone": False}
    assert prefs["third_party_marketing"] is False
    assert prefs["cookies"] == {"analytics": False, "marketing": False}
    assert prefs["notice_version"]


@pytest.mark.notice("6.1")
@pytest.mark.rule("R-MKT-1")
def test_sign_up_choices_travel_to_consent_over_jetstream(api: Api) -> None:
    # Identity never calls consent: the only way these choices reach it is the event.
    user, _, _ = sign_up_and_log_in(api, marketing={"email": True, "telephone": False})
    prefs = preferences_when_ready(user)
    assert prefs["marketing"] == {"email": True, "telephone": False}
    assert prefs["third_party_marketing"] is False


@pytest.mark.notice("8.1")
@pytest.mark.rule("R-MKT-4", "R-WITHDRAW-1")
def test_preferences_can_be_changed_and_withdrawn(api: Api) -> None:
    user, _, _ = sign_up_and_log_in(api, marketing={"email": True, "telephone": False})
    preferences_when_ready(user)
    changed = user.call("PUT", "/api/v1/me/preferences", json={"marketing": {"email": False}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["marketing"] == {"email": False, "telephone": False}
    assert user.call("GET", "/api/v1/me/preferences").json()["marketing"]["email"] is False


@pytest.mark.rule("R-SEC-2")
def test_logout_revokes_the_session_on_the_next_request(api: Api) -> None:
    user, account, _ = sign_up_and_log_in(api)
    assert user.call("GET", "/api/v1/me").status_code == 200
    current = user.call("GET", "/api/v1/sessions/current")
    assert current.status_code == 200
    assert current.json()["subject_id"] == account["id"] and current.json()["role"] == "customer"
    assert user.call("DELETE", "/api/v1/sessions/current").status_code == 204
    for path in ("/api/v1/me", "/api/v1/sessions/current"):  # a service's answer and the gateway's own
        after = user.call("GET", path)
        assert after.status_code == 401
        assert after.json()["error"]["code"] == "session_revoked"


def test_health_readiness_and_openapi(api: Api) -> None:
    assert api.call("GET", "/healthz").status_code == 200
    ready = api.call("GET", "/readyz")
    assert ready.status_code == 200 and set(ready.json()["services"]) == {
        "identity", "tickets", "consent", "rights", "analytics"}
    doc = api.call("GET", "/api/openapi.json").json()
    for path in ("/api/v1/accounts", "/api/v1/sessions", "/api/v1/sessions/current", "/api/v1/me",
                 "/api/v1/tickets", "/api/v1/tickets/{ticket_id}", "/api/v1/tickets/{ticket_id}/replies",
                 "/api/v1/me/preferences", "/api/v1/rights-requests", "/api/v1/admin/users"):
        assert path in doc["paths"], path


@pytest.mark.notice("11")
@pytest.mark.rule("R-SEC-2")
def test_no_personal_data_in_any_log_line(system: Stack, api: Api) -> None:
    user, _, body = sign_up_and_log_in(api, username=f"zq_{uuid.uuid4().hex[:8]}")
    user.call("POST", "/api/v1/tickets", json={"subject": "Secret subject line", "body": "My secret body"})
    user.call("GET", "/api/v1/me")
    api.call("POST", "/api/v1/sessions", json={"login": body["username"], "password": "wrong password!"})
    eventually(lambda: preferences_when_ready(user), what="the event to be consumed")
    logs = "\n".join(p.read_text(errors="replace") for p in (system.var / "log").glob("*.log"))
    assert '"event handled"' in logs  # the logs were written and read
    for value in (body["email"], body["username"], body["password"], "+442079460018", body["last_name"],
                  "Secret subject line", "My secret body", user.token):
        assert value not in logs, value


@pytest.mark.notice("3.4")
@pytest.mark.rule("R-DATA-2")
def test_the_customer_is_told_not_to_write_special_category_data_in_a_ticket(api: Api) -> None:
    user, _, _ = sign_up_and_log_in(api)
    opened = user.call("POST", "/api/v1/tickets", json={"subject": "Login", "body": "It fails."})
    assert opened.status_code == 201, opened.text
    assert "health" in opened.json()["guidance"] and "criminal" in opened.json()["guidance"]
    # Where the customer writes: the fields of the documented request say it too.
    schemas = api.call("GET", "/api/openapi.json").json()["components"]["schemas"]
    body = next(s for name, s in schemas.items() if name.startswith("TicketBody"))
    assert "3.4" in body["properties"]["body"]["description"]
