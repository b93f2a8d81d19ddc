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
from dataclasses import dataclass
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
    service: str
    export: bytes
    declarations: bytes


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


def build(request: dict[str, str], services: list[str], load: Callable[[str], Part], *,
          portable_only: bool = False) -> Iterator[bytes]:
    """Yield the ZIP in chunks. `request` names the request (id, kind, received_at, completed_at); each
    service's part is loaded by `load` when needed and dropped after, so at most one service's answer
    is in memory at a time. `portable_only`: JSON and CSV of what the subject provided, no report."""

    def exports() -> Iterator[tuple[str, pd.ExportResponse]]:
        for service in services:
            export = pd.ExportResponse.FromString(load(service).export)
            yield service, provided(service, export) if portable_only else export

    sink = _Sink()
    summary: list[tuple[str, pd.ExportResponse]] = []  # table names and row counts, for the report
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("data.json", "w") as out:
            out.write(b'{"request": ' + json.dumps(request).encode() + b', "services": {')
            for i, (service, export) in enumerate(exports()):
                out.write((", " if i else "").encode() + json.dumps(service).encode() + b": {")
                out.write(b'"note": ' + json.dumps(export.note).encode() + b', "tables": {')
                for j, table in enumerate(export.tables):
                    out.write((", " if j else "").encode() + json.dumps(table.name).encode() + b": [")
                    for k, row in enumerate(table.rows):
                        record = dict(zip(table.columns, row.values, strict=False))
                        out.write((", " if k else "").encode() + json.dumps(record).encode())
                        if len(sink.buffer) >= CHUNK:
                            yield sink.take()
                    out.write(b"]")
                out.write(b"}}")
                summary.append((service, _shape(export)))
            out.write(b"}}")
        yield sink.take()
        for service, export in exports():
            for table in export.tables:
                with zf.open(f"{service}/{table.name}.csv", "w") as raw, \
                        io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
                    writer = csv.writer(text)
                    writer.writerow(table.columns)
                    for row in table.rows:
                        writer.writerow(row.values)
                        if len(sink.buffer) >= CHUNK:
                            text.flush()
                            yield sink.take()
                yield sink.take()
        if not portable_only:
            parts = [load(service) for service in services]
            declared = [governance_pb2.Declarations.FromString(p.declarations) for p in parts if p.declarations]
            silent = {p.service: "did not declare its processing" for p in parts if not p.declarations}
            zf.writestr("report.html", report(request, summary, ropa.build(declared, silent)))
    yield sink.take()


def _shape(export: pd.ExportResponse) -> pd.ExportResponse:
    """The export without its values: table names, categories and row counts for the report."""
    return pd.ExportResponse(service=export.service, note=export.note, tables=[
        pd.Table(name=t.name, category=t.category, columns=t.columns, rows=[pd.Row()] * len(t.rows))
        for t in export.tables])


def report(request: dict[str, str], exports: list[tuple[str, pd.ExportResponse]], record: dict[str, Any]) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(service)}</td><td>{e(t.name)}</td><td>{e(t.category)}</td><td>{len(t.rows)}</td></tr>"
        for service, export in exports for t in export.tables)
    notes = "".join(f"<li>{e(service)}: {e(export.note)}</li>" for service, export in exports if export.note)
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
