"""The record of processing (UK GDPR Art. 30), assembled from every service's Governance declarations.

Used by the gateway (GET /api/v1/dpo/ropa) and the CLI (`kaseum ropa`): the text comes from
data/declarations.json, the facts (which service stores which category in which columns, for
which purposes, kept how long, shared with whom, transferred how) from the services themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kaseum.privacy.v1 import governance_pb2 as pb

from .declarations import NOT_PERSONAL, catalogue


def build(declarations: Sequence[pb.Declarations], not_reporting: Mapping[str, str]) -> dict[str, Any]:
    text = catalogue()
    stored: dict[str, dict[str, dict[str, list[str]]]] = {}
    for d in declarations:
        for c in d.columns:
            if c.category != NOT_PERSONAL:
                stored.setdefault(c.category, {}).setdefault(d.service, {}).setdefault(c.table, []).append(c.column)
    categories = []
    for code, info in text["categories"].items():
        where = stored.get(code, {})
        categories.append({
            "code": code, "name": info["name"], "notice": info["notice"], "description": info["description"],
            "stored_in": [{"service": svc, "table": table, "columns": cols}
                          for svc, tables in sorted(where.items()) for table, cols in sorted(tables.items())],
        })
    purposes = []
    for clause, info in text["purposes"].items():
        users = [{"service": d.service, "categories": list(p.categories), "activity": p.activity}
                 for d in declarations for p in d.purposes if p.purpose == clause]
        purposes.append({"clause": clause, "text": info["text"], "lawful_basis": info["lawful_basis"],
                         "services": users})
    recipients = [{"clause": clause, "text": info["text"],
                   "services": sorted(d.service for d in declarations if clause in d.recipients)}
                  for clause, info in text["recipients"].items()]
    hosting = {(h.name, h.country, h.basis, h.allowed, h.reason) for d in declarations for h in d.hosting}
    safeguards = {(s.reference, s.type, s.risk_assessment, s.recipient, s.country, ",".join(s.categories), s.expires)
                  for d in declarations for s in d.safeguards}
    first = declarations[0] if declarations else None
    transfers = {
        "notice": text["transfers"]["notice"], "text": text["transfers"]["text"],
        "adequacy_as_of": first.adequacy_as_of if first else "",
        "adequacy_sources": list(first.adequacy_sources) if first else [],
        "adequate_destinations": list(first.adequate_destinations) if first else [],
        "safeguards": [dict(zip(("reference", "type", "risk_assessment", "recipient", "country", "categories",
                                 "expires"), s, strict=True)) for s in sorted(safeguards)],
        "hosting_providers": [{"name": n, "country": c, "basis": b, "allowed": a, "reason": why}
                              for n, c, b, a, why in sorted(hosting)],
        "kinds": {d.service: list(d.transfers) for d in declarations if d.transfers},
    }
    retention = {"notice": text["retention"]["notice"], "text": text["retention"]["text"],
                 "rules": [{"service": d.service, "name": r.name, "category": r.category, "what": r.what,
                            "period": r.period, "trigger": r.trigger, "reason": r.reason}
                           for d in declarations for r in d.retention]}
    return {"controller": text["controller"], "purposes": purposes, "categories": categories,
            "recipients": recipients, "transfers": transfers, "retention": retention,
            "services": sorted(d.service for d in declarations), "not_reporting": dict(not_reporting)}


def to_text(record: Mapping[str, Any]) -> str:
    c = record["controller"]
    out = ["RECORD OF PROCESSING ACTIVITIES (UK GDPR Art. 30)",
           f"Controller: {c['name']}, {c['registration']}; contact {c['contact']}",
           f"Generated from the declarations of: {', '.join(record['services']) or 'no service'}"]
    for service, why in sorted(record["not_reporting"].items()):
        out.append(f"  NOT INCLUDED: {service} ({why})")
    out += ["", "PURPOSES (notice 4.1) AND LAWFUL BASIS"]
    for p in record["purposes"]:
        out.append(f"  {p['clause']} {p['text']}")
        out.append(f"      basis: {p['lawful_basis']}")
        for s in p["services"]:
            out.append(f"      {s['service']}: {s['activity']} [{', '.join(s['categories'])}]")
    out += ["", "CATEGORIES OF PERSONAL DATA (notice 3.2 and where else the notice names data)"]
    for cat in record["categories"]:
        out.append(f"  {cat['code']} {cat['name']} (notice {cat['notice']}): {cat['description']}")
        if not cat["stored_in"]:
            out.append("      stored by: no reporting service")
        for s in cat["stored_in"]:
            out.append(f"      stored by {s['service']} in {s['table']}: {', '.join(s['columns'])}")
    out += ["", "RECIPIENTS (notice 5.1)"]
    for r in record["recipients"]:
        out.append(f"  {r['clause']} {r['text']} — from: {', '.join(r['services']) or 'none yet'}")
    t = record["transfers"]
    out += ["", f"INTERNATIONAL TRANSFERS (notice {t['notice']})", f"  {t['text']}",
            f"  adequacy list as of {t['adequacy_as_of']}: {', '.join(t['adequate_destinations'])}",
            f"  sources: {', '.join(t['adequacy_sources'])}"]
    for s in t["safeguards"] or [{"reference": "none recorded"}]:
        if len(s) == 1:
            out.append("  safeguards: none recorded")
            break
        out.append(f"  safeguard {s['type']} {s['reference']}: {s['recipient']} in {s['country']} "
                   f"[{s['categories']}], TRA/DPIA {s['risk_assessment']}, valid until {s['expires']}")
    for h in t["hosting_providers"]:
        if h.get("allowed", True):
            out.append(f"  hosting provider {h['name']} in {h['country']} (basis: {h['basis']})")
        else:
            out.append(f"  hosting provider {h['name']} in {h['country']} REFUSED, not serving: {h['reason']}")
    for service, kinds in sorted(t["kinds"].items()):
        out.append(f"  {service} may transfer for: {', '.join(kinds)} (each decision logged)")
    r = record["retention"]
    out += ["", f"RETENTION (notice {r['notice']})", f"  {r['text']}"]
    for rule in r["rules"]:
        out.append(f"  {rule['service']}/{rule['name']} [{rule['category']}] {rule['what']}: {rule['period']} "
                   f"from {rule['trigger']} — {rule['reason']}")
    return "\n".join(out) + "\n"
