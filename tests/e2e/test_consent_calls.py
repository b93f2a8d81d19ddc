"""The telephone call list through the real system (R-MKT-7): `kaseum campaigns call-list` lists only people
who consented to marketing calls, with numbers identity holds now, says what the TPS/CTPS screening was,
marks a number on the operator's register extract, and the DPO sees each export on the audit trail."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import pytest

from tests.e2e.test_consent_mail import cli, customer
from tests.support.api import Api
from tools.stack import Stack


def drama_numbers(count: int) -> list[tuple[str, str]]:
    """(as typed at sign-up, E.164) of distinct numbers in Ofcom's range for drama (020 7946 0xxx)."""
    picked = random.sample(range(100, 1000), count)
    return [(f"+44 20 7946 0{n}", f"+442079460{n}") for n in picked]


@pytest.mark.notice("6.1", "8.1")
@pytest.mark.rule("R-MKT-7")
def test_the_cli_exports_the_call_list_of_consented_people_with_its_tps_screening(
        system: Stack, api: Api, dpo: Api, tmp_path: Path) -> None:
    (on_tps_typed, on_tps), (clear_typed, clear), (email_typed, email_only) = drama_numbers(3)
    _, listed_tps, _ = customer(api, phone=on_tps_typed, marketing={"telephone": True})
    _, listed, _ = customer(api, phone=clear_typed, marketing={"telephone": True, "email": True})
    _, not_listed, _ = customer(api, phone=email_typed, marketing={"email": True})
    register = tmp_path / "tps.txt"
    register.write_text(f"# TPS extract\n{on_tps}\n{email_only}\n+447700900123\n")

    screened = cli(system, "campaigns", "call-list", "--tps", str(register), "--csv")
    assert screened.returncode == 0, screened.stderr
    header, *lines = screened.stdout.splitlines()
    assert header.startswith("# marketing call list")
    assert "screened against the TPS/CTPS extract tps.txt (3 numbers)" in header
    rows = {r["subject_id"]: r for r in csv.DictReader(io.StringIO("\n".join(lines)))}
    assert (rows[listed_tps]["phone"], rows[listed_tps]["on_tps"]) == (on_tps, "yes")
    assert rows[listed_tps]["basis"].endswith("on TPS/CTPS; consented: may be called despite TPS")
    assert rows[listed_tps]["basis"].startswith("consented to marketing calls on ")
    assert (rows[listed]["phone"], rows[listed]["on_tps"]) == (clear, "no")
    assert rows[listed]["basis"].endswith("TPS/CTPS screening not required")
    assert not_listed not in rows  # consented to e-mail only: never on a call list, TPS or not
    assert all(number not in screened.stderr for number in (on_tps, clear, email_only))

    unscreened = cli(system, "campaigns", "call-list")
    assert unscreened.returncode == 0, unscreened.stderr
    assert unscreened.stdout.splitlines()[0].startswith(
        "# marketing call list") and "not screened against TPS/CTPS (no --tps file): not required" in unscreened.stdout
    assert listed_tps in unscreened.stdout and not_listed not in unscreened.stdout

    # Each export of the number is on the audit trail: the operator's CLI, purpose 4.1.5 (marketing).
    trail = dpo.call("GET", "/api/v1/dpo/audit", params={"subject_id": listed_tps})
    assert trail.status_code == 200, trail.text
    exports = [e for e in trail.json()["items"] if e["action"] == "consent.phone_exported"]
    assert [(e["service"], e["actor_id"], e["purpose"]) for e in exports] == [("consent", "cli", "4.1.5")] * 2
