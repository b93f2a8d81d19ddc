"""`kaseum`: operator commands that talk to the running services over gRPC.

Credentials: the deployment's KASEUM_SERVICE_SECRET, from the environment or
from the env file `make run` writes (var/kaseum.env, or KASEUM_ENV_FILE).
Passwords are read from standard input, never from an argument.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import grpc
import typer
from kaseum.identity.v1 import identity_pb2, identity_pb2_grpc, organisations_pb2, organisations_pb2_grpc
from pydantic_settings import SettingsConfigDict
from servicekit import caller, clients
from servicekit.grpc_server import ERROR_CODE_KEY
from servicekit.settings import CommonSettings

from . import analytics, campaigns, dead_letters, governance, rights

app = typer.Typer(help="Kaseum Customer Portal operator commands.", no_args_is_help=True)
users = typer.Typer(help="Staff and customer accounts.", no_args_is_help=True)
app.add_typer(users, name="users")
organisations = typer.Typer(help="Customer and reseller organisations (section 5.1.1).", no_args_is_help=True)
app.add_typer(organisations, name="organisations")
app.add_typer(dead_letters.app, name="dead-letters")
app.add_typer(analytics.app, name="analytics")
app.add_typer(campaigns.campaigns, name="campaigns")
app.add_typer(campaigns.notices, name="notices")
app.add_typer(governance.retention, name="retention")
app.add_typer(governance.audit, name="audit")
app.add_typer(governance.transfers, name="transfers")
app.add_typer(governance.holds, name="holds")
app.command("ropa")(governance.ropa_command)
app.add_typer(rights.erasures, name="erasures")

ROLES = ("admin", "agent", "reseller", "dpo", "analyst")


def settings() -> CommonSettings:
    env_file = Path(os.environ.get("KASEUM_ENV_FILE", "var/kaseum.env"))

    class CliSettings(CommonSettings):
        model_config = SettingsConfigDict(env_file=env_file if env_file.exists() else None, extra="ignore")

    return CliSettings()


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def describe(error: grpc.RpcError) -> str:
    if not isinstance(error, grpc.Call):
        return "the call failed"
    code = next((v for k, v in error.trailing_metadata() or () if k == ERROR_CODE_KEY), "")
    if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return "a service is not reachable; is the system running (`make run`)?"
    return f"{error.details()} ({code or error.code().name.lower()})"


@users.command("create")
def create_user(
    role: str = typer.Option(..., help=f"One of: {', '.join(ROLES)}."),
    username: str = typer.Option(..., help="Login name."),
    email: str = typer.Option(..., help="Business e-mail address."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input."),
    organisation: str = typer.Option("", help="Organisation (required for resellers)."),
    country: str = typer.Option("", help="ISO 3166-1 alpha-2 country (default: the deployment's region)."),
) -> None:
    """Create a staff account (the first administrator comes from here)."""
    if role not in ROLES:
        fail(f"--role must be one of {', '.join(ROLES)}")
    if not password_stdin:
        fail("give the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        fail("no password on standard input")
    config = settings()
    try:
        credentials = caller.ServiceCredentials(config.service_secret(), "cli")
    except RuntimeError as exc:
        fail(str(exc))
    stub = identity_pb2_grpc.IdentityStub(clients.channel(config.identity_addr, deadline=10))
    try:
        created = stub.CreateUser(identity_pb2.CreateUserRequest(
            role=role, username=username, email=email, password=password,
            organisation=organisation, country=country), metadata=credentials.metadata())
    except grpc.RpcError as exc:
        fail(describe(exc))
    typer.echo(f"created {created.role} {created.username} ({created.id})")


def organisations_stub() -> tuple[organisations_pb2_grpc.OrganisationsStub, tuple[tuple[str, str], ...]]:
    """The Organisations service (in the identity process) and the CLI's service credentials."""
    config = settings()
    try:
        credentials = caller.ServiceCredentials(config.service_secret(), "cli")
    except RuntimeError as exc:
        fail(str(exc))
    stub = organisations_pb2_grpc.OrganisationsStub(clients.channel(config.identity_addr, deadline=10))
    return stub, credentials.metadata()


@organisations.command("create")
def create_organisation(
    name: str = typer.Option(..., help="Organisation name (unique per kind)."),
    kind: str = typer.Option(..., help="customer or reseller."),
    country: list[str] = typer.Option([], "--country", help="Resellers: an ISO 3166-1 alpha-2 country it "
                                                            "operates in (repeat for several)."),
) -> None:
    """Create a customer or reseller organisation."""
    if kind not in ("customer", "reseller"):
        fail("--kind must be customer or reseller")
    stub, metadata = organisations_stub()
    try:
        created = stub.CreateOrganisation(organisations_pb2.CreateOrganisationRequest(
            name=name, kind=kind, countries=country), metadata=metadata)
    except grpc.RpcError as exc:
        fail(describe(exc))
    countries = f" in {', '.join(created.countries)}" if created.countries else ""
    typer.echo(f"created {created.kind} {created.name}{countries} ({created.id})")


@organisations.command("link")
def link_customer(
    reseller: str = typer.Option(..., help="Id of the reseller organisation."),
    customer: str = typer.Option(..., help="Id of the customer organisation it sold to."),
) -> None:
    """Record that a reseller sold to a customer organisation (it may then support its people)."""
    stub, metadata = organisations_stub()
    try:
        link = stub.AddResellerCustomer(organisations_pb2.AddResellerCustomerRequest(
            reseller_id=reseller, customer_organisation_id=customer), metadata=metadata)
    except grpc.RpcError as exc:
        fail(describe(exc))
    typer.echo(f"linked reseller {link.reseller_id} to customer {link.customer_organisation_id}")


@organisations.command("size")
def set_size(
    organisation: str = typer.Option(..., help="Id of the customer organisation."),
    band: str = typer.Option("", help="Size band: 1-9, 10-49, 50-249 or 250+."),
    employees: int = typer.Option(0, help="Or a declared employee count: only its band is kept."),
    clear: bool = typer.Option(False, "--clear", help="Remove the band (counted as unknown)."),
) -> None:
    """Set a customer organisation's size band, the coarse dimension of usage statistics."""
    if clear == bool(band or employees):
        fail("give --band or --employees, or --clear")
    stub, metadata = organisations_stub()
    try:
        updated = stub.SetOrganisationSize(organisations_pb2.SetOrganisationSizeRequest(
            organisation_id=organisation, size_band=band, employees=employees), metadata=metadata)
    except grpc.RpcError as exc:
        fail(describe(exc))
    typer.echo(f"{updated.name} ({updated.id}): size band {updated.size_band or 'not set'}")


if __name__ == "__main__":
    app()
