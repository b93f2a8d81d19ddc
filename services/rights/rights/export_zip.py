"""The access / portability ZIP (notice 13.1.1, 13.1.6; R-ACCESS-*), written as a stream of chunks.

`data.json` (everything, by service), one CSV per table (`<service>/<table>.csv`) and `report.html`:
what is held, and what the law says a response must state — purposes and lawful bases, categories,
recipients, retention, the source, the transfer safeguards, the subject's rights and the right to
complain. The report's facts come from the services' own declarations captured with their data,
so it says what the code does. The ZIP is produced piece by piece into a small buffer and
handed out as it grows: it is never held whole.
"""

from __future__ import annotations

import csv
import html
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kaseum.privacy.v1 import governance_pb2
from kaseum.privacy.v1 import personal_data_pb2 as pd
from servicekit import ropa

CHUNK = 64 * 1024
NOT_PROVIDED_SERVICES = ("rights", "analytics")
NOT_PROVIDED_CATEGORIES = ("access_records",)
SOURCE = ("You gave us this data yourself when you registered and used the portal (notice 3.1); technical "
          "data was recorded by the portal when you signed in; usage statistics are aggregated (notice 3.3).")
RIGHTS = (
    ("13.1.1", "access your personal data"), ("13.1.2", "have it corrected"), ("13.1.3", "have it erased"),
    ("13.1.4", "object to its processing"), ("13.1.5", "restrict its processing"),
    ("13.1.6", "receive it, or have it transferred, in a portable form"), ("13.1.7", "withdraw consent"),
)
COMPLAINT = ("You may complain to the Information Commissioner's Office (ICO), the UK supervisory authority: "
             "https://ico.org.uk/make-a-complaint/ or 0303 123 1113.")


@dataclass(frozen=True)
class Part:
    """One stored piece of a service's answer (its declarations on piece 0 only)."""

    service: str
    export: bytes
    declarations: bytes


@dataclass
class Held:
    """What the report says of one service's answer: its note and, per table, the rows counted."""

    service: str
    note: str = ""
    tables: list[tuple[str, str, int]] = field(default_factory=list)  # (name, category, rows)


class _Sink(io.RawIOBase):
    """What zipfile writes lands here until the next chunk is taken (an unseekable stream)."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.buffer += data
        return len(data)

    def take(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


def provided(service: str, export: pd.ExportResponse) -> pd.ExportResponse:
    """What the subject provided, or their use of the portal recorded (Art. 20; ICO: "provided by"
    includes observed data): not the records others keep about them (who accessed their data, how
    their rights requests went) nor what analytics derived."""
    if service in NOT_PROVIDED_SERVICES:
        return pd.ExportResponse(service=service)
    return pd.ExportResponse(service=service, note=export.note,
                             tables=[t for t in export.tables if t.category not in NOT_PROVIDED_CATEGORIES])


def build(request: dict[str, str], pieces: list[tuple[str, int]], load: Callable[[str, int], Part], *,
          portable_only: bool = False) -> Iterator[bytes]:
    """Yield the ZIP in chunks. `request` names the request (id, kind, received_at, completed_at); `pieces`
    are the stored pieces' keys (service, seq), in order; each piece is loaded by `load` when needed and
    dropped after, so at most one piece of one service's answer is in memory at a time (a table goes on
    across pieces: one JSON array, one CSV file). `portable_only`: JSON and CSV of what the subject
    provided, no report."""
    services = list(dict.fromkeys(service for service, _ in pieces))

    def answer(service: str) -> Iterator[pd.ExportResponse]:
        if portable_only and service in NOT_PROVIDED_SERVICES:
            yield pd.ExportResponse(service=service)  # nothing of it is sent: not even read
            return
        for of, seq in pieces:
            if of == service:
                piece = pd.ExportResponse.FromString(load(service, seq).export)
                yield provided(service, piece) if portable_only else piece

    sink = _Sink()
    summary: list[Held] = []  # table names and row counts, for the report
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("data.json", "w") as out:
            out.write(b'{"request": ' + json.dumps(request).encode() + b', "services": {')
            for i, service in enumerate(services):
                out.write((", " if i else "").encode() + json.dumps(service).encode() + b": {")
                held, k = Held(service), 0
                for n, (new, table) in enumerate(_tables(answer(service), held)):
                    if n == 0:
                        out.write(b'"note": ' + json.dumps(held.note).encode() + b', "tables": {')
                    if new:
                        out.write((b"], " if len(held.tables) > 1 else b"") + json.dumps(table.name).encode() + b": [")
                        k = 0
                    for row in table.rows:
                        record = dict(zip(table.columns, row.values, strict=False))
                        out.write((", " if k else "").encode() + json.dumps(record).encode())
                        k += 1
                        if len(sink.buffer) >= CHUNK:
                            yield sink.take()
                if not held.tables:  # no table at all (the note alone, or not provided)
                    out.write(b'"note": ' + json.dumps(held.note).encode() + b', "tables": {')
                out.write(b"]}}" if held.tables else b"}}")
                summary.append(held)
            out.write(b"}}")
        yield sink.take()
        for service in services:
            text: io.TextIOWrapper | None = None
            writer = None
            try:
                for new, table in _tables(answer(service), Held(service)):
                    if new:
                        if text is not None:
                            text.close()
                            yield sink.take()
                        text = io.TextIOWrapper(zf.open(f"{service}/{table.name}.csv", "w"), encoding="utf-8",
                                                newline="")
                        writer = csv.writer(text)
                        writer.writerow(table.columns)
                    assert text is not None and writer is not None  # a table begins before it goes on
                    for row in table.rows:
                        writer.writerow(row.values)
                        if len(sink.buffer) >= CHUNK:
                            text.flush()
                            yield sink.take()
            finally:  # the entry is closed before the archive, even when the reader went away
                if text is not None:
                    text.close()
            yield sink.take()
        if not portable_only:
            # The declarations ride on piece 0; only they are kept, not the pieces' data.
            declarations = {service: load(service, 0).declarations for service in services}
            declared = [governance_pb2.Declarations.FromString(d) for d in declarations.values() if d]
            silent = {s: "did not declare its processing" for s, d in declarations.items() if not d}
            zf.writestr("report.html", report(request, summary, ropa.build(declared, silent)))
    yield sink.take()


def _tables(answer: Iterator[pd.ExportResponse], held: Held) -> Iterator[tuple[bool, pd.Table]]:
    """Each table of a service's answer, piece after piece: (True, table) where a table begins, (False,
    table) for its rows in a later piece (the contract: a piece's first table of the same name as the
    last one goes on with it). `held` collects the note and the row counts as they pass."""
    for n, piece in enumerate(answer):
        if n == 0:
            held.note = piece.note
        for k, table in enumerate(piece.tables):
            new = not (k == 0 and held.tables and held.tables[-1][0] == table.name)
            if new:
                held.tables.append((table.name, table.category, 0))
            name, category, rows = held.tables[-1]
            held.tables[-1] = (name, category, rows + len(table.rows))
            yield new, table


def report(request: dict[str, str], summary: list[Held], record: dict[str, Any]) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(h.service)}</td><td>{e(name)}</td><td>{e(category)}</td><td>{count}</td></tr>"
        for h in summary for name, category, count in h.tables)
    notes = "".join(f"<li>{e(h.service)}: {e(h.note)}</li>" for h in summary if h.note)
    purposes = "".join(
        f"<li><b>{e(p['clause'])}</b> {e(p['text'])} — <i>{e(p['lawful_basis'])}</i></li>"
        for p in record["purposes"] if p["services"])
    categories = "".join(
        f"<li><b>{e(c['name'])}</b> ({e(c['code'])}): {e(c['description'])}</li>"
        for c in record["categories"] if c["stored_in"])
    recipients = "".join(f"<li>{e(r['text'])}</li>" for r in record["recipients"] if r["services"])
    t = record["transfers"]
    safeguards = "".join(
        f"<li>{e(s['type'])} {e(s['reference'])}: {e(s['recipient'])} in {e(s['country'])}, risk assessment "
        f"{e(s['risk_assessment'])}, valid until {e(s['expires'])}</li>" for s in t["safeguards"]) \
        or "<li>none: your data is not transferred outside the UK under a contract</li>"
    hosting = "".join(f"<li>{e(h['name'])} in {e(h['country'])} ({e(h['basis'])})</li>"
                      for h in t["hosting_providers"])
    retention = "".join(
        f"<li>{e(r['what'])}: {e(r['period'])} from {e(r['trigger'])} — {e(r['reason'])}</li>"
        for r in record["retention"]["rules"])
    rights = "".join(f"<li>{e(clause)}: {e(text)}</li>" for clause, text in RIGHTS)
    missing = "".join(f"<li>{e(s)}: {e(why)}</li>" for s, why in sorted(record["not_reporting"].items()))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Your personal data — Kaseum</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}td,th{{border:1px solid #ccc;padding:.2em .5em}}
table{{border-collapse:collapse}}</style></head><body>
<h1>Your personal data held by {e(record['controller']['name'])}</h1>
<p>Request {e(request['id'])} ({e(request['kind'])}), received {e(request['received_at'])},
completed {e(request['completed_at'])}. The data itself is in <code>data.json</code> and one CSV file per table.</p>
<h2>What we hold</h2><table><tr><th>service</th><th>table</th><th>category</th><th>rows</th></tr>{rows}</table>
<ul>{notes}</ul>
<h2>Why we process it (purposes and lawful basis)</h2><ul>{purposes}</ul>
<h2>Categories of personal data</h2><ul>{categories}</ul>
<h2>Who receives it</h2><ul>{recipients}</ul>
<h2>Where it goes (international transfers, notice {e(t['notice'])})</h2><p>{e(t['text'])}</p>
<ul>{safeguards}{hosting}</ul>
<h2>How long we keep it (notice 12)</h2><ul>{retention}</ul>
<h2>Where it came from</h2><p>{e(SOURCE)}</p>
<h2>Your rights (notice 13)</h2><ul>{rights}</ul><p>{e(COMPLAINT)}</p>
{f'<h2>Not described here</h2><ul>{missing}</ul>' if missing else ''}
</body></html>
"""


def request_fields(request_id: str, kind: str, received_at: datetime, completed_at: datetime | None) -> dict[str, str]:
    return {"id": request_id, "kind": kind, "received_at": received_at.isoformat(),
            "completed_at": completed_at.isoformat() if completed_at else ""}
