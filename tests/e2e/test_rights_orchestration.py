"""Rights requests through the whole system: a portal request completes with no staff action across
every service, each step applied once, through outages of the others and a restart of rights itself;
the access ZIP; the DPO's retry, extension and refusal; who may see what."""

from __future__ import annotations

import csv
import http.server
import io
import json
import shutil
import sqlite3
import ssl
import subprocess
import threading
import uuid
import zipfile
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from rights.plans import HOLDERS
from servicekit.testing import eventually

from tests.support import jetstream
from tests.support.api import PASSWORD, Api, sign_up_and_log_in, staff
from tests.support.databases import count_rows
from tools.stack import Stack

from .conftest import KASEUM

STREAM = "KASEUM_UK"


def file(customer: Api, kind: str, **body: Any) -> dict[str, Any]:
    response = customer.call("POST", "/api/v1/rights-requests", json={"kind": kind, **body})
    assert response.status_code == 202, response.text
    filed: dict[str, Any] = response.json()
    return filed


def finished(customer: Api, request_id: str, timeout: float = 60) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        got = customer.call("GET", f"/api/v1/rights-requests/{request_id}")
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        return body if body["status"] in ("completed", "refused") else None

    return eventually(probe, timeout=timeout, interval=0.3, what=f"request {request_id} to complete")


def open_ticket(customer: Api, subject: str, body: str) -> str:
    created = customer.call("POST", "/api/v1/tickets", json={"subject": subject, "body": body})
    assert created.status_code == 201, created.text
    ticket_id: str = created.json()["id"]
    return ticket_id


@pytest.mark.notice("13.1.1")
@pytest.mark.rule("R-ACCESS-1")
@pytest.mark.rule("R-RIGHTS-1")
def test_an_access_request_completes_with_no_staff_action_and_the_zip_holds_everything_and_no_one_else(
        system: Stack, api: Api) -> None:
    tag = uuid.uuid4().hex[:8]
    customer, account, body = sign_up_and_log_in(api, first_name=f"Zelda{tag}", job_title=f"Cartographer{tag}")
    open_ticket(customer, f"Printer {tag} jammed", f"The printer in room {tag}-B eats paper")
    other, _, other_body = sign_up_and_log_in(api, first_name=f"Other{tag}")
    open_ticket(other, f"Other {tag} subject", f"Someone else's words {tag}-X")

    filed = file(customer, "access", details="everything you hold")
    assert filed["status"] == "in_progress" and filed["due_at"] > filed["received_at"]
    done = finished(customer, filed["id"])
    assert done["status"] == "completed"
    assert {s["service"] for s in done["steps"]} == {"identity", "tickets", "consent", "analytics", "rights"}
    assert all(s["status"] == "done" and s["attempts"] == 1 for s in done["steps"])
    assert done["export_url"] == f"/api/v1/rights-requests/{filed['id']}/export" and done["export_expires_at"]

    documented = api.call("GET", "/api/openapi.json").json()["paths"]
    assert "get" in documented["/api/v1/rights-requests/{request_id}/export"]
    zipped = customer.call("GET", done["export_url"])
    assert zipped.status_code == 200 and zipped.headers["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(zipped.content))
    names = set(archive.namelist())
    assert {"data.json", "report.html", "identity/accounts.csv", "tickets/tickets.csv"} <= names
    data = archive.read("data.json").decode()
    for planted in (body["first_name"], body["job_title"], body["email"], body["username"], body["company"],
                    f"Printer {tag} jammed", f"room {tag}-B"):
        assert planted in data, planted
    everything = b"".join(archive.read(n) for n in names).decode()
    for foreign in (other_body["first_name"], other_body["email"], f"Other {tag} subject", f"{tag}-X"):
        assert foreign not in everything, foreign
    parsed = json.loads(data)
    assert parsed["request"]["id"] == filed["id"]
    [row] = list(csv.DictReader(io.StringIO(archive.read("identity/accounts.csv").decode())))
    assert row["id"] == account["id"] and row["email"] == body["email"]
    report = archive.read("report.html").decode()
    for must_say in ("lawful basis", "Who receives it", "How long we keep it", "Where it came from",
                     "Your rights", "ico.org.uk", "international transfers"):
        assert must_say.lower() in report.lower(), must_say


@pytest.mark.notice("13.1.1")
@pytest.mark.rule("R-SEC-1")
def test_no_one_else_reads_the_request_or_its_export(system: Stack, api: Api, admin: Api, dpo: Api) -> None:
    customer, _, _ = sign_up_and_log_in(api)
    filed = file(customer, "access")
    finished(customer, filed["id"])
    path = f"/api/v1/rights-requests/{filed['id']}"
    other, _, _ = sign_up_and_log_in(api)
    assert other.call("GET", path).status_code == 404
    assert other.call("GET", path + "/export").status_code == 404
    for role in ("agent", "analyst"):
        person, _ = staff(api, admin, role)
        assert person.call("GET", path).status_code == 403, role
        assert person.call("GET", path + "/export").status_code == 403, role
    # The DPO follows the request but does not download the subject's data.
    assert dpo.call("GET", path).status_code == 200
    assert dpo.call("GET", path + "/export").status_code == 403
    assert api.call("GET", path + "/export").status_code == 401


@pytest.mark.notice("13.1.3")
@pytest.mark.rule("R-ERASE-1")
def test_an_erasure_completes_everywhere_and_identity_goes_last(system: Stack, api: Api) -> None:
    customer, account, body = sign_up_and_log_in(api)
    open_ticket(customer, "Please forget me", "all of it")
    filed = file(customer, "erasure")
    # The subject's own session ends with the account, so the request is followed through the DPO's
    # view in the database: rights keeps the request as evidence.
    eventually(lambda: count_rows(system, "rights", "SELECT count(*) FROM rights_requests WHERE id = :i AND "
                                  "status = 'completed'", i=filed["id"]) == 1, timeout=60, what="erasure")
    assert count_rows(system, "identity", "SELECT count(*) FROM accounts WHERE id = :i", i=account["id"]) == 0
    assert count_rows(system, "tickets", "SELECT count(*) FROM tickets WHERE requester_id = :i",
                      i=account["id"]) == 0
    assert count_rows(system, "rights", "SELECT count(*) FROM erasure_ledger WHERE subject_id = :i",
                      i=account["id"]) == 1
    login = api.call("POST", "/api/v1/sessions", json={"login": body["username"], "password": PASSWORD})
    assert login.status_code == 401


@pytest.mark.notice("13.1.2")
@pytest.mark.rule("R-RIGHTS-1")
def test_a_rectification_corrects_identity_and_bad_fields_are_refused(system: Stack, api: Api) -> None:
    customer, _, _ = sign_up_and_log_in(api)
    done = finished(customer, file(customer, "rectification", corrections={"last_name": "Byron"})["id"])
    assert done["status"] == "completed"
    assert customer.call("GET", "/api/v1/me").json()["last_name"] == "Byron"
    refused = customer.call("POST", "/api/v1/rights-requests",
                            json={"kind": "rectification", "corrections": {"password_hash": "x"}})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_corrections"


@pytest.mark.notice("13.1.4")
@pytest.mark.rule("R-MKT-6")
def test_an_objection_to_direct_marketing_stops_it_at_once(system: Stack, api: Api) -> None:
    customer, _, _ = sign_up_and_log_in(api, marketing={"email": True, "telephone": True})
    eventually(lambda: customer.call("GET", "/api/v1/me/preferences").status_code == 200, what="preferences")
    done = finished(customer, file(customer, "objection", purpose="all")["id"])
    assert {(s["service"], s["operation"]) for s in done["steps"]} == {("consent", "object"),
                                                                       ("analytics", "notify")}
    prefs = customer.call("GET", "/api/v1/me/preferences").json()
    assert prefs["objected"] is True and prefs["marketing"] == {"email": False, "telephone": False}
    bad = customer.call("POST", "/api/v1/rights-requests", json={"kind": "objection", "purpose": "everything"})
    assert bad.status_code == 422


@pytest.mark.notice("13.3")
@pytest.mark.rule("R-RIGHTS-2")
def test_the_dpo_extends_once_and_refuses_with_a_reason_the_subject_sees(
        system: Stack, api: Api, dpo: Api) -> None:
    customer, _, _ = sign_up_and_log_in(api)
    filed = file(customer, "access")
    path = f"/api/v1/rights-requests/{filed['id']}"
    assert customer.call("POST", path + "/extend", json={"months": 2, "reason": "complex"}).status_code == 403
    assert dpo.call("POST", path + "/extend", json={"months": 3, "reason": "x"}).status_code == 422
    other, _, _ = sign_up_and_log_in(api)
    second = file(other, "erasure")
    second_path = f"/api/v1/rights-requests/{second['id']}"
    extended = dpo.call("POST", second_path + "/extend", json={"months": 2, "reason": "many related requests"})
    if extended.status_code == 409:  # the erasure finished first: extending a closed request is refused
        assert extended.json()["error"]["code"] == "request_closed"
    else:
        assert extended.status_code == 200, extended.text
        assert extended.json()["extension_reason"] == "many related requests"
        assert extended.json()["due_at"] > second["due_at"]
        again = dpo.call("POST", second_path + "/extend", json={"months": 1, "reason": "more"})
        assert again.status_code == 409
    third, _, _ = sign_up_and_log_in(api)
    request = file(third, "portability")
    refused = dpo.call("POST", f"/api/v1/rights-requests/{request['id']}/refuse",
                       json={"reason": "the same request was answered yesterday"})
    if refused.status_code == 200:
        seen = third.call("GET", f"/api/v1/rights-requests/{request['id']}").json()
        assert seen["status"] == "refused" and seen["refusal_reason"] == "the same request was answered yesterday"
        assert "ico.org.uk" in seen["complaint"]
    else:  # it completed before the DPO acted
        assert refused.status_code == 409
    assert finished(customer, filed["id"])["status"] == "completed"


@pytest.mark.notice("13.2")
@pytest.mark.rule("R-RIGHTS-1")
def test_a_service_down_and_rights_restarted_mid_request_still_complete_each_step_once(make_stack: Any) -> None:
    stack: Stack = make_stack(ORCHESTRATOR_INTERVAL_SECONDS="0.2")
    stack.start()
    api = Api(stack.gateway_url)
    customer, account, _ = sign_up_and_log_in(api)
    open_ticket(customer, "Before the outage", "words")
    stack.stop_process("tickets")
    filed = file(customer, "erasure")

    def tickets_failing() -> bool:
        got = customer.call("GET", f"/api/v1/rights-requests/{filed['id']}")
        [step] = [s for s in got.json()["steps"] if s["service"] == "tickets"]
        return step["status"] == "pending" and step["attempts"] >= 1 and step["error"] is not None

    eventually(tickets_failing, timeout=30, what="the tickets step to fail and wait")
    # Identity (phase 2) has not run while tickets is down: the subject can still follow the request.
    assert count_rows(stack, "identity", "SELECT count(*) FROM accounts WHERE id = :i", i=account["id"]) == 1
    stack.stop_process("rights")
    stack.start_service("tickets")
    stack.wait_serving("tickets")
    stack.start_service("rights")
    stack.wait_serving("rights")
    eventually(lambda: count_rows(stack, "rights", "SELECT count(*) FROM rights_requests WHERE id = :i AND "
                                  "status = 'completed'", i=filed["id"]) == 1, timeout=90, what="completion")
    assert count_rows(stack, "tickets", "SELECT count(*) FROM tickets WHERE requester_id = :i", i=account["id"]) == 0
    # Each effect once: one account.erased event, one completion event.
    eventually(lambda: jetstream.count(stack.nats_url, STREAM, "uk.identity.account.erased") == 1,
               what="the erasure event")
    assert jetstream.count(stack.nats_url, STREAM, "uk.rights.request.completed") == 1
    assert count_rows(stack, "rights", "SELECT count(*) FROM request_steps WHERE request_id = :i AND "
                      "status = 'done'", i=filed["id"]) == 5


def files_holding(root: Path, needles: list[bytes], skip: tuple[str, ...]) -> dict[str, list[str]]:
    """Every file under `root` (but the skipped folders) that holds one of `needles`, and which."""
    found: dict[str, list[str]] = {}
    for path in root.rglob("*"):
        if not path.is_file() or any(part in skip for part in path.relative_to(root).parts):
            continue
        data = path.read_bytes()
        hits = [n.decode() for n in needles if n in data]
        if hits:
            found[str(path.relative_to(root))] = hits
    return found


@pytest.mark.notice("13.1.3")
@pytest.mark.rule("R-ERASE-1")
def test_after_an_erasure_no_file_of_the_deployment_holds_the_subjects_values(
        make_stack: Any, tmp_path: Path) -> None:
    # The embedded deployment (make run): SQLite files, the JetStream store and the logs, all under var/.
    stack = sqlite_stack(make_stack, tmp_path, SCRUB_INTERVAL_SECONDS="0.5")
    var = stack.var
    api = Api(stack.gateway_url)
    tag = uuid.uuid4().hex[:10]
    planted = {"first_name": f"Quentin{tag}", "last_name": f"Zebedee{tag}", "job_title": f"Lamplighter{tag}",
               "email": f"q{tag}@example.com", "username": f"quentin_{tag}"}
    customer, _, _ = sign_up_and_log_in(api, **planted, marketing={"email": True})
    ticket = open_ticket(customer, f"Lantern{tag} flickers", f"My lantern {tag}-glow flickers at dusk")
    assert customer.call("POST", f"/api/v1/tickets/{ticket}/replies",
                         json={"body": f"Still {tag}-dim today"}).status_code == 201
    # An access export first: its copy of everything must go with the erasure too.
    finished(customer, file(customer, "access")["id"])
    needles = [v.encode() for v in (*planted.values(), f"Lantern{tag}", f"{tag}-glow", f"{tag}-dim")]
    assert files_holding(var, needles, ("mail",)), "the planted values were stored somewhere first"

    filed = file(customer, "erasure")
    eventually(lambda: count_rows(stack, "rights", "SELECT count(*) FROM rights_requests WHERE id = :i AND "
                                  "status = 'completed'", i=filed["id"]) == 1, timeout=60, what="erasure")
    # var/mail is the SMTP sink standing in for the subject's own mailbox (mail already delivered).
    eventually(lambda: not files_holding(var, needles, ("mail",)), timeout=30, interval=0.5,
               what=f"no file to hold the subject's values: {files_holding(var, needles, ('mail',))}")


def sqlite_stack(make_stack: Any, tmp_path: Path, **env: str) -> Stack:
    """A stack on SQLite files under var/ (the embedded deployment), whatever the test run's default."""
    var = tmp_path / "stack0"
    stack: Stack = make_stack(ORCHESTRATOR_INTERVAL_SECONDS="0.2", **env,
                              **{f"DATABASE_URL_{s.upper()}": f"sqlite:///{var}/{s}.db" for s in HOLDERS})
    assert stack.var == var
    stack.start()
    return stack


@pytest.mark.notice("13.1.3")
@pytest.mark.rule("R-ERASE-1")
def test_a_restored_backup_does_not_bring_an_erased_subject_back_after_the_ledger_is_replayed(
        make_stack: Any, tmp_path: Path) -> None:
    stack = sqlite_stack(make_stack, tmp_path)
    api = Api(stack.gateway_url)
    erased, gone, _ = sign_up_and_log_in(api)
    open_ticket(erased, "Before the backup", "kept in the backup")
    _, kept, _ = sign_up_and_log_in(api)
    backups = tmp_path / "backups"
    backups.mkdir()
    for service in ("identity", "tickets"):  # an online backup, as an operator's nightly job takes it
        # Closed at once: a connection left open would keep the old WAL index mapped in this process.
        with closing(sqlite3.connect(stack.var / f"{service}.db")) as source, \
                closing(sqlite3.connect(backups / f"{service}.db")) as target:
            source.backup(target)
    request = file(erased, "erasure")
    eventually(lambda: count_rows(stack, "rights", "SELECT count(*) FROM rights_requests WHERE id = :i AND "
                                  "status = 'completed'", i=request["id"]) == 1, timeout=60, what="erasure")
    accounts = "SELECT count(*) FROM accounts WHERE id = :i"
    assert count_rows(stack, "identity", accounts, i=gone["id"]) == 0

    for service in ("identity", "tickets"):  # the restore
        stack.stop_process(service)
        for suffix in ("-wal", "-shm"):
            (stack.var / f"{service}.db{suffix}").unlink(missing_ok=True)
        shutil.copy(backups / f"{service}.db", stack.var / f"{service}.db")
        stack.start_service(service)
        stack.wait_serving(service)
    assert count_rows(stack, "identity", accounts, i=gone["id"]) == 1  # back from the backup
    restored_tickets = "SELECT count(*) FROM tickets WHERE requester_id = :i"
    assert count_rows(stack, "tickets", restored_tickets, i=gone["id"]) == 1, "the ticket came back too"

    replay = subprocess.run([KASEUM, "erasures", "replay"], capture_output=True, text=True, timeout=120,
                            env={"KASEUM_ENV_FILE": str(stack.var / "kaseum.env"), "PATH": "/usr/bin:/bin",
                                 **{f"{n.upper()}_ADDR": stack.grpc_addr(n) for n in stack.grpc_ports}})
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout.startswith("replayed 1 erasures"), replay.stdout
    assert count_rows(stack, "identity", accounts, i=gone["id"]) == 0
    assert count_rows(stack, "tickets", restored_tickets, i=gone["id"]) == 0, replay.stdout
    assert count_rows(stack, "identity", accounts, i=kept["id"]) == 1


class _Receiver(http.server.BaseHTTPRequestHandler):
    """Another controller's endpoint: keeps each ZIP it is sent (chunked, as the portal sends it)."""

    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        body = b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).received.append(body)
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "controller.pem", folder / "controller.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@pytest.mark.notice("13.1.6")
@pytest.mark.notice("10.2.1")
@pytest.mark.notice("10.2.2")
@pytest.mark.rule("R-PORT-1")
@pytest.mark.rule("R-XFER-1")
def test_portability_sends_what_the_subject_provided_to_another_controller_where_the_transfer_is_allowed(
        make_stack: Any, tmp_path: Path) -> None:
    cert_file, key_file = self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_file, key_file)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.received.clear()
    url = f"https://localhost:{server.server_address[1]}/import?from=kaseum"
    try:
        stack: Stack = make_stack(ORCHESTRATOR_INTERVAL_SECONDS="0.2", PORTABILITY_CA_FILE=str(cert_file))
        stack.start()
        api = Api(stack.gateway_url)
        customer, account, body = sign_up_and_log_in(api)
        open_ticket(customer, "Moving house", "to a new provider")
        bad = customer.call("POST", "/api/v1/rights-requests", json={
            "kind": "portability", "destination_url": "http://localhost/x", "destination_country": "GB"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_destination"
        done = finished(customer, file(customer, "portability", destination_url=url, destination_country="GB")["id"])
        [push] = [s for s in done["steps"] if s["operation"] == "push"]
        assert push["status"] == "done" and push["outcome"].startswith("sent "), push
        assert done["destination"] == {"host": "localhost", "country": "GB"}
        [sent] = _Receiver.received
        archive = zipfile.ZipFile(io.BytesIO(sent))
        names = set(archive.namelist())
        assert "identity/accounts.csv" in names and "tickets/tickets.csv" in names
        assert "report.html" not in names and not any(n.startswith(("rights/", "analytics/")) for n in names)
        assert not any(n.endswith("/access_log.csv") for n in names)  # others' records about them: not theirs
        data = archive.read("data.json").decode()
        assert body["email"] in data and "to a new provider" in data

        other, other_account, _ = sign_up_and_log_in(api)
        refused = finished(other, file(other, "portability", destination_url=url, destination_country="CN")["id"])
        [push] = [s for s in refused["steps"] if s["operation"] == "push"]
        assert push["status"] == "done" and "transfer refused" in push["outcome"] and push["kept"], push
        assert len(_Receiver.received) == 1  # nothing left the country
        assert count_rows(stack, "rights", "SELECT count(*) FROM transfer_log WHERE subject_id = :i AND "
                          "destination_country = 'CN' AND NOT allowed", i=other_account["id"]) == 1
        assert count_rows(stack, "rights", "SELECT count(*) FROM transfer_log WHERE subject_id = :i AND "
                          "allowed", i=account["id"]) == 1
    finally:
        server.shutdown()


RIGHTS_POSTS = [  # every JSON route of the rights API a person posts to, with a body of the right shape
    ("/api/v1/rights-requests", {"kind": "access"}),
    ("/api/v1/dpo/rights-requests", {"email": "nobody@example.com", "kind": "access"}),
    ("/api/v1/rights-requests/{id}/verify", {"code": "123456"}),
    ("/api/v1/rights-requests/{id}/extend", {"months": 1, "reason": "complex"}),
    ("/api/v1/rights-requests/{id}/refuse", {"reason": "excessive"}),
    ("/api/v1/rights-requests/{id}/clock", {"stop": True}),
]
WRONG_TYPES = {"kind": 5, "email": 5, "code": 5, "months": "one", "reason": 5, "stop": "yes"}


@pytest.mark.notice("13.2")
@pytest.mark.rule("R-RIGHTS-1")
def test_rights_routes_answer_bad_input_and_unknown_or_foreign_ids_with_the_error_shape(
        system: Stack, api: Api, dpo: Api) -> None:
    customer, _, _ = sign_up_and_log_in(api)
    unknown = "0" * 32
    for path, body in RIGHTS_POSTS:
        target = path.format(id=unknown)
        caller = dpo if "dpo" in path or "{id}" in path else customer
        malformed = caller.call("POST", target, data="{not json", headers={"Content-Type": "application/json"})
        assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "malformed", path
        wrong = {k: WRONG_TYPES.get(k, v) for k, v in body.items()}
        typed = caller.call("POST", target, json=wrong)
        assert typed.status_code == 422 and typed.json()["error"]["code"] == "invalid", (path, typed.text)
        if "{id}" in path:
            assert caller.call("POST", target, json=body).status_code == 404, path
    # The export is the requester's alone (the DPO's role is refused before any id is looked at).
    for suffix, expected in (("/retry", 404), ("/lift-restriction", 404), ("", 404), ("/export", 403)):
        method = "GET" if suffix in ("/export", "") else "POST"
        assert dpo.call(method, f"/api/v1/rights-requests/{unknown}{suffix}").status_code == expected, suffix
    # Someone else's request answers exactly like a missing one.
    mine = file(customer, "access")
    other, _, _ = sign_up_and_log_in(api)
    for suffix in ("", "/export"):
        theirs = other.call("GET", f"/api/v1/rights-requests/{mine['id']}{suffix}")
        missing = other.call("GET", f"/api/v1/rights-requests/{unknown}{suffix}")
        assert (theirs.status_code, theirs.json()) == (missing.status_code, missing.json()) == (404, theirs.json())


@pytest.mark.notice("13.2")
def test_rights_down_is_503_with_retry_after_and_nothing_is_lost(make_stack: Any) -> None:
    stack: Stack = make_stack()
    stack.start()
    api = Api(stack.gateway_url)
    customer, _, _ = sign_up_and_log_in(api)
    stack.stop_process("rights")
    down = customer.call("POST", "/api/v1/rights-requests", json={"kind": "access"})
    assert down.status_code == 503 and down.headers["Retry-After"] and \
        down.json()["error"]["code"] == "service_unavailable"
    assert customer.call("GET", "/api/v1/rights-requests").status_code == 503
    stack.start_service("rights")
    stack.wait_serving("rights")
    # Back: the request the customer files again is the only one (the refused attempt stored nothing).
    filed = file(customer, "access")
    assert [r["id"] for r in customer.call("GET", "/api/v1/rights-requests").json()["items"]] == [filed["id"]]
