"""Recipients are told (Art. 19; N §5.1.1, §13.1.3): once a customer's erasure completes, the reseller whose
member read their ticket finds a notice at GET /api/v1/reseller/notices, with the customer's id and what to do,
and no ticket text; a reseller that never saw the customer finds none and cannot acknowledge it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from servicekit.testing import eventually

from tests.support.api import PASSWORD, Api, log_in, sign_up_and_log_in

ORGS = "/api/v1/admin/organisations"
NOTICES = "/api/v1/reseller/notices"


def reseller(api: Api, admin: Api, organisation: str) -> Api:
    """A reseller user of a new reseller organisation named `organisation` (made with the user)."""
    name = f"reseller_{uuid.uuid4().hex[:8]}"
    made = admin.call("POST", "/api/v1/admin/users", json={
        "role": "reseller", "username": name, "email": f"{name}@kaseum.example", "password": PASSWORD,
        "organisation": organisation})
    assert made.status_code == 201, made.text
    return log_in(api, name)


def organisation_id(admin: Api, kind: str, name: str) -> str:
    listed = admin.call("GET", ORGS, params={"kind": kind})
    assert listed.status_code == 200, listed.text
    found: str = next(o["id"] for o in listed.json()["items"] if o["name"] == name)
    return found


def notices(user: Api) -> list[dict[str, Any]]:
    listed = user.call("GET", NOTICES)
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


@pytest.mark.notice("5.1.1", "13.1.3")
@pytest.mark.rule("R-ERASE-1")
def test_a_reseller_that_read_a_customers_ticket_is_told_of_their_erasure(api: Api, admin: Api) -> None:
    tag = uuid.uuid4().hex[:8]
    company, channel, elsewhere = f"Acme {tag}", f"Channel {tag}", f"Elsewhere {tag}"
    customer, account, body = sign_up_and_log_in(api, company=company)
    seller, stranger = reseller(api, admin, channel), reseller(api, admin, elsewhere)
    linked = admin.call("POST", f"{ORGS}/{organisation_id(admin, 'reseller', channel)}/customers",
                        json={"customer_organisation_id": organisation_id(admin, "customer", company)})
    assert linked.status_code == 201, linked.text
    opened = customer.call("POST", "/api/v1/tickets", json={"subject": "Printer", "body": "It is on fire"})
    assert opened.status_code == 201, opened.text
    assert seller.call("GET", f"/api/v1/tickets/{opened.json()['id']}").status_code == 200
    assert notices(seller) == []

    filed = customer.call("POST", "/api/v1/rights-requests", json={"kind": "erasure"})
    assert filed.status_code == 202, filed.text
    # Nobody acts: rights completes the erasure in every service, then tickets tells the recipients.
    told = eventually(lambda: notices(seller), timeout=60, interval=0.5, what="the reseller's notice")
    assert len(told) == 1
    notice = told[0]
    assert (notice["subject_id"], notice["kind"], notice["request_id"], notice["acknowledged_at"]) == (
        account["id"], "erasure", filed.json()["id"], None)
    assert account["id"] in notice["message"] and "erased" in notice["message"]
    assert "Printer" not in str(notice) and "fire" not in str(notice) and body["email"] not in str(notice)
    # The customer is gone; the notice exists because tickets kept who read their ticket.
    assert seller.call("GET", f"/api/v1/tickets/{opened.json()['id']}").status_code == 404

    assert notices(stranger) == []
    path = f"{NOTICES}/{notice['id']}/acknowledge"
    assert stranger.call("POST", path).status_code == 404
    acknowledged = seller.call("POST", path)
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["acknowledged_at"] is not None
    assert [n["acknowledged_at"] for n in notices(seller)] == [acknowledged.json()["acknowledged_at"]]
