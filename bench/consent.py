"""Consent's figures (issue 6): CanContact decisions per second, and a campaign to 100,000 subjects.

    .venv/bin/python bench/consent.py [--subjects 100000] [--opted-out 0.10] [--batch 1000] [--keep]

The consent service runs as in production (its own process, real gRPC, SQLite under a temporary folder,
NATS JetStream beside it); its database is filled directly with `--subjects` customers' preferences, a
tenth of them opted out of e-mail marketing (signing 100,000 people up through identity would measure
argon2, not consent). Measured over gRPC with the operator CLI's service credentials:

1. CanContactBatch over every subject in calls of `--batch` ids: decisions per second, target ≥ 10,000/s;
2. SendCampaign (purpose marketing) to all of them: the time to decide and enqueue (one call, which
   returns once every message is durably queued), target < 60 s; then the queue is read back: exactly
   one message per opted-in subject and exactly 0 for the opted-out ones (a message that is not queued
   cannot be sent; the sender asks CanContact again at send time as well).

The sender is parked (SEND_POLL_SECONDS) so that the figures are the decisions and the enqueue alone.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this file's folder comes first on the path and its name would hide the consent package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from tools.stack import Stack, free_port  # noqa: E402

DECISIONS_TARGET = 10_000.0
CAMPAIGN_TARGET_S = 60.0


@dataclass(frozen=True)
class ConsentResult:
    subjects: int
    opted_out: int
    batch: int
    decisions: int
    decisions_s: float
    decisions_allowed: int
    campaign_s: float
    audience: int
    eligible: int
    queued_opted_in: int
    queued_opted_out: int

    @property
    def decisions_per_s(self) -> float:
        return self.decisions / self.decisions_s if self.decisions_s else 0.0

    @property
    def met(self) -> bool:
        return (self.decisions_per_s >= DECISIONS_TARGET and self.campaign_s < CAMPAIGN_TARGET_S
                and self.queued_opted_out == 0 and self.queued_opted_in == self.subjects - self.opted_out)


def populate(url: str, subjects: int, opted_out: int) -> tuple[list[str], set[str]]:
    """`subjects` customers' preferences, as account.created would have made them; returns (ids, opted out)."""
    from consent.models import Preferences
    from servicekit.db import make_engine
    from sqlalchemy import insert

    ids = [f"{i:032x}" for i in range(1, subjects + 1)]
    out = set(random.Random(6).sample(ids, opted_out))
    now = datetime.now(UTC)
    rows = [{"subject_id": s, "marketing_email": s not in out, "marketing_telephone": False,
             "third_party_marketing": False, "cookies_analytics": False, "cookies_marketing": False,
             "notice_version": "2024-01", "updated_at": now, "objected_at": None,
             "email_granted_at": None if s in out else now, "email_basis_seq": 0, "last_notice_seen": ""}
            for s in ids]
    engine = make_engine(url)
    with engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(insert(Preferences), rows[start:start + 5000])
    engine.dispose()
    return ids, out


def queued(url: str, campaign_id: str) -> list[str]:
    from consent.models import OutgoingMessage
    from servicekit.db import make_engine
    from sqlalchemy import select

    engine = make_engine(url)
    with engine.connect() as conn:
        found = [r[0] for r in conn.execute(select(OutgoingMessage.subject_id)
                                            .where(OutgoingMessage.campaign_id == campaign_id))]
    engine.dispose()
    return found


def run(var: Path, subjects: int = 100_000, opted_out_share: float = 0.10, batch: int = 1000,
        say: object = print) -> ConsentResult:
    from kaseum.consent.v1 import consent_pb2, consent_pb2_grpc
    from servicekit import caller, clients

    out = say if callable(say) else print
    stack = Stack(var=var, gateway_port=free_port(), nats_port=free_port(), smtp_port=free_port(),
                  grpc_ports={n: free_port() for n in ("identity", "tickets", "consent", "rights", "analytics")},
                  extra_env={"SEND_POLL_SECONDS": "3600", "DATABASE_URL_CONSENT": f"sqlite:///{var / 'consent.db'}"})
    var.mkdir(parents=True, exist_ok=True)
    try:
        stack.start_nats()
        stack.migrate()
        url = stack.database_url("consent")
        began = time.perf_counter()
        ids, out_ids = populate(url, subjects, round(subjects * opted_out_share))
        out(f"  {subjects} customers' preferences written in {time.perf_counter() - began:.1f} s "
            f"({len(out_ids)} opted out of e-mail marketing)")
        stack.start_service("consent")
        stack.wait_serving("consent")
        env = stack.env()
        credentials = caller.ServiceCredentials(env["KASEUM_SERVICE_SECRET"].encode(), "cli")
        stub = consent_pb2_grpc.ConsentStub(clients.channel(stack.grpc_addr("consent"), deadline=300))
        # Warm-up: one batch, not measured.
        stub.CanContactBatch(consent_pb2.CanContactBatchRequest(subject_ids=ids[:batch], channel="email",
                                                                purpose="marketing"), metadata=credentials.metadata())
        allowed = 0
        began = time.perf_counter()
        for start in range(0, len(ids), batch):
            answer = stub.CanContactBatch(consent_pb2.CanContactBatchRequest(
                subject_ids=ids[start:start + batch], channel="email", purpose="marketing"),
                metadata=credentials.metadata())
            allowed += sum(1 for d in answer.decisions if d.allowed)
        decisions_s = time.perf_counter() - began
        began = time.perf_counter()
        result = stub.SendCampaign(consent_pb2.SendCampaignRequest(
            subject="Spring offers", body="Our spring offers.", channel="email", purpose="marketing"),
            metadata=credentials.metadata())
        campaign_s = time.perf_counter() - began
        recipients = queued(url, result.id)
        return ConsentResult(subjects=subjects, opted_out=len(out_ids), batch=batch, decisions=len(ids),
                             decisions_s=decisions_s, decisions_allowed=allowed, campaign_s=campaign_s,
                             audience=result.audience, eligible=result.eligible,
                             queued_opted_in=sum(1 for s in recipients if s not in out_ids),
                             queued_opted_out=sum(1 for s in recipients if s in out_ids))
    finally:
        stack.stop()


def report(r: ConsentResult, say: object = print) -> None:
    out = say if callable(say) else print

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT MET"

    out("")
    out(f"Consent (issue 6): {r.subjects} customers, {r.opted_out} opted out of e-mail marketing")
    out(f"CanContact decisions/s {r.decisions_per_s:10.0f}/s    {r.decisions} decisions in calls of {r.batch} "
        f"({r.decisions_s:.2f} s; {r.decisions_allowed} allowed)  target ≥ {DECISIONS_TARGET:.0f}/s: "
        f"{verdict(r.decisions_per_s >= DECISIONS_TARGET)}")
    out(f"campaign decide+enqueue {r.campaign_s:8.2f} s      audience {r.audience}, queued {r.eligible}  "
        f"target < {CAMPAIGN_TARGET_S:.0f} s: {verdict(r.campaign_s < CAMPAIGN_TARGET_S)}")
    out(f"sends to opted-out       {r.queued_opted_out:8d}        (queued for opted-in: {r.queued_opted_in} of "
        f"{r.subjects - r.opted_out})  target 0: {verdict(r.queued_opted_out == 0)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--opted-out", type=float, default=0.10, help="share opted out of e-mail marketing")
    parser.add_argument("--batch", type=int, default=1000, help="subjects per CanContactBatch call")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder")
    args = parser.parse_args(argv)
    var = Path(tempfile.mkdtemp(prefix="kaseum-bench-consent-"))
    try:
        result = run(var, args.subjects, args.opted_out, args.batch)
        report(result)
        return 0 if result.met else 1
    finally:
        if args.keep:
            print(f"run folder kept: {var}")
        else:
            shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
