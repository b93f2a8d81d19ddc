"""`kaseum dead-letters`: the events consumers gave up on, and their replay."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats
import typer
from nats.js.client import JetStreamContext
from servicekit.dead_letters import list_dead_letters, replay

T = TypeVar("T")
app = typer.Typer(help="Events that kept failing (the dead-letter stream).", no_args_is_help=True)


def _with_jetstream(nats_url: str, work: Callable[[JetStreamContext], Awaitable[T]]) -> T:
    async def run() -> T:
        async def quiet(_exc: Exception) -> None:
            pass  # the failure is reported once, below

        # nats-py keeps retrying a first connection; an operator command gives up after 5 s.
        nc = await asyncio.wait_for(
            nats.connect(nats_url, connect_timeout=2, allow_reconnect=False, error_cb=quiet), 5)
        try:
            return await work(nc.jetstream())
        finally:
            await nc.close()

    try:
        return asyncio.run(run())
    except (OSError, TimeoutError, nats.errors.NoServersError, nats.errors.TimeoutError) as exc:
        typer.echo(f"error: NATS is not reachable at {nats_url} ({type(exc).__name__})", err=True)
        raise typer.Exit(1) from exc


@app.command("list")
def list_command() -> None:
    """One line per dead letter: sequence, consumer, event type, event id, why it failed."""
    from .main import settings

    config = settings()
    letters = _with_jetstream(config.nats_url, lambda js: list_dead_letters(js, config.region))
    if not letters:
        typer.echo("no dead letters")
    for letter in letters:
        typer.echo(f"{letter.seq}\t{letter.consumer}\t{letter.event_type}\t{letter.event_id}\t{letter.failure}")


@app.command("replay")
def replay_command(seq: int = typer.Argument(..., help="Sequence number from `kaseum dead-letters list`.")) -> None:
    """Send one dead letter back to its original subject (after the cause is fixed)."""
    from .main import settings

    config = settings()
    try:
        letter = _with_jetstream(config.nats_url, lambda js: replay(js, config.region, seq))
    except (nats.js.errors.NotFoundError, ValueError) as exc:
        typer.echo(f"error: no dead letter {seq} to replay", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"replayed {letter.event_type} {letter.event_id} to {letter.original_subject}")
