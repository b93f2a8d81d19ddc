"""Processing declarations: what each service's tables hold, why, for whom and for how long.

Each column declares its category in `info={"category": code}` (codes of data/declarations.json:
the notice's 3.2.x, plus ticket_content, rights_requests, access_records, transfer_records, or
"none" for no personal data). A service's `governance.py` adds its purposes (4.1.x), recipients
(5.1.x), transfer kinds and retention rules in one `ServiceDeclaration`. The record of
processing (ropa.py) is assembled from those, so it cannot drift from the code; `problems()`
refuses a column without a category, an unknown code, or a stored category without a rule.

To adopt in a service: 1. add `info={"category": …}` to every column; 2. write
`DECLARATION = ServiceDeclaration(...)` in `<service>/governance.py`; 3. pass it to
`runtime.governance(...)`, and add the models module to tools/tests/test_declarations.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from sqlalchemy import MetaData

from .retention import RetentionRule

NOT_PERSONAL = "none"


@lru_cache(maxsize=1)
def catalogue() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files("servicekit").joinpath("data/declarations.json").read_text())
    return data


def known_categories() -> set[str]:
    return set(catalogue()["categories"]) | {NOT_PERSONAL}


def columns_of(metadata: MetaData) -> list[tuple[str, str, str]]:
    """(table, column, category) for every column; category "" when undeclared."""
    return [(table.name, column.name, str(column.info.get("category", "")))
            for table in metadata.sorted_tables for column in table.columns]


def undeclared(metadata: MetaData) -> list[str]:
    known = known_categories()
    return [f"{t}.{c}: {'no category' if not cat else f'unknown category {cat!r}'}"
            for t, c, cat in columns_of(metadata) if cat not in known]


@dataclass(frozen=True)
class Purpose:
    clause: str  # 4.1.x
    categories: tuple[str, ...]
    activity: str


@dataclass(frozen=True)
class ServiceDeclaration:
    service: str
    metadata: MetaData
    purposes: tuple[Purpose, ...]
    retention: tuple[RetentionRule, ...]
    recipients: tuple[str, ...] = ()
    transfers: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def stored_categories(self) -> set[str]:
        return {cat for _, _, cat in columns_of(self.metadata) if cat and cat != NOT_PERSONAL}

    def problems(self) -> list[str]:
        found = undeclared(self.metadata)
        purposes = set(catalogue()["purposes"])
        recipients = set(catalogue()["recipients"])
        found += [f"unknown purpose {p.clause}" for p in self.purposes if p.clause not in purposes]
        found += [f"unknown recipient {r}" for r in self.recipients if r not in recipients]
        known = known_categories()
        for p in self.purposes:
            found += [f"purpose {p.clause}: unknown category {c}" for c in p.categories if c not in known]
        ruled = {c for r in self.retention for c in (r.category, *r.covers)}
        found += [f"category {c} is stored but has no retention rule" for c in sorted(self.stored_categories() - ruled)]
        served = {c for p in self.purposes for c in p.categories}
        found += [f"category {c} is stored but serves no declared purpose"
                  for c in sorted(self.stored_categories() - served)]
        return found
