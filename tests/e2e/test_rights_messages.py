"""What the subject of a rights request is told, through the whole system: rights publishes, consent
queues one service message per event, fetches the address from identity (and a DPO-filed request's
one-time code from rights) at send time, and the mail lands in the sink's var/mail/*.eml."""

from __future__ import annotations

import email
import email.policy
import re
import uuid
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import pytest
from servicekit.testing import eventually

from tests.support.api import Api, sign_up_and_log_in
from tools.stack import Stack


def wait_mail(stack: Stack, to: str, subject: str) -> EmailMessage:
    """The one mail with that subject to that address (a second copy fails the test)."""

    def probe() -> list[EmailMessage]:
        found = []
        for path in sorted(stack.mail_dir.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if message["To"] == to and message["Subject"] == subject:
                found.append(message)
        assert len(found) <= 1, f"{len(found)} copies of {subject!r}"
        return found  # type: ignore[return-value]

    [mail] = eventually(probe, timeout=60, interval=0.3, what=f"{subject!r} to {to}")
    return mail


def status_of(customer: Api, request_id: str) -> dict[str, Any]:
    got = customer.call("GET", f"/api/v1/rights-requests/{request_id}")
    assert got.status_code == 200, got.text
    body: dict[str, Any] = got.json()
    return body


def file_on_behalf(dpo: Api, address: str, kind: str) -> dict[str, Any]:
    filed = dpo.call("POST", "/api/v1/dpo/rights-requests", json={"email": address, "kind": kind,
                                                                   "details": "sent to portal@kaseum.com"})
    assert filed.status_code == 202, filed.text
    assert filed.json()["status"] == "verifying"
    body: dict[str, Any] = filed.json()
    return body


@pytest.mark.notice("8.2")
@pytest.mark.notice("13.1.1")
@pytest.mark.rule("R-ACCESS-1")
def test_a_portal_access_request_ends_with_a_completed_mail_pointing_to_the_download(
        system: Stack, api: Api) -> None:
    # No marketing agreed at sign-up (the default): service messages come all the same.
    customer, _, body = sign_up_and_log_in(api)
    filed = customer.call("POST", "/api/v1/rights-requests", json={"kind": "access", "details": "all of it"})
    assert filed.status_code == 202, filed.text
    request_id = filed.json()["id"]
    mail = wait_mail(system, body["email"], "Your request is complete")
    text = mail.get_content()
    assert status_of(customer, request_id)["status"] == "completed"
    assert f"/api/v1/rights-requests/{request_id}/export" in text and "7 days" in text
    assert "List-Unsubscribe" not in mail  # a service message
    assert customer.call("GET", f"/api/v1/rights-requests/{request_id}/export").status_code == 200


@pytest.mark.notice("13.2")
@pytest.mark.rule("R-RIGHTS-2")
def test_an_extension_mail_gives_the_new_due_date_and_not_the_dpos_reason(
        system: Stack, api: Api, dpo: Api) -> None:
    customer, _, body = sign_up_and_log_in(api)
    # A request filed by the DPO waits for the subject's code, so it is still open when extended.
    request = file_on_behalf(dpo, body["email"], "erasure")
    reason = f"linked to complaint {uuid.uuid4().hex[:8]} under review"
    extended = dpo.call("POST", f"/api/v1/rights-requests/{request['id']}/extend",
                        json={"months": 2, "reason": reason})
    assert extended.status_code == 200, extended.text
    due = datetime.fromisoformat(extended.json()["due_at"])
    assert due > datetime.fromisoformat(request["due_at"])
    mail = wait_mail(system, body["email"], "We need more time for your request")
    text = mail.get_content()
    assert f"{due:%d %B %Y}" in text and request["id"] in text
    assert reason not in text and "complaint" not in text  # the reason is read in the portal, signed in
    assert status_of(customer, request["id"])["extension_reason"] == reason


@pytest.mark.notice("13.2")
@pytest.mark.rule("R-RIGHTS-1")
def test_a_dpo_filed_request_starts_once_the_dpo_enters_the_code_mailed_to_the_account(
        system: Stack, api: Api, dpo: Api) -> None:
    customer, _, body = sign_up_and_log_in(api)
    request = file_on_behalf(dpo, body["email"], "access")
    mail = wait_mail(system, body["email"], "Confirm your request")
    found = re.search(r"one-time code:\s+(\d+)", mail.get_content())
    assert found, mail.get_content()
    code = found.group(1)
    wrong = "0" * len(code) if code != "0" * len(code) else "1" * len(code)
    refused = dpo.call("POST", f"/api/v1/rights-requests/{request['id']}/verify", json={"code": wrong})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_code"
    assert status_of(customer, request["id"])["status"] == "verifying"
    verified = dpo.call("POST", f"/api/v1/rights-requests/{request['id']}/verify", json={"code": code})
    assert verified.status_code == 200, verified.text
    assert verified.json()["status"] == "in_progress"
    wait_mail(system, body["email"], "Your request is complete")
