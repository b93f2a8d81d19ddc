"""`kaseum retention show`, `kaseum ropa`, `kaseum audit …`, `kaseum transfers list`, `kaseum holds …`:
the DPO's governance views from the command line (every service asked at once, as the gateway does).

Credentials: the deployment's service secret (the CLI acts as the service "cli").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC
from typing import Any, TypeVar

import grpc
import typer
from kaseum.rights.v1 import holds_pb2, holds_pb2_grpc
from servicekit import caller, clients, governance_client, governance_report, ropa
from servicekit.errors import InvalidArgument

T = TypeVar("T")
retention = typer.Typer(help="Retention schedule of every service (section 12).", no_args_is_help=True)
audit = typer.Typer(help="The audit trail of access to personal data (section 11).", no_args_is_help=True)
transfers = typer.Typer(help="The transfer log (section 10).", no_args_is_help=True)
holds = typer.Typer(help="Legal holds (section 12.1).", no_args_is_help=True)


def _context() -> tuple[dict[str, Any], tuple[tuple[str, str], ...]]:
    from .main import fail, settings

    config = settings()
    try:
        credentials = caller.ServiceCredentials(config.service_secret(), "cli")
    except RuntimeError as exc:
        fail(str(exc))
    return {"settings": config, "stubs": governance_client.stubs(config)}, credentials.metadata()


def _run(work: Callable[[], T]) -> T:
    from .main import describe, fail

    try:
        return work()
    except InvalidArgument as exc:
        fail(exc.message)
    except grpc.RpcError as exc:
        fail(describe(exc))
    raise AssertionError("unreachable")


def _missing(report: dict[str, Any]) -> None:
    for service, why in sorted(report.get("not_reporting", {}).items()):
        typer.echo(f"note: {service} {why}", err=True)


def _emit(report: dict[str, Any], as_json: bool) -> bool:
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    _missing(report)
    return as_json


@retention.command("show")
def retention_show(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """How long each category is kept, from which event, in every service; and recent purges (counts)."""
    ctx, metadata = _context()
    report = _run(lambda: governance_report.retention(ctx["stubs"], metadata))
    if _emit(report, as_json):
        return
    for service in report["services"]:
        typer.echo(f"{service['service']}:")
        for r in service["rules"]:
            covers = f" (+{', '.join(r['covers'])})" if r["covers"] else ""
            typer.echo(f"  {r['name']:<30} [{r['category']}{covers}] {r['period']} from {r['trigger']}")
            typer.echo(f"  {'':<30} {r['what']}; {r['reason']}")
        for p in service["recent_purges"]:
            typer.echo(f"  purged {p['purged']} rows ({p['rule']}, {p['batches']} batches) at {p['finished_at']}")


@audit.command("query")
def audit_query(subject: str = typer.Option("", help="Subject id whose data was accessed."),
                actor: str = typer.Option("", help="Account id (or service name) that accessed."),
                organisation: str = typer.Option("", help="Organisation of the actor (e.g. a reseller)."),
                since: str = typer.Option("", "--from", help="RFC 3339 time, inclusive."),
                until: str = typer.Option("", "--to", help="RFC 3339 time, exclusive."),
                as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Accesses to personal data, every service, oldest first."""
    ctx, metadata = _context()
    report = _run(lambda: governance_report.audit(ctx["stubs"], metadata, subject_id=subject, actor_id=actor,
                                                  organisation_id=organisation, from_time=since, to_time=until))
    if _emit(report, as_json):
        return
    for e in report["items"]:
        org = f" of {e['actor_organisation_id']}" if e["actor_organisation_id"] else ""
        typer.echo(f"{e['at']}\t{e['service']}\t{e['actor_role']} {e['actor_id']}{org}\t{e['action']} "
                   f"{e['resource_id']}\tsubject {e['subject_id']}\tpurpose {e['purpose']}")


@audit.command("accessed")
def audit_accessed(actor: str = typer.Option("", help="Account id to assess."),
                   organisation: str = typer.Option("", help="Organisation to assess (e.g. a reseller)."),
                   since: str = typer.Option(..., "--from", help="RFC 3339 time, inclusive."),
                   until: str = typer.Option(..., "--to", help="RFC 3339 time, exclusive."),
                   as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Breach assessment: which subjects did an account or organisation access between two times."""
    from .main import fail

    if not (actor or organisation):
        fail("give --actor or --organisation")
    ctx, metadata = _context()
    report = _run(lambda: governance_report.accessed_subjects(ctx["stubs"], metadata, actor_id=actor,
                                                              organisation_id=organisation, from_time=since,
                                                              to_time=until))
    if _emit(report, as_json):
        return
    for s in report["subjects"]:
        typer.echo(f"{s['subject_id']}\t{s['accesses']} accesses\t{s['first_at']} – {s['last_at']}\t"
                   f"{', '.join(s['services'])}")
    typer.echo(f"{len(report['subjects'])} subjects")


@audit.command("verify")
def audit_verify(chain: str = typer.Option("audit", help="audit or transfers.")) -> None:
    """Recompute every service's hash chain; exit 1 and say where if one is broken."""
    ctx, metadata = _context()
    report = _run(lambda: governance_report.verify(ctx["stubs"], metadata, chain))
    _missing(report)
    for s in report["services"]:
        state = "intact" if s["intact"] else f"BROKEN at seq {s['broken_at_seq']}: {s['problem']}"
        typer.echo(f"{s['service']}\t{s['chain']}\t{s['checked']} rows\t{state}")
    if not all(s["intact"] for s in report["services"]):
        raise typer.Exit(1)


@transfers.command("list")
def transfers_list(since: str = typer.Option("", "--from", help="RFC 3339 time, inclusive."),
                   until: str = typer.Option("", "--to", help="RFC 3339 time, exclusive.")) -> None:
    """Every transfer decision, allowed or refused."""
    ctx, metadata = _context()
    report = _run(lambda: governance_report.transfers(ctx["stubs"], metadata, from_time=since, to_time=until))
    _missing(report)
    for d in report["items"]:
        verdict = f"allowed ({d['basis']})" if d["allowed"] else "REFUSED"
        typer.echo(f"{d['at']}\t{d['service']}\t{d['kind']}\t{d['destination_country']}\t{d['recipient']}\t"
                   f"{verdict}\t{d['reason']}")


def ropa_command(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text.")) -> None:
    """The record of processing, generated from every service's declarations."""
    ctx, metadata = _context()
    record = _run(lambda: governance_report.record_of_processing(ctx["stubs"], metadata))
    typer.echo(json.dumps(record, indent=2) if as_json else ropa.to_text(record), nl=False)
    if as_json:
        typer.echo()


def _holds_stub() -> tuple[holds_pb2_grpc.LegalHoldsStub, tuple[tuple[str, str], ...]]:
    ctx, metadata = _context()
    return holds_pb2_grpc.LegalHoldsStub(clients.channel(ctx["settings"].rights_addr, deadline=10)), metadata


def _hold_line(h: holds_pb2.Hold) -> str:
    review = h.review_at.ToDatetime(tzinfo=UTC).date().isoformat()
    state = "released" if h.HasField("released_at") else "active"
    return f"{h.id}\t{state}\t{h.scope} {h.target_id}\t{h.reason_code}\treview {review}"


@holds.command("place")
def holds_place(scope: str = typer.Option(..., help="subject or ticket."),
                target: str = typer.Option(..., help="The subject id or ticket id."),
                reason: str = typer.Option(..., help="complaint, litigation, regulator_inquiry or other."),
                review: str = typer.Option(..., help="Review date (YYYY-MM-DD or RFC 3339), in the future."),
                note: str = typer.Option("", help="Note for the DPO's file (kept in the rights service only).")
                ) -> None:
    """Place a legal hold: purge and erasure skip what it covers until it is released."""
    stub, metadata = _holds_stub()
    review_at = _run(lambda: governance_report.timestamp(review, "--review"))
    hold = _run(lambda: stub.PlaceHold(holds_pb2.PlaceHoldRequest(
        scope=scope, target_id=target, reason_code=reason, note=note, review_at=review_at), metadata=metadata))
    typer.echo(f"placed {_hold_line(hold)}")


@holds.command("release")
def holds_release(hold_id: str = typer.Argument(..., help="Hold id from `kaseum holds list`.")) -> None:
    """Release a legal hold."""
    stub, metadata = _holds_stub()
    hold = _run(lambda: stub.ReleaseHold(holds_pb2.ReleaseHoldRequest(id=hold_id), metadata=metadata))
    typer.echo(f"released {_hold_line(hold)}")


@holds.command("list")
def holds_list(all_: bool = typer.Option(False, "--all", help="Include released holds."),
               target: str = typer.Option("", help="Only holds on this subject or ticket.")) -> None:
    """Legal holds, newest first."""
    stub, metadata = _holds_stub()
    found = _run(lambda: stub.ListHolds(holds_pb2.ListHoldsRequest(include_released=all_, target_id=target),
                                        metadata=metadata))
    for h in found.holds:
        typer.echo(_hold_line(h))
    if not found.holds:
        typer.echo("no holds")


