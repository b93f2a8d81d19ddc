"""Tokens through the gateway: refresh, reset and verification links, forged and expired tokens."""

from __future__ import annotations

import time

import grpc
import jwt
import pytest
from identity.tokens import TokenSigner, generate_private_pem
from kaseum.identity.v1 import identity_pb2, identity_pb2_grpc
from servicekit import caller

from tests.support.api import PASSWORD, Api, sign_up_and_log_in, signup_body
from tools.stack import Stack, generate_secrets


def claim(system: Stack, address: str, kind: str) -> str:
    """The link's token from the message consent sent for `kind` (consent claims it at send time and
    mails it; the local SMTP sink writes each message to var/mail/*.eml)."""
    from tests.e2e.test_consent_mail import link_token, wait_mail

    subjects = {"reset_password": "Reset your password", "verify_email": "Confirm your e-mail address"}
    [mail] = wait_mail(system, address, subjects[kind])
    return link_token(mail)


@pytest.mark.rule("R-SEC-2")
def test_login_gives_a_refresh_token_that_rotates(api: Api) -> None:
    body = signup_body()
    assert api.call("POST", "/api/v1/accounts", json=body).status_code == 201
    login = api.call("POST", "/api/v1/sessions", json={"login": body["username"], "password": PASSWORD,
                                                       "time_zone": "Europe/London"}).json()
    assert set(login) == {"token", "expires_at", "refresh_token", "refresh_expires_at"}
    renewed = api.call("POST", "/api/v1/sessions/refresh", json={"refresh_token": login["refresh_token"]})
    assert renewed.status_code == 200
    assert api.as_user(renewed.json()["token"]).call("GET", "/api/v1/me").status_code == 200
    replay = api.call("POST", "/api/v1/sessions/refresh", json={"refresh_token": login["refresh_token"]})
    assert replay.status_code == 401


@pytest.mark.rule("R-SEC-2")
def test_a_token_signed_by_another_key_or_expired_is_401(system: Stack, api: Api) -> None:
    user, created, _ = sign_up_and_log_in(api)
    claims = jwt.decode(user.token, options={"verify_signature": False})
    stranger = TokenSigner(generate_private_pem(), 600)
    forged, _ = stranger.sign(created["id"], "admin", "uk", claims["sid"])
    assert api.as_user(forged).call("GET", "/api/v1/me").status_code == 401
    real = TokenSigner(generate_secrets(system.var / "kaseum.env")["IDENTITY_SIGNING_KEY"], -5)
    expired, _ = real.sign(created["id"], "customer", "uk", claims["sid"])
    assert api.as_user(expired).call("GET", "/api/v1/me").status_code == 401
    assert claims["exp"] - time.time() <= 15 * 60 + 5  # access tokens are short-lived


@pytest.mark.rule("R-SEC-2")
def test_password_reset_by_link_through_the_api(system: Stack, api: Api) -> None:
    user, _, body = sign_up_and_log_in(api)
    unknown = api.call("POST", "/api/v1/password-resets", json={"email": "nobody-at-all@example.com"})
    known = api.call("POST", "/api/v1/password-resets", json={"email": body["email"]})
    assert (unknown.status_code, unknown.json()) == (known.status_code, known.json()) == (202, {"status": "accepted"})
    token = claim(system, body["email"], "reset_password")
    bad = api.call("POST", "/api/v1/password-resets/confirm", json={"token": token + "x", "new_password": "x" * 20})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_token"
    done = api.call("POST", "/api/v1/password-resets/confirm",
                    json={"token": token, "new_password": "a brand new passphrase"})
    assert done.status_code == 204
    assert user.call("GET", "/api/v1/me").status_code == 401  # every session ended
    again = api.call("POST", "/api/v1/password-resets/confirm",
                     json={"token": token, "new_password": "another new passphrase"})
    assert again.status_code == 422


@pytest.mark.notice("3.2.2")
def test_email_verification_by_link_through_the_api(system: Stack, api: Api) -> None:
    user, _, body = sign_up_and_log_in(api)
    assert user.call("GET", "/api/v1/me").json()["email_verified"] is False
    token = claim(system, body["email"], "verify_email")
    assert api.call("POST", "/api/v1/email-verifications/confirm", json={"token": token}).status_code == 204
    assert user.call("GET", "/api/v1/me").json()["email_verified"] is True
    assert user.call("POST", "/api/v1/me/email-verification").status_code == 409  # already verified


@pytest.mark.rule("R-SEC-1")
def test_only_the_sending_service_may_claim_a_token(system: Stack, api: Api) -> None:
    user, _, _ = sign_up_and_log_in(api)
    with grpc.insecure_channel(system.grpc_addr("identity")) as channel:
        stub = identity_pb2_grpc.IdentityStub(channel)
        with pytest.raises(grpc.RpcError) as person:
            stub.ClaimMessageToken(identity_pb2.ClaimMessageTokenRequest(token_id="x"),
                                   metadata=caller.person_metadata(user.token), timeout=5)
    assert person.value.code() == grpc.StatusCode.PERMISSION_DENIED
