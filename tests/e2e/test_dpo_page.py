"""The DPO's page (/dpo): the record of processing and the queue of rights requests, for the DPO only (issue 4)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from gateway.api.dpo_page import queue

from tests.support.api import Api, sign_up_and_log_in, staff

CONTENT = "/api/v1/dpo/page.html"


@pytest.mark.notice("11")
@pytest.mark.rule("R-SEC-1")
def test_the_page_is_the_gateways_own_files_and_its_content_is_for_the_dpo_only(api: Api, admin: Api) -> None:
    page = api.call("GET", "/dpo")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["Content-Security-Policy"]
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(a.startswith("/static/dpo/") for a in assets)
    assert all(api.call("GET", a).status_code == 200 for a in assets)
    assert "Controller:" not in page.text  # the page itself holds no data
    assert api.call("GET", CONTENT).status_code == 401
    customer, _, _ = sign_up_and_log_in(api)
    agent, _ = staff(api, admin, "agent")
    for who in (customer, agent, admin):
        refused = who.call("GET", CONTENT)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"


@pytest.mark.notice("13.2")
@pytest.mark.rule("R-SEC-1")
def test_the_dpo_sees_the_record_of_processing_and_the_open_requests_by_due_date(api: Api, dpo: Api) -> None:
    _, _, body = sign_up_and_log_in(api)
    address = body["email"]
    # A request by post: it waits for the subject to verify it, so it stays in the queue.
    filed = dpo.call("POST", "/api/v1/dpo/rights-requests", json={"email": address, "kind": "access",
                                                                  "details": "by post"})
    assert filed.status_code == 202 and filed.json()["status"] == "verifying", filed.text
    content = dpo.call("GET", CONTENT)
    assert content.status_code == 200 and content.headers["Content-Type"].startswith("text/html")
    assert "<script" not in content.text and address not in content.text
    queued = re.findall(r'data-request="([0-9a-f]+)"', content.text)
    assert filed.json()["id"] in queued
    shown = html.unescape(re.sub(r"<[^>]+>", "", content.text))
    record = dpo.call("GET", "/api/v1/dpo/ropa").json()
    assert record["services"] == ["analytics", "consent", "identity", "rights", "tickets"]
    # The same record as GET /api/v1/dpo/ropa: every purpose, category, recipient and retention rule.
    for text in ([p["text"] for p in record["purposes"]] + [c["name"] for c in record["categories"]]
                 + [r["text"] for r in record["recipients"]] + [r["what"] for r in record["retention"]["rules"]]
                 + [record["controller"]["name"], record["transfers"]["adequacy_as_of"]]):
        assert text in shown, text
    for c in record["categories"]:
        for s in c["stored_in"]:
            assert f"{s['service']}.{s['table']}: {', '.join(s['columns'])}" in shown


@pytest.mark.notice("13.2")
def test_the_queue_puts_overdue_requests_first_then_by_due_date_and_marks_those_due_soon() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def request(rid: str, due: timedelta) -> dict[str, str]:
        return {"id": rid, "due_at": (now + due).isoformat().replace("+00:00", "Z")}

    rows = queue([request("later", timedelta(days=20)), request("soon", timedelta(days=6)),
                  request("late", timedelta(days=-1)), request("latest", timedelta(hours=-1)),
                  request("week", timedelta(days=7, minutes=1))], now)
    assert [(r["id"], r["overdue"], r["due_soon"]) for r in rows] == [
        ("late", True, False), ("latest", True, False), ("soon", False, True), ("week", False, False),
        ("later", False, False)]
