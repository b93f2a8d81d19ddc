"""The kaseum.privacy.v1.PersonalData servicer, one for every service, and export helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from kaseum.privacy.v1 import personal_data_pb2 as pd
from kaseum.privacy.v1 import personal_data_pb2_grpc

from . import caller
from .subject_data import SubjectDataRules, TableRows

FULL_NAME = "kaseum.privacy.v1.PersonalData"
# Only the rights service drives the contract; the operator CLI may too.
CALLERS = ("rights", "cli")


def table_of(name: str, category: str, model: type, rows: Iterable[object],
             exclude: Iterable[str] = ()) -> TableRows:
    """An ORM model's rows as (name, category, columns, values) for an export."""
    skip = set(exclude)
    columns = [c.name for c in model.__table__.columns if c.name not in skip]  # type: ignore[attr-defined]
    values = [["" if getattr(r, c) is None else str(getattr(r, c)) for c in columns] for r in rows]
    return name, category, columns, values


class PersonalDataApi(personal_data_pb2_grpc.PersonalDataServicer):
    """Translates the contract for `rules`; callable only by the rights service (or the CLI)."""

    def __init__(self, service: str, rules: SubjectDataRules,
                 after_erase: Callable[[], None] | None = None) -> None:
        self.service = service
        self.rules = rules
        # Called once an erasure has committed (runtime.scrubber.request: no copy left in the files).
        self.after_erase = after_erase

    def register(self, server: Any) -> None:
        personal_data_pb2_grpc.add_PersonalDataServicer_to_server(self, server)

    def Export(self, request: pd.ExportRequest, context: Any) -> pd.ExportResponse:
        caller.require_service(*CALLERS)
        export = self.rules.export(request.subject_id)
        return pd.ExportResponse(
            service=self.service, note=export.note,
            tables=[pd.Table(name=name, category=category, columns=columns,
                             rows=[pd.Row(values=row) for row in rows])
                    for name, category, columns, rows in export.tables])

    def Erase(self, request: pd.EraseRequest, context: Any) -> pd.EraseResponse:
        caller.require_service(*CALLERS)
        erasure = self.rules.erase(request.subject_id)
        if self.after_erase is not None and erasure.erased:
            self.after_erase()
        return pd.EraseResponse(service=self.service, erased_rows=erasure.erased,
                                kept=[pd.Kept(what=w, reason=r) for w, r in erasure.kept])

    def Rectify(self, request: pd.RectifyRequest, context: Any) -> pd.RectifyResponse:
        caller.require_service(*CALLERS)
        result = self.rules.rectify(request.subject_id, dict(request.corrections))
        return pd.RectifyResponse(service=self.service, applied=result.applied,
                                  rejected=[pd.Rejected(field=f, reason=r) for f, r in result.rejected])

    def Restrict(self, request: pd.RestrictRequest, context: Any) -> pd.RestrictResponse:
        caller.require_service(*CALLERS)
        return pd.RestrictResponse(service=self.service,
                                   restricted=self.rules.set_restricted(request.subject_id, True))

    def LiftRestriction(self, request: pd.LiftRestrictionRequest, context: Any) -> pd.LiftRestrictionResponse:
        caller.require_service(*CALLERS)
        return pd.LiftRestrictionResponse(service=self.service,
                                          restricted=self.rules.set_restricted(request.subject_id, False))
