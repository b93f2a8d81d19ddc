"""The access / portability ZIP built from answers stored in pieces: a table split across pieces reads
exactly as the same table in one piece, and the pieces are loaded one at a time, in order."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterable

import pytest
from kaseum.privacy.v1 import governance_pb2
from rights import export_zip
from servicekit.personal_data import pieces
from servicekit.subject_data import Export

REQUEST = {"id": "r" * 32, "kind": "access", "received_at": "2026-12-01T10:00:00+00:00",
           "completed_at": "2026-12-01T10:05:00+00:00"}
DECLARED = governance_pb2.Declarations(service="any").SerializeToString()


def rows(prefix: str, n: int, width: int) -> list[list[str]]:
    # Commas, quotes, new lines and non-ASCII: what CSV and JSON must both carry unchanged.
    return [[f'{prefix}{i}.{j} "é",\n' * (1 + (i + j) % 2) for j in range(width)] for i in range(n)]


ANSWERS = {
    "identity": Export([("accounts", "3.2.1", ["email", "name"], rows("a", 1, 2)),
                        ("access_log", "access_records", ["action"], rows("l", 23, 1))], "identity's note"),
    "tickets": Export([("tickets", "ticket_content", ["id", "subject", "body"], rows("t", 45, 3)),
                       ("replies", "ticket_content", ["id", "body"], rows("r", 61, 2)),
                       ("access_log", "access_records", ["action"], rows("x", 12, 1)),
                       ("recipient_notices", "rights_requests", ["organisation"], [])]),
    "analytics": Export([], "nothing linkable"),
}


def stored(max_rows: int) -> dict[tuple[str, int], export_zip.Part]:
    """Each service's answer as the Export stream gives it, stored one row per piece."""
    parts = {}
    for service, export in ANSWERS.items():
        for seq, piece in enumerate(pieces(service, export, max_rows=max_rows)):
            parts[(service, seq)] = export_zip.Part(service, piece.SerializeToString(), b"" if seq else DECLARED)
    return parts


def unzip(chunks: Iterable[bytes]) -> dict[str, bytes]:
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    return {name: archive.read(name) for name in archive.namelist()}


def built(parts: dict[tuple[str, int], export_zip.Part], portable_only: bool = False,
          loaded: list[tuple[str, int]] | None = None) -> dict[str, bytes]:
    def load(service: str, seq: int) -> export_zip.Part:
        if loaded is not None:
            loaded.append((service, seq))
        return parts[(service, seq)]
    return unzip(export_zip.build(REQUEST, sorted(parts), load, portable_only=portable_only))


@pytest.mark.rule("R-ACCESS-1", "R-PORT-1")
@pytest.mark.notice("13.1.1", "13.1.6")
@pytest.mark.parametrize("portable_only", [False, True])
def test_a_table_split_across_pieces_gives_the_same_zip_as_one_piece(portable_only: bool) -> None:
    whole, split = stored(max_rows=10_000), stored(max_rows=7)
    assert {s for s, seq in whole if seq} == set() and len([k for k in split if k[0] == "tickets"]) > 10
    one, many = built(whole, portable_only), built(split, portable_only)
    assert list(many) == list(one) and many == one  # every entry, byte for byte: data.json, CSVs, report

    data = json.loads(many["data.json"])
    tickets = data["services"]["tickets"]["tables"]
    assert [r["body"] for r in tickets["tickets"]] == [r[2] for r in ANSWERS["tickets"].tables[0][3]]
    assert len(tickets["replies"]) == 61 and tickets["recipient_notices"] == []
    replies = list(csv.reader(io.StringIO(many["tickets/replies.csv"].decode(), newline="")))
    assert replies == [["id", "body"], *rows("r", 61, 2)]
    if portable_only:  # what the subject provided, per piece: no access log, nothing of analytics, no report
        assert "access_log" not in tickets and "tickets/access_log.csv" not in many
        assert data["services"]["analytics"] == {"note": "", "tables": {}} and "report.html" not in many
    else:
        assert len(tickets["access_log"]) == 12 and data["services"]["identity"]["note"] == "identity's note"
        assert "<td>tickets</td><td>replies</td><td>ticket_content</td><td>61</td>" in many["report.html"].decode()


@pytest.mark.rule("R-ACCESS-1")
@pytest.mark.notice("13.1.1")
def test_pieces_are_loaded_one_at_a_time_in_order_and_the_declarations_from_piece_zero() -> None:
    parts = stored(max_rows=7)
    loaded: list[tuple[str, int]] = []
    report = built(parts, loaded=loaded)["report.html"].decode()
    in_order = sorted(parts)
    # data.json, then the CSVs, each reading every piece once; then piece 0 of each for the declarations.
    assert loaded == in_order + in_order + [(s, 0) for s in ("analytics", "identity", "tickets")]
    # Declarations only on piece 0: a service whose piece 0 has none is reported as silent.
    assert "did not declare" not in report
    parts[("identity", 0)] = export_zip.Part("identity", parts[("identity", 0)].export, b"")
    assert "<li>identity: did not declare its processing</li>" in built(parts)["report.html"].decode()
