"""`kaseum erasures replay`: after a database restore, erase again everyone the erasure ledger names."""

from __future__ import annotations

import grpc
import typer
from kaseum.rights.v1 import rights_pb2, rights_pb2_grpc
from servicekit import caller, clients

erasures = typer.Typer(help="The erasure ledger (notice 13.1.3).", no_args_is_help=True)


@erasures.command("replay")
def replay() -> None:
    """Run after restoring any service's database from a backup: a subject erased after the backup was
    taken is erased again everywhere. Safe to run more than once."""
    from .main import describe, fail, settings

    config = settings()
    try:
        metadata = caller.ServiceCredentials(config.service_secret(), "cli").metadata()
    except RuntimeError as exc:
        fail(str(exc))
    stub = rights_pb2_grpc.RightsStub(clients.channel(config.rights_addr, deadline=600))
    try:
        done = stub.ReplayErasures(rights_pb2.ReplayErasuresRequest(), metadata=metadata)
    except grpc.RpcError as exc:
        fail(describe(exc))
    typer.echo(f"replayed {done.subjects} erasures: {done.erased_rows} restored rows erased again")
    for failure in done.failures:
        typer.echo(f"failed: {failure} (run the replay again)", err=True)
    if done.failures:
        raise typer.Exit(1)
