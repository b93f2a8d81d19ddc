"""The foundation's user journey through the real system: gateway → gRPC → databases → JetStream."""

from __future__ import annotations

import uuid

import pytest
from servicekit.testing import eventually

from tests.support.api import Api, sign_up_and_log_in
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
def test_a_new_address_is_applied_only_once_the_link_sent_to_it_is_used(system: Stack, api: Api) -> None:
    from tests.e2e.test_consent_mail import link_token, wait_mail

    user, _, body = sign_up_and_log_in(api)
    [first] = wait_mail(system, body["email"], "Confirm your e-mail address")
    new = f"{uuid.uuid4().hex[:10]}@example.org"
    changed = user.call("PATCH", "/api/v1/me", json={"email": new})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["email"], changed.json()["pending_email"]) == (body["email"], new)
    assert user.call("GET", "/api/v1/me").json() == changed.json()
    [mail] = wait_mail(system, new, "Confirm your e-mail address")  # the link goes to the new address
    assert api.call("POST", "/api/v1/email-verifications/confirm", json={"token": link_token(mail)}).status_code == 204
    me = user.call("GET", "/api/v1/me").json()
    assert (me["email"], me["pending_email"], me["email_verified"]) == (new, "", True)
    wait_mail(system, body["email"], "Confirm your e-mail address")  # the sign-up's only: none for the change
    # A link sent to the old address verifies nothing now.
    old = api.call("POST", "/api/v1/email-verifications/confirm", json={"token": link_token(first)})
    assert old.status_code == 422 and old.json()["error"]["code"] == "invalid_token"
    assert api.call("POST", "/api/v1/sessions", json={"login": new, "password": body["password"]}).status_code == 200


@pytest.mark.notice("3.2.2")
def test_me_reads_the_same_whether_or_not_the_new_address_has_an_account(system: Stack, api: Api) -> None:
    from tests.e2e.test_consent_mail import link_token, wait_mail

    user, _, body = sign_up_and_log_in(api)
    _, owner, other = sign_up_and_log_in(api)
    free_address = f"{uuid.uuid4().hex[:10]}@example.org"
    free = user.call("PATCH", "/api/v1/me", json={"email": free_address})
    after_free = user.call("GET", "/api/v1/me").json()
    [link] = wait_mail(system, free_address, "Confirm your e-mail address")  # the link goes to the free address
    taken = user.call("PATCH", "/api/v1/me", json={"email": other["email"]})
    after_taken = user.call("GET", "/api/v1/me").json()
    assert taken.status_code == free.status_code == 200, taken.text
    assert (free.json(), taken.json()) == (after_free, after_taken)
    assert (after_free.pop("pending_email"), after_taken.pop("pending_email")) == (free_address, other["email"])
    assert after_free == after_taken and after_taken["email"] == body["email"]  # nothing else tells them apart
    # The address's owner is told, with no link; the address stays theirs, and only they sign in with it.
    [told] = wait_mail(system, other["email"], "Someone tried to use your address for another account")
    assert "token=" not in told.get_content()
    wait_mail(system, other["email"], "Confirm your e-mail address")  # its sign-up's only: no link for the change
    session = api.call("POST", "/api/v1/sessions", json={"login": other["email"], "password": other["password"]})
    assert session.status_code == 200
    signed_in = api.as_user(session.json()["token"]).call("GET", "/api/v1/sessions/current").json()
    assert signed_in["subject_id"] == owner["id"]
    # The link sent to the free address was voided by the later change; the taken one has none.
    void = api.call("POST", "/api/v1/email-verifications/confirm", json={"token": link_token(link)})
    assert void.status_code == 422 and void.json()["error"]["code"] == "invalid_token"
    assert user.call("GET", "/api/v1/me").json()["email"] == body["email"]


@pytest.mark.notice("3.2.2")
def test_a_pending_address_another_account_took_meanwhile_is_refused_at_verification(system: Stack,
                                                                                     api: Api) -> None:
    from tests.e2e.test_consent_mail import link_token, wait_mail

    user, _, body = sign_up_and_log_in(api)
    new = f"{uuid.uuid4().hex[:10]}@example.org"
    assert user.call("PATCH", "/api/v1/me", json={"email": new}).status_code == 200
    [mail] = wait_mail(system, new, "Confirm your e-mail address")
    sign_up_and_log_in(api, email=new)
    refused = api.call("POST", "/api/v1/email-verifications/confirm", json={"token": link_token(mail)})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_token"
    me = user.call("GET", "/api/v1/me").json()
    assert (me["email"], me["pending_email"]) == (body["email"], new)


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
