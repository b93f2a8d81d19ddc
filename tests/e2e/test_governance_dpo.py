"""Governance through the whole system: the DPO's audit trail, breach query, chain check, record of
processing and legal holds; the retention schedule for administrators; the same from `kaseum`."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from kaseum.privacy.v1 import governance_pb2, governance_pb2_grpc, personal_data_pb2, personal_data_pb2_grpc
from servicekit import caller
from servicekit.personal_data import joined
from servicekit.testing import eventually

from tests.support.api import Api, sign_up_and_log_in, staff
from tests.support.databases import count_rows
from tools.stack import Stack, generate_secrets

KASEUM = str(Path(sys.executable).parent / "kaseum")
# Every service holding personal data serves kaseum.privacy.v1.Governance: none may be missing.
WIRED = {"identity", "tickets", "rights", "consent", "analytics"}


def cli(system: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"KASEUM_ENV_FILE": str(system.var / "kaseum.env"), "PATH": "/usr/bin:/bin",
           **{f"{n.upper()}_ADDR": system.grpc_addr(n) for n in system.grpc_ports}}
    return subprocess.run([KASEUM, *args], capture_output=True, text=True, env=env, timeout=60)


def rights_metadata(system: Stack) -> tuple[tuple[str, str], ...]:
    secret = generate_secrets(system.var / "kaseum.env")["KASEUM_SERVICE_SECRET"].encode()
    return ((caller.SERVICE_HEADER, caller.mint_service_token(secret, "rights")),)


@pytest.mark.notice("11", "4.1.3")
@pytest.mark.rule("R-SEC-1")
@pytest.mark.rule("R-SEC-3")
def test_the_dpo_sees_who_read_a_ticket_and_the_breach_query_finds_exactly_those_subjects(
        system: Stack, api: Api, admin: Api, dpo: Api) -> None:
    agent, agent_id = staff(api, admin, "agent")
    start = datetime.now(UTC) - timedelta(seconds=1)
    read, read_user, _ = sign_up_and_log_in(api)
    unread, _, _ = sign_up_and_log_in(api)
    ticket = read.call("POST", "/api/v1/tickets", json={"subject": "Help", "body": "text"}).json()
    unread.call("POST", "/api/v1/tickets", json={"subject": "Other", "body": "text"})
    assert agent.call("GET", f"/api/v1/tickets/{ticket['id']}").status_code == 200
    end = datetime.now(UTC) + timedelta(seconds=1)

    trail = dpo.call("GET", "/api/v1/dpo/audit", params={"subject_id": read_user["id"]})
    assert trail.status_code == 200, trail.text
    entries = [(e["service"], e["actor_id"], e["actor_role"], e["action"], e["resource_id"])
               for e in trail.json()["items"]]
    assert ("tickets", agent_id, "agent", "ticket.read", ticket["id"]) in entries
    assert trail.json()["not_reporting"] == {}

    window = {"actor_id": agent_id, "from": start.isoformat(), "to": end.isoformat()}
    breach = dpo.call("GET", "/api/v1/dpo/accessed-subjects", params=window)
    assert breach.status_code == 200, breach.text
    assert [s["subject_id"] for s in breach.json()["subjects"]] == [read_user["id"]]

    verified = dpo.call("GET", "/api/v1/dpo/audit/verify").json()
    assert {s["service"] for s in verified["services"]} == WIRED
    assert all(s["intact"] and s["checked"] >= 1 for s in verified["services"] if s["service"] == "tickets")

    # The subject's own access export says who (by role) read their data.
    with grpc.insecure_channel(system.grpc_addr("tickets")) as channel:
        export = joined(personal_data_pb2_grpc.PersonalDataStub(channel).Export(
            personal_data_pb2.ExportRequest(subject_id=read_user["id"]), metadata=rights_metadata(system), timeout=10))
    log = next(t for t in export.tables if t.name == "access_log")
    roles = [dict(zip(log.columns, r.values, strict=True))["actor_role"] for r in log.rows]
    assert "agent" in roles and agent_id not in str(log)


@pytest.mark.rule("R-SEC-1")
def test_only_the_dpo_reads_the_trail_and_bad_windows_are_422(api: Api, admin: Api, dpo: Api) -> None:
    customer, _, _ = sign_up_and_log_in(api)
    agent, _ = staff(api, admin, "agent")
    for who in (customer, agent, admin):
        assert who.call("GET", "/api/v1/dpo/audit").status_code == 403
        assert who.call("GET", "/api/v1/dpo/ropa").status_code == 403
    assert api.call("GET", "/api/v1/dpo/audit").status_code == 401
    assert dpo.call("GET", "/api/v1/dpo/accessed-subjects", params={"from": "x", "to": "y",
                                                                    "actor_id": "a"}).status_code == 422
    assert dpo.call("GET", "/api/v1/dpo/accessed-subjects", params={
        "from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z", "actor_id": "a"}).status_code == 422
    assert dpo.call("GET", "/api/v1/dpo/audit", params={"cursor": "!!"}).status_code == 422


@pytest.mark.rule("R-SEC-1")
def test_services_refuse_governance_calls_from_customers(system: Stack, api: Api) -> None:
    customer, _, _ = sign_up_and_log_in(api)
    with grpc.insecure_channel(system.grpc_addr("tickets")) as channel:
        stub = governance_pb2_grpc.GovernanceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.QueryAudit(governance_pb2.QueryAuditRequest(), metadata=caller.person_metadata(customer.token),
                            timeout=5)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as anonymous:
            stub.GetRetentionSchedule(governance_pb2.GetRetentionScheduleRequest(), timeout=5)
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.notice("12.1")
@pytest.mark.notice("12.2")
@pytest.mark.notice("1.1", "2.1", "2.2")
@pytest.mark.rule("R-RET-1")
def test_the_retention_schedule_and_the_record_of_processing_come_from_the_services(
        system: Stack, api: Api, admin: Api, dpo: Api) -> None:
    schedule = admin.call("GET", "/api/v1/admin/retention")
    assert schedule.status_code == 200, schedule.text
    rules = {(s["service"], r["name"]): r for s in schedule.json()["services"] for r in s["rules"]}
    assert rules[("tickets", "closed_tickets")]["period_months"] == 72
    assert rules[("rights", "completed_requests")]["trigger"].startswith("completion")
    customer, _, _ = sign_up_and_log_in(api)
    assert customer.call("GET", "/api/v1/admin/retention").status_code == 403

    record = dpo.call("GET", "/api/v1/dpo/ropa").json()
    assert record["services"] == sorted(WIRED)
    stored = {c["code"] for c in record["categories"] if c["stored_in"]}
    assert {"ticket_content", "rights_requests", "legal_holds", "access_records", "3.2.1"} <= stored
    as_text = dpo.call("GET", "/api/v1/dpo/ropa.txt")
    assert as_text.headers["Content-Type"].startswith("text/plain") and "4.1.3" in as_text.text

    shown = cli(system, "retention", "show")
    assert shown.returncode == 0, shown.stderr
    assert "closed_tickets" in shown.stdout and "6 years" in shown.stdout
    assert "does not serve" not in shown.stderr  # every service answers for its own schedule
    for service in WIRED:
        assert f"{service}:" in shown.stdout, service
    assert "3.2.5" in {c["code"] for c in record["categories"] if c["stored_in"]}  # analytics' usage events
    ropa = cli(system, "ropa")
    assert ropa.returncode == 0 and "RECORD OF PROCESSING" in ropa.stdout and "5.1.2" in ropa.stdout
    # The controller and how to reach it, as the notice names them (1.1, 2.1, 2.2).
    assert "Controller: Kaseum Technology Limited" in ropa.stdout and "SC556978" in ropa.stdout
    assert "contact portal@kaseum.com" in ropa.stdout


def active_hold_in_tickets(system: Stack, hold_id: str) -> bool:
    return bool(count_rows(system, "tickets", "SELECT count(*) FROM legal_holds WHERE hold_id = :h AND "
                           "released_at IS NULL", h=hold_id))


@pytest.mark.notice("12.1")
@pytest.mark.rule("R-RET-2")
@pytest.mark.rule("R-ERASE-1")
def test_a_hold_placed_by_the_dpo_reaches_tickets_and_keeps_the_subjects_tickets_from_erasure(
        system: Stack, api: Api, dpo: Api) -> None:
    customer, user, _ = sign_up_and_log_in(api)
    ticket = customer.call("POST", "/api/v1/tickets", json={"subject": "Dispute", "body": "text"}).json()
    review = (datetime.now(UTC) + timedelta(days=90)).date().isoformat()
    placed = dpo.call("POST", "/api/v1/dpo/holds", json={"scope": "subject", "target_id": user["id"],
                                                          "reason_code": "litigation", "review_at": review})
    assert placed.status_code == 201, placed.text
    hold = placed.json()
    assert dpo.call("POST", "/api/v1/dpo/holds", json={"scope": "planet", "target_id": user["id"],
                                                        "reason_code": "litigation",
                                                        "review_at": review}).status_code == 422
    eventually(lambda: active_hold_in_tickets(system, hold["id"]), what="the hold in tickets' projection")
    with grpc.insecure_channel(system.grpc_addr("tickets")) as channel:
        erase = personal_data_pb2_grpc.PersonalDataStub(channel).Erase
        kept = erase(personal_data_pb2.EraseRequest(subject_id=user["id"]), metadata=rights_metadata(system),
                     timeout=10)
        assert kept.erased_rows == 0 and any(hold["id"] in k.reason for k in kept.kept)
        assert customer.call("GET", f"/api/v1/tickets/{ticket['id']}").status_code == 200

        released = dpo.call("POST", f"/api/v1/dpo/holds/{hold['id']}/release")
        assert released.status_code == 200 and released.json()["released_at"]
        eventually(lambda: not active_hold_in_tickets(system, hold["id"]), what="the release in tickets")
        done = erase(personal_data_pb2.EraseRequest(subject_id=user["id"]), metadata=rights_metadata(system),
                     timeout=10)
        assert done.erased_rows == 1
    trail = dpo.call("GET", "/api/v1/dpo/audit", params={"subject_id": user["id"]}).json()["items"]
    assert [e["action"] for e in trail if e["service"] == "rights"][:2] == ["hold.placed", "hold.released"]
    listed = cli(system, "holds", "list", "--all", "--target", user["id"])
    assert listed.returncode == 0 and hold["id"] in listed.stdout and "released" in listed.stdout
