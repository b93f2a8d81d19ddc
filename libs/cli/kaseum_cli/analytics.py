"""`kaseum analytics feature-usage`: aggregated feature usage for an analyst at a terminal.

The analyst signs in as themself (login, password on standard input, or an access token in
KASEUM_TOKEN): the analytics service decides from their role, charges their own privacy budget,
and answers aggregates only, exactly as over the web. The deployment secret is never used here.
"""

from __future__ import annotations

import json
import os
import sys

import grpc
import typer
from kaseum.analytics.v1 import analytics_pb2, analytics_pb2_grpc
from kaseum.identity.v1 import identity_pb2, identity_pb2_grpc
from servicekit import clients
from servicekit.caller import person_metadata
from servicekit.grpc_server import ERROR_CODE_KEY
from servicekit.settings import CommonSettings

app = typer.Typer(help="Aggregated usage statistics (analysts only).", no_args_is_help=True)


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def describe(error: grpc.RpcError, service: str) -> str:
    if not isinstance(error, grpc.Call):
        return "the call failed"
    if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return f"the {service} service is not reachable; is the system running (`make run`)?"
    code = next((v for k, v in error.trailing_metadata() or () if k == ERROR_CODE_KEY), "")
    return f"{error.details()} ({code or error.code().name.lower()})"


def sign_in(config: CommonSettings, login: str, password_stdin: bool) -> str:
    token = os.environ.get("KASEUM_TOKEN", "")
    if not login:
        if not token:
            fail("sign in with --login NAME --password-stdin, or set KASEUM_TOKEN to an access token")
        return token
    if not password_stdin:
        fail("give the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\r\n")
    stub = identity_pb2_grpc.IdentityStub(clients.channel(config.identity_addr, deadline=10))
    try:
        return str(stub.Login(identity_pb2.LoginRequest(login=login, password=password,
                                                        user_agent="kaseum-cli")).token)
    except grpc.RpcError as exc:
        fail(describe(exc, "identity"))
    return ""


PEAK = "peak_daily_users"


def render(response: analytics_pb2.FeatureUsageResponse, dimension: str) -> str:
    # A week's or month's figure is its busiest day's: the column says so, and a note says why.
    users_head = "peak day" if response.measure == PEAK else "users"
    lines = [f"{'period':<12}{'value':<16}{users_head:>10}{'share':>10}" if dimension
             else f"{'period':<12}{users_head:>10}{'share':>10}"]
    for p in response.series:
        users = "suppressed" if p.suppressed else str(p.users)
        share = "" if p.suppressed else f"{p.percentage:.1f}%"
        label = f"{(p.value or 'total'):<16}" if dimension else ""
        lines.append(f"{p.period:<12}{label}{users:>10}{share:>10}")
    if response.measure == PEAK:
        lines.append("per period: distinct users on its busiest day (pseudonyms change daily, so distinct "
                     "users over a week or month are not known)")
    if response.regions or response.not_reporting:
        lines.append(f"regions combined: {', '.join(response.regions) or 'none'} (a cell is suppressed where "
                     "any region's part is)")
    for region, why in sorted(response.not_reporting.items()):
        lines.append(f"not reporting: {region}: {why}")
    lines.append(f"groups under {response.min_group_size} users are suppressed"
                 + (f"; epsilon spent {response.epsilon_spent:g}, left {response.budget_remaining:g}"
                    if response.epsilon_spent else ""))
    return "\n".join(lines)


@app.command("feature-usage")
def feature_usage(
    feature: str = typer.Option(..., help="Feature name, e.g. tickets.open."),
    from_date: str = typer.Option(..., "--from", help="First day, YYYY-MM-DD."),
    to_date: str = typer.Option(..., "--to", help="Last day, YYYY-MM-DD."),
    granularity: str = typer.Option("day", help="day, week or month (week, month: the busiest day's users)."),
    dimension: str = typer.Option("", help="Breakdown: product or org_size_band (default none)."),
    region: str = typer.Option("", help="A region code, all (every peer region combined) or a list such as "
                               "uk,eu (default: this deployment's)."),
    epsilon: float = typer.Option(0.0, help="Differential privacy: epsilon to spend (0 = exact counts)."),
    login: str = typer.Option("", help="Your analyst login (else KASEUM_TOKEN)."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Distinct users of a feature per day (per week or month: its busiest day's); small groups are
    shown as suppressed."""
    from .main import settings

    config = settings()
    token = sign_in(config, login, password_stdin)
    stub = analytics_pb2_grpc.AnalyticsStub(clients.channel(config.analytics_addr, deadline=10))
    try:
        response = stub.FeatureUsage(analytics_pb2.FeatureUsageRequest(
            feature=feature, from_date=from_date, to_date=to_date, granularity=granularity,
            dimension=dimension, region=region, epsilon=epsilon), metadata=person_metadata(token))
    except grpc.RpcError as exc:
        fail(describe(exc, "analytics"))
    if as_json:
        series = [{"period": p.period, **({"value": p.value} if dimension else {}),
                   **({"suppressed": True} if p.suppressed else {"users": p.users,
                                                                  "percentage": round(p.percentage, 2)})}
                  for p in response.series]
        typer.echo(json.dumps({"series": series, "measure": response.measure,
                               "epsilon_spent": response.epsilon_spent,
                               "budget_remaining": response.budget_remaining,
                               **({"regions": list(response.regions), "not_reporting": dict(response.not_reporting)}
                                  if response.regions or response.not_reporting else {})}))
    else:
        typer.echo(render(response, dimension))
