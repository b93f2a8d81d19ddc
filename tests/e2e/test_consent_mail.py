"""Consent's communications through the real system: SMTP into the sink's var/mail/*.eml, read back.

Identity's service messages, campaigns with RFC 8058 one-click unsubscribe, every opt-out route of
section 8.1 taking effect before the next send, service messages continuing after opt-out, GPC,
notice versions and update notices.
"""

from __future__ import annotations

import email
import email.policy
import subprocess
import sys
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from servicekit.db import make_engine
from servicekit.testing import eventually
from sqlalchemy import text

from tests.support.api import PASSWORD, Api, log_in, sign_up_and_log_in, signup_body
from tools.stack import Stack

KASEUM = str(Path(sys.executable).parent / "kaseum")


def mails(stack: Stack, to: str) -> list[EmailMessage]:
    found = []
    for path in sorted(stack.mail_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] == to:
            found.append(message)  # type: ignore[arg-type]
    return found


def wait_mail(stack: Stack, to: str, subject: str, count: int = 1) -> list[EmailMessage]:
    def probe() -> list[EmailMessage]:
        found = [m for m in mails(stack, to) if m["Subject"] == subject]
        assert len(found) <= count, f"{len(found)} copies of {subject!r}"
        return found if len(found) == count else []

    return eventually(probe, timeout=30, what=f"{count} × {subject!r} to the sink")


def link_token(message: EmailMessage) -> str:
    body = message.get_content()
    url = next(w for w in body.split() if "token=" in w)
    return parse_qs(urlsplit(url).query)["token"][0]


def cli(stack: Stack, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {"KASEUM_ENV_FILE": str(stack.var / "kaseum.env"), "IDENTITY_ADDR": stack.grpc_addr("identity"),
           "CONSENT_ADDR": stack.grpc_addr("consent"), "PATH": "/usr/bin:/bin"}
    return subprocess.run([KASEUM, *args], input=stdin, capture_output=True, text=True, env=env, timeout=120)


def customer(api: Api, **overrides: Any) -> tuple[Api, str, str]:
    """A signed-in customer whose preferences exist; (client, subject id, address)."""
    user, created, body = sign_up_and_log_in(api, **overrides)
    eventually(lambda: user.call("GET", "/api/v1/me/preferences").status_code == 200, what="preferences")
    return user, created["id"], body["email"]


def campaign(admin: Api, subject: str, **extra: Any) -> dict[str, Any]:
    response = admin.call("POST", "/api/v1/admin/campaigns", json={
        "subject": subject, "body": "Our spring offers.", "channel": "email", "purpose": "marketing", **extra})
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


# --- identity's service messages ------------------------------------------------------------


@pytest.mark.notice("4.1.1", "8.2")
@pytest.mark.rule("R-MKT-5")
def test_the_sign_up_verification_mail_arrives_and_its_link_verifies(system: Stack, api: Api) -> None:
    user, _, address = customer(api)
    [mail] = wait_mail(system, address, "Confirm your e-mail address")
    assert "List-Unsubscribe" not in mail  # a service message carries no marketing machinery
    confirmed = api.call("POST", "/api/v1/email-verifications/confirm", json={"token": link_token(mail)})
    assert confirmed.status_code == 204, confirmed.text
    assert user.call("GET", "/api/v1/me").json()["email_verified"] is True


@pytest.mark.notice("8.2", "11")
@pytest.mark.rule("R-MKT-5")
def test_a_password_reset_mail_arrives_once_and_its_link_works(system: Stack, api: Api) -> None:
    _, _, address = customer(api)
    assert api.call("POST", "/api/v1/password-resets", json={"email": address}).status_code == 202
    [mail] = wait_mail(system, address, "Reset your password")
    new_password = "an entirely new passphrase 42"
    done = api.call("POST", "/api/v1/password-resets/confirm", json={"token": link_token(mail),
                                                                      "new_password": new_password})
    assert done.status_code == 204, done.text
    again = api.call("POST", "/api/v1/password-resets/confirm", json={"token": link_token(mail),
                                                                       "new_password": new_password + "x"})
    assert again.status_code == 422  # one use only


@pytest.mark.notice("8.2")
def test_a_sign_up_with_a_known_address_tells_its_owner(system: Stack, api: Api) -> None:
    _, _, address = customer(api)
    api.call("POST", "/api/v1/accounts", json={**_signup(), "email": address})
    wait_mail(system, address, "Someone tried to sign up with your address")


def _signup() -> dict[str, Any]:
    from tests.support.api import signup_body

    return signup_body()


# --- campaigns, unsubscribe, opt-out routes ------------------------------------------------


@pytest.mark.notice("6.1", "8.1")
@pytest.mark.rule("R-MKT-1", "R-MKT-4")
def test_a_campaign_reaches_only_those_who_opted_in_each_with_a_one_click_link(system: Stack, api: Api,
                                                                                admin: Api) -> None:
    _, _, yes = customer(api, marketing={"email": True})
    _, _, no = customer(api)
    tag = f"Spring {uuid.uuid4().hex[:6]}"
    result = campaign(admin, tag)
    assert result["eligible"] >= 1 and result["audience"] == result["eligible"] + result["suppressed"]
    [mail] = wait_mail(system, yes, tag)
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = mail["List-Unsubscribe"].strip("<>")
    assert url.startswith(system.gateway_url + "/api/v1/unsubscribe?token=")
    assert url in mail.get_content()  # the same link in the body
    assert mails(system, no) == [] or all(m["Subject"] != tag for m in mails(system, no))


@pytest.mark.notice("8.1", "8.2")
@pytest.mark.rule("R-MKT-4", "R-MKT-5", "R-WITHDRAW-1")
def test_one_click_unsubscribe_stops_the_next_send_and_service_mail_continues(system: Stack, api: Api,
                                                                               admin: Api) -> None:
    user, _, address = customer(api, marketing={"email": True})
    first = f"First {uuid.uuid4().hex[:6]}"
    campaign(admin, first)
    [mail] = wait_mail(system, address, first)
    url = mail["List-Unsubscribe"].strip("<>")
    path = url.removeprefix(system.gateway_url)
    # A GET (a mail scanner) changes nothing: it shows a page that asks.
    page = api.call("GET", path)
    assert page.status_code == 200 and "<form" in page.text
    assert user.call("GET", "/api/v1/me/preferences").json()["marketing"]["email"] is True
    # The mail client's RFC 8058 POST, as Gmail sends it: form body, no session (an expired one is ignored).
    click = api.call("POST", path, data="List-Unsubscribe=One-Click",
                     headers={"Content-Type": "application/x-www-form-urlencoded",
                              "Authorization": "Bearer expired.or.forged"})
    assert click.status_code == 200, click.text
    assert click.json()["already"] is False
    again = api.call("POST", path, data="List-Unsubscribe=One-Click",
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert again.status_code == 200 and again.json()["already"] is True  # idempotent
    assert user.call("GET", "/api/v1/me/preferences").json()["marketing"]["email"] is False
    second = f"Second {uuid.uuid4().hex[:6]}"
    campaign(admin, second)
    notice = f"Service {uuid.uuid4().hex[:6]}"
    response = admin.call("POST", "/api/v1/admin/campaigns", json={
        "subject": notice, "body": "Planned maintenance on Sunday.", "channel": "email", "purpose": "service"})
    assert response.status_code == 202
    wait_mail(system, address, notice)  # service messages still go out (section 8.2)…
    assert [m for m in mails(system, address) if m["Subject"] == second] == []  # …marketing does not


@pytest.mark.rule("R-MKT-4")
def test_forged_and_missing_unsubscribe_tokens_are_refused_cleanly(api: Api) -> None:
    forged = api.call("POST", "/api/v1/unsubscribe?token=eyJzIjoiYSJ9.bm90LWEtbWFj",
                      data="List-Unsubscribe=One-Click", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert forged.status_code == 400 and forged.json()["error"]["code"] == "invalid_token"
    missing = api.call("POST", "/api/v1/unsubscribe", json={})
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "invalid_token"
    page = api.call("GET", "/api/v1/unsubscribe?token=garbage")
    assert page.status_code == 400 and "not valid" in page.text


@pytest.mark.rule("R-MKT-4")
def test_an_expired_link_is_410_and_a_revoked_session_does_not_matter(system: Stack, api: Api) -> None:
    from datetime import UTC, datetime, timedelta

    from consent.keys import Keys
    from consent.unsubscribe import UnsubscribeClaim, issue

    from tools.stack import generate_secrets

    user, subject_id, _ = customer(api, marketing={"email": True})
    keys = Keys.from_secret(generate_secrets(system.var / "kaseum.env")["KASEUM_SERVICE_SECRET"].encode())
    claim = UnsubscribeClaim(subject_id, "email", "m")
    expired = issue(keys.unsubscribe, claim, datetime.now(UTC) - timedelta(minutes=1))
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    gone = api.call("POST", f"/api/v1/unsubscribe?token={expired}", data="List-Unsubscribe=One-Click", headers=form)
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "token_expired"
    assert user.call("GET", "/api/v1/me/preferences").json()["marketing"]["email"] is True
    # The person signed out (the session is revoked): the link still works, by its token alone.
    token = user.token
    assert user.call("DELETE", "/api/v1/sessions/current").status_code == 204
    valid = issue(keys.unsubscribe, claim, datetime.now(UTC) + timedelta(days=1))
    done = api.call("POST", f"/api/v1/unsubscribe?token={valid}", data="List-Unsubscribe=One-Click",
                    headers={**form, "Authorization": f"Bearer {token}"})
    assert done.status_code == 200 and done.json() == {"status": "unsubscribed", "channel": "email",
                                                       "already": False}


@pytest.mark.notice("8.1")
@pytest.mark.rule("R-MKT-4")
def test_the_preference_page_opt_out_stops_the_next_send(system: Stack, api: Api, admin: Api) -> None:
    user, _, address = customer(api, marketing={"email": True})
    put = user.call("PUT", "/api/v1/me/preferences", json={"marketing": {"email": False}})
    assert put.status_code == 200 and put.json()["marketing"]["email"] is False
    tag = f"After page {uuid.uuid4().hex[:6]}"
    campaign(admin, tag)
    service = f"Svc {uuid.uuid4().hex[:6]}"
    admin.call("POST", "/api/v1/admin/campaigns", json={"subject": service, "body": "x", "purpose": "service"})
    wait_mail(system, address, service)
    assert [m for m in mails(system, address) if m["Subject"] == tag] == []


@pytest.mark.notice("8.1", "13.1.4")
@pytest.mark.rule("R-MKT-4", "R-MKT-6")
def test_an_opt_out_by_email_to_the_dpo_recorded_by_staff_stops_the_next_send(system: Stack, api: Api,
                                                                               admin: Api) -> None:
    user, subject_id, address = customer(api, marketing={"email": True, "telephone": True})
    recorded = admin.call("POST", "/api/v1/admin/opt-outs", json={"subject_id": subject_id, "objection": True})
    assert recorded.status_code == 200, recorded.text
    assert recorded.json()["objected"] is True and recorded.json()["marketing"] == {"email": False,
                                                                                    "telephone": False}
    assert user.call("POST", "/api/v1/admin/opt-outs", json={"subject_id": subject_id}).status_code == 403
    unknown = admin.call("POST", "/api/v1/admin/opt-outs", json={"subject_id": "f" * 32})
    assert unknown.status_code == 404
    tag = f"After DPO {uuid.uuid4().hex[:6]}"
    campaign(admin, tag)
    service = f"Svc {uuid.uuid4().hex[:6]}"
    admin.call("POST", "/api/v1/admin/campaigns", json={"subject": service, "body": "x", "purpose": "service"})
    wait_mail(system, address, service)
    assert [m for m in mails(system, address) if m["Subject"] == tag] == []


@pytest.mark.notice("7", "9")
@pytest.mark.rule("R-COOKIE-1", "R-MKT-3")
def test_global_privacy_control_opts_out_of_sharing_and_marketing_cookies(api: Api) -> None:
    user, _, _ = customer(api, third_party_marketing=True)
    on = user.call("PUT", "/api/v1/me/preferences", json={"cookies": {"marketing": True, "analytics": True}})
    assert on.json()["cookies"] == {"marketing": True, "analytics": True}
    seen = user.call("GET", "/api/v1/me/preferences", headers={"Sec-GPC": "1"})
    assert seen.status_code == 200
    data = seen.json()
    assert data["gpc"] is True and data["third_party_marketing"] is False
    assert data["cookies"] == {"marketing": False, "analytics": True}  # GPC is not about analytics
    # An opt-in sent with the signal does not override it.
    again = user.call("PUT", "/api/v1/me/preferences", json={"third_party_marketing": True},
                      headers={"Sec-GPC": "1"})
    assert again.status_code == 200 and again.json()["third_party_marketing"] is False


@pytest.mark.notice("6.1", "7", "9")
@pytest.mark.rule("R-COOKIE-1", "R-MKT-3")
def test_global_privacy_control_at_sign_up_wins_over_a_third_party_opt_in(system: Stack, api: Api) -> None:
    body = signup_body(third_party_marketing=True, marketing={"email": True})
    created = api.call("POST", "/api/v1/accounts", json=body, headers={"Sec-GPC": "1"})
    assert created.status_code == 201, created.text
    user = log_in(api, body["username"])
    prefs = eventually(lambda: (r := user.call("GET", "/api/v1/me/preferences")).status_code == 200 and r.json(),
                       what="preferences")
    # Read without the signal: what was recorded at sign-up, not what this request's header did.
    assert prefs["third_party_marketing"] is False and prefs["cookies"]["marketing"] is False
    assert prefs["marketing"]["email"] is True  # GPC is not about first-party e-mail marketing
    engine = make_engine(system.database_url("consent"))
    try:
        with engine.connect() as conn:
            ledger = conn.execute(text("SELECT channel, granted, source FROM consent_ledger WHERE subject_id = :s "
                                       "ORDER BY seq"), {"s": created.json()["id"]}).all()
    finally:
        engine.dispose()
    assert ("third_party", False, "gpc") in ledger and ("cookies_marketing", False, "gpc") in ledger
    assert ("email", True, "signup_form") in ledger
    assert not any(channel == "third_party" and granted for channel, granted, _ in ledger)


def test_only_admins_send_campaigns_and_bad_campaigns_are_422(api: Api, admin: Api) -> None:
    user, _, _ = customer(api)
    assert user.call("POST", "/api/v1/admin/campaigns", json={"subject": "x", "body": "y",
                                                              "purpose": "marketing"}).status_code == 403
    bad = admin.call("POST", "/api/v1/admin/campaigns", json={"subject": "x", "body": "y", "purpose": "spam"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_purpose"


@pytest.mark.notice("6.1", "8.1")
def test_a_retried_campaign_with_the_same_idempotency_key_is_one_campaign(system: Stack, api: Api,
                                                                          admin: Api) -> None:
    _, _, address = customer(api, marketing={"email": True})
    tag = f"Once {uuid.uuid4().hex[:6]}"
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"subject": tag, "body": "Our spring offers.", "channel": "email", "purpose": "marketing"}
    first = admin.call("POST", "/api/v1/admin/campaigns", json=body, headers=key)
    again = admin.call("POST", "/api/v1/admin/campaigns", json=body, headers=key)
    assert first.status_code == again.status_code == 202, again.text
    assert set(first.json()) == {"id", "audience", "eligible", "suppressed"}  # API.md's shape
    assert again.json() == first.json() and first.json()["eligible"] >= 1
    other = admin.call("POST", "/api/v1/admin/campaigns", json={**body, "body": "Other offers."}, headers=key)
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    wait_mail(system, address, tag)  # one copy, and never a second (wait_mail fails on two)
    version = f"N-{uuid.uuid4().hex[:6]}"
    notice = {"version": version, "document": "terms", "summary": "Clearer wording."}
    published = admin.call("POST", "/api/v1/admin/notices", json=notice)
    retried = admin.call("POST", "/api/v1/admin/notices", json=notice)
    assert published.status_code == retried.status_code == 201 and retried.json() == published.json()
    assert admin.call("POST", "/api/v1/admin/notices", json={**notice, "summary": "x"}).status_code == 409


@pytest.mark.notice("6.1", "8.1")
def test_the_cli_sends_a_campaign(system: Stack, api: Api) -> None:
    _, _, address = customer(api, marketing={"email": True})
    tag = f"CLI {uuid.uuid4().hex[:6]}"
    done = cli(system, "campaigns", "send", "--subject", tag, "--body-stdin", stdin="Hello from the CLI.\n")
    assert done.returncode == 0, done.stderr
    assert "queued" in done.stdout
    [mail] = wait_mail(system, address, tag)
    assert mail["List-Unsubscribe"]


# --- notices and update notices -----------------------------------------------------------


@pytest.mark.notice("4.1.2", "8.2")
@pytest.mark.rule("R-MKT-5")
def test_a_new_notice_reaches_everyone_and_a_purpose_change_asks_for_consent_again(system: Stack, api: Api,
                                                                                 admin: Api) -> None:
    user, _, address = customer(api, marketing={"email": True})
    version = f"v{uuid.uuid4().hex[:6]}"
    published = admin.call("POST", "/api/v1/admin/notices", json={
        "version": version, "document": "privacy", "changes_purpose": True, "summary": "New partners."})
    assert published.status_code == 201, published.text
    assert published.json()["recipients"] >= 1
    wait_mail(system, address, "We have updated our privacy notice")
    prefs = eventually(lambda: (p := user.call("GET", "/api/v1/me/preferences").json())["last_notice_seen"]
                       == version and p, what="the version seen recorded")
    assert prefs["reconsent_required"] is True
    tag = f"Old consent {uuid.uuid4().hex[:6]}"
    campaign(admin, tag)
    # Asked again, the person opts in afresh under the new version.
    user.call("PUT", "/api/v1/me/preferences", json={"marketing": {"email": False}})
    fresh = user.call("PUT", "/api/v1/me/preferences", json={"marketing": {"email": True}}).json()
    assert fresh["reconsent_required"] is False and fresh["notice_version"] == version
    tag2 = f"New consent {uuid.uuid4().hex[:6]}"
    campaign(admin, tag2)
    wait_mail(system, address, tag2)
    assert [m for m in mails(system, address) if m["Subject"] == tag] == []
    assert admin.call("POST", "/api/v1/admin/notices", json={"version": version}).status_code == 409


@pytest.mark.notice("4.1.5")
def test_an_update_notice_is_service_to_holders_and_marketing_to_others(system: Stack, api: Api,
                                                                       admin: Api) -> None:
    holder, holder_id, holder_address = customer(api)  # no marketing consent
    _, _, fan = customer(api, marketing={"email": True})
    _, _, quiet = customer(api)
    product = f"prod-{uuid.uuid4().hex[:6]}"
    assert holder.call("POST", "/api/v1/tickets", json={"subject": "Help", "body": "with the product",
                                                         "product": product}).status_code == 201
    tag = f"Update {uuid.uuid4().hex[:6]}"

    def send() -> bool:
        result = admin.call("POST", "/api/v1/admin/campaigns", json={
            "subject": tag, "body": "Version 2 is out.", "purpose": "marketing", "kind": "product_update",
            "product": product})
        assert result.status_code == 202, result.text
        return True

    # The holding is learnt from tickets' event: wait until consent has it.
    eventually(lambda: admin.call("POST", "/api/v1/admin/product-holdings", json={
        "subject_id": holder_id, "product": product}).status_code == 204, what="holding recorded")
    send()
    [to_holder] = wait_mail(system, holder_address, tag)
    assert "List-Unsubscribe" not in to_holder  # service: the customer has the product
    [to_fan] = wait_mail(system, fan, tag)
    assert to_fan["List-Unsubscribe"]  # marketing, with consent
    assert [m for m in mails(system, quiet) if m["Subject"] == tag] == []


@pytest.mark.notice("8.2")
@pytest.mark.rule("R-MKT-5")
def test_a_ticket_reply_is_mailed_even_after_opting_out_and_internal_notes_are_not(system: Stack, api: Api,
                                                                                  admin: Api) -> None:
    user, _, address = customer(api, marketing={"email": True})
    user.call("PUT", "/api/v1/me/preferences", json={"marketing": {"email": False, "telephone": False}})
    name = f"agent_{uuid.uuid4().hex[:8]}"
    assert admin.call("POST", "/api/v1/admin/users", json={
        "role": "agent", "username": name, "email": f"{name}@kaseum.example", "password": PASSWORD}).status_code == 201
    agent = api.as_user(api.call("POST", "/api/v1/sessions", json={"login": name, "password": PASSWORD})
                        .json()["token"])
    ticket = user.call("POST", "/api/v1/tickets", json={"subject": "Broken", "body": "It broke."}).json()
    assert agent.call("POST", f"/api/v1/tickets/{ticket['id']}/replies",
                      json={"body": "VIP", "internal": True}).status_code == 201
    assert agent.call("POST", f"/api/v1/tickets/{ticket['id']}/replies", json={"body": "On it"}).status_code == 201
    [mail] = wait_mail(system, address, "New reply to your support ticket")
    assert ticket["id"] in mail.get_content() and "On it" not in mail.get_content()  # a pointer, not the text
    assert "List-Unsubscribe" not in mail
    # A status change by the agent is told too.
    assert agent.call("PATCH", f"/api/v1/tickets/{ticket['id']}", json={"status": "resolved"}).status_code == 200
    [update] = wait_mail(system, address, "Your support ticket was updated")
    assert ticket["id"] in update.get_content() and "List-Unsubscribe" not in update
