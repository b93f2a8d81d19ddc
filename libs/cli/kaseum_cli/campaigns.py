"""`kaseum campaigns send` and `kaseum notices publish`: consent's administration from the command line."""

from __future__ import annotations

import sys

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
