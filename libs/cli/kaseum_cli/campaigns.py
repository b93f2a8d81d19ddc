"""`kaseum campaigns send|call-list` and `kaseum notices publish`: consent's administration from the command line."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import grpc
import typer
from kaseum.consent.v1 import consent_pb2, consent_pb2_grpc
from servicekit import caller, clients

campaigns = typer.Typer(help="Marketing campaigns and product update notices (sections 4.1.5, 6-8).",
                        no_args_is_help=True)
notices = typer.Typer(help="Versions of the privacy notice and terms (section 4.1.2).", no_args_is_help=True)


def _stub() -> tuple[consent_pb2_grpc.ConsentStub, tuple[tuple[str, str], ...]]:
    from .main import fail, settings

    config = settings()
    try:
        credentials = caller.ServiceCredentials(config.service_secret(), "cli")
    except RuntimeError as exc:
        fail(str(exc))
    return consent_pb2_grpc.ConsentStub(clients.channel(config.consent_addr, deadline=120)), credentials.metadata()


def _describe(error: grpc.RpcError) -> str:
    from .main import describe

    return describe(error).replace("the identity service", "the consent service")


@campaigns.command("send")
def send(
    subject: str = typer.Option(..., help="Subject line."),
    body_stdin: bool = typer.Option(False, "--body-stdin", help="Read the plain-text body from standard input."),
    body: str = typer.Option("", help="Plain-text body (or --body-stdin)."),
    purpose: str = typer.Option("marketing", help="marketing (only to those who consented) or service."),
    product: str = typer.Option("", help="Only customers holding this product."),
    kind: str = typer.Option("campaign", help="campaign, or product_update: an update notice for --product, "
                                              "a service message to its holders and marketing to others."),
) -> None:
    """Queue a campaign; marketing goes only to those CanContact allows, each with its own unsubscribe link."""
    from .main import fail

    text = sys.stdin.read() if body_stdin else body
    if not text.strip():
        fail("give a body with --body or --body-stdin")
    stub, metadata = _stub()
    try:
        result = stub.SendCampaign(consent_pb2.SendCampaignRequest(
            subject=subject, body=text, channel="email", purpose=purpose, product=product, kind=kind),
            metadata=metadata)
    except grpc.RpcError as exc:
        fail(_describe(exc))
    typer.echo(f"campaign {result.id}: audience {result.audience}, queued {result.eligible}, "
               f"left out {result.suppressed} (no consent, objected, restricted or suppressed)")


def _register(path: Path) -> list[str]:
    """The TPS/CTPS extract: one E.164 number a line; blank lines and # comments skipped.

    A bad line is reported by its number only: the file's numbers are never echoed or logged."""
    from .main import fail

    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    numbers = []
    for n, line in enumerate(lines, 1):
        number = line.strip()
        if not number or number.startswith("#"):
            continue
        digits = number[1:].replace(" ", "")
        if not number.startswith("+") or not digits.isdigit() or not 8 <= len(digits) <= 15:
            fail(f"{path}, line {n}: not an E.164 number (+ and 8-15 digits)")
        numbers.append(number)
    return numbers


@campaigns.command("call-list")
def call_list(
    tps: Path | None = typer.Option(None, "--tps", help="The licensed TPS/CTPS register extract: one E.164 number "
                                                        "a line. Listed numbers are marked."),
    as_csv: bool = typer.Option(False, "--csv", help="CSV (subject_id,phone,on_tps,basis) after the header line."),
) -> None:
    """The telephone call list for marketing calls: only people who consented to calls (R-MKT-7).

    Every export is on consent's audit trail. The first line says what the screening was."""
    from .main import fail

    numbers = _register(tps) if tps is not None else []
    stub, metadata = _stub()
    try:
        result = stub.CallList(consent_pb2.CallListRequest(
            purpose="marketing", tps_screened=tps is not None, tps_numbers=numbers), metadata=metadata)
    except grpc.RpcError as exc:
        fail(_describe(exc))
    listed = sum(r.on_tps for r in result.rows)
    screening = (f"screened against the TPS/CTPS extract {tps.name} ({result.tps_numbers} numbers): {listed} "
                 f"marked TPS, callable because the person consented to calls" if tps is not None else
                 "not screened against TPS/CTPS (no --tps file): not required, as every person listed consented "
                 "to marketing calls")
    typer.echo(f"# marketing call list, {len(result.rows)} people; {screening}; "
               f"{result.without_phone} consented without a phone number (not listed)")
    if as_csv:
        out = csv.writer(sys.stdout, lineterminator="\n")
        out.writerow(["subject_id", "phone", "on_tps", "basis"])
        out.writerows([r.subject_id, r.phone, "yes" if r.on_tps else "no", r.basis] for r in result.rows)
        return
    for r in result.rows:
        typer.echo(f"{r.subject_id}  {r.phone:<16}  {'TPS' if r.on_tps else '   '}  {r.basis}")


@notices.command("publish")
def publish(
    version: str = typer.Option(..., help="Version label, e.g. 2025-02."),
    document: str = typer.Option("privacy", help="privacy or terms."),
    changes_purpose: bool = typer.Option(False, "--changes-purpose",
                                         help="The marketing purpose changed: marketing consents are asked again."),
    summary: str = typer.Option("", help="What changed, for the message to customers."),
) -> None:
    """Publish a new version; every customer is sent a service message about it."""
    from .main import fail

    stub, metadata = _stub()
    try:
        result = stub.PublishNotice(consent_pb2.PublishNoticeRequest(
            version=version, document=document, changes_purpose=changes_purpose, summary=summary), metadata=metadata)
    except grpc.RpcError as exc:
        fail(_describe(exc))
    typer.echo(f"published {result.version}; {result.recipients} customers will be told")
