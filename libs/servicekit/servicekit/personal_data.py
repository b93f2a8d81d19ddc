"""Translation helpers for the kaseum.privacy.v1.PersonalData contract, shared by every service."""

from __future__ import annotations

from collections.abc import Iterable

from kaseum.privacy.v1 import personal_data_pb2 as pd

from . import caller

TableRows = tuple[str, str, list[str], list[list[str]]]

# Only the rights service drives the contract; the operator CLI may too.
CALLERS = ("rights", "cli")


def require_rights_caller() -> None:
    caller.require_service(*CALLERS)


def export_response(service: str, tables: Iterable[TableRows], note: str = "") -> pd.ExportResponse:
    return pd.ExportResponse(
        service=service,
        note=note,
        tables=[
            pd.Table(name=name, category=category, columns=columns,
                     rows=[pd.Row(values=row) for row in rows])
            for name, category, columns, rows in tables
        ],
    )


def erase_response(service: str, erased: int, kept: Iterable[tuple[str, str]] = ()) -> pd.EraseResponse:
    return pd.EraseResponse(service=service, erased_rows=erased,
                            kept=[pd.Kept(what=w, reason=r) for w, r in kept])


def table_of(name: str, category: str, model: type, rows: Iterable[object],
             exclude: Iterable[str] = ()) -> TableRows:
    """An ORM model's rows as (name, category, columns, values) for an export."""
    skip = set(exclude)
    columns = [c.name for c in model.__table__.columns if c.name not in skip]  # type: ignore[attr-defined]
    values = [["" if getattr(r, c) is None else str(getattr(r, c)) for c in columns] for r in rows]
    return name, category, columns, values
