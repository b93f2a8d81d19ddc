"""The kaseum.privacy.v1.PersonalData servicer, one for every service, and export helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from kaseum.privacy.v1 import personal_data_pb2 as pd
from kaseum.privacy.v1 import personal_data_pb2_grpc

from . import caller
from .errors import InvalidArgument
from .grpc_server import failure_of
from .subject_data import Erasure, Export, SubjectDataRules, TableRows

FULL_NAME = "kaseum.privacy.v1.PersonalData"
# Only the rights service drives the contract; the operator CLI may too.
CALLERS = ("rights", "cli")
# The bounds of one piece of an Export stream (the contract's): rows, and about this many bytes of values.
# 256 KiB rather than more: the rights service parses one piece at a time while writing a ZIP, and its
# memory during a download grows with the piece (measured: 3.6 MiB with 256 KiB pieces, 6.4 with 1 MiB).
PIECE_ROWS = 1000
PIECE_BYTES = 256 * 1024
# The most subjects one EraseMany takes (the contract's bound; the orchestrator sends far fewer).
MAX_ERASURES = 500


def pieces(service: str, export: Export, max_rows: int = PIECE_ROWS,
           max_bytes: int = PIECE_BYTES) -> Iterator[pd.ExportResponse]:
    """`export` as the contract's stream: pieces of at most `max_rows` rows and about `max_bytes` of
    values, a table continuing in the next piece under the same name; the note in the first piece.
    Rows are read from each table's iterable only as pieces are taken, so a lazy export stays lazy."""
    piece = pd.ExportResponse(service=service, note=export.note)
    sent = False
    rows = size = 0
    try:
        for name, category, columns, values in export.tables:
            table: pd.Table | None = piece.tables.add(name=name, category=category, columns=columns)
            for row in values:
                if table is None:  # the table goes on in a new piece
                    table = piece.tables.add(name=name, category=category, columns=columns)
                table.rows.add(values=row)
                rows += 1
                size += sum(len(v) for v in row) + 2 * len(row)  # about its encoded size
                if rows >= max_rows or size >= max_bytes:
                    yield piece
                    sent, piece, table, rows, size = True, pd.ExportResponse(service=service), None, 0, 0
        if piece.tables or not sent:
            yield piece
    finally:
        # Abandoned (the caller went away) or done: lazy rows release what they hold (a session) now.
        for _, _, _, values in export.tables:
            close = getattr(values, "close", None)
            if close is not None:
                close()


def joined(stream: Iterable[pd.ExportResponse]) -> pd.ExportResponse:
    """An Export stream read whole, as one message (a table continued across pieces made one again):
    for tests and small exports; the rights service never does this."""
    whole = pd.ExportResponse()
    for piece in stream:
        whole.service = whole.service or piece.service
        whole.note = whole.note or piece.note
        for i, table in enumerate(piece.tables):
            if i == 0 and whole.tables and whole.tables[-1].name == table.name:
                whole.tables[-1].rows.extend(table.rows)
            else:
                whole.tables.append(table)
    return whole


def table_of(name: str, category: str, model: type, rows: Iterable[object],
             exclude: Iterable[str] = ()) -> TableRows:
    """An ORM model's rows as (name, category, columns, values) for an export. Rows given as an
    iterator (e.g. read from the database as they are taken) stay lazy; any other iterable is read now."""
    skip = set(exclude)
    columns = [c.name for c in model.__table__.columns if c.name not in skip]  # type: ignore[attr-defined]
    values = _rendered(rows, columns)
    return name, category, columns, values if isinstance(rows, Iterator) else list(values)


def _rendered(rows: Iterable[object], columns: list[str]) -> Iterator[list[str]]:
    try:
        for r in rows:
            yield ["" if getattr(r, c) is None else str(getattr(r, c)) for c in columns]
    finally:  # closed early (an abandoned export): the rows' reader lets go of its session now
        close = getattr(rows, "close", None)
        if close is not None:
            close()


class PersonalDataApi(personal_data_pb2_grpc.PersonalDataServicer):
    """Translates the contract for `rules`; callable only by the rights service (or the CLI)."""

    def __init__(self, service: str, rules: SubjectDataRules,
                 after_erase: Callable[[], None] | None = None, piece_rows: int = PIECE_ROWS) -> None:
        self.service = service
        self.rules = rules
        # Rows per piece of an Export stream (smaller in tests, to see a table continue).
        self.piece_rows = piece_rows
        # Called once an erasure has committed (runtime.scrubber.request: no copy left in the files).
        self.after_erase = after_erase

    def register(self, server: Any) -> None:
        personal_data_pb2_grpc.add_PersonalDataServicer_to_server(self, server)

    def Export(self, request: pd.ExportRequest, context: Any) -> Iterator[pd.ExportResponse]:
        # Checked, and the export begun, when called: a refused caller gets its status before any piece.
        caller.require_service(*CALLERS)
        return pieces(self.service, self.rules.export(request.subject_id), self.piece_rows)

    def Erase(self, request: pd.EraseRequest, context: Any) -> pd.EraseResponse:
        caller.require_service(*CALLERS)
        erasure = self.rules.erase(request.subject_id)
        if self.after_erase is not None and erasure.erased:
            self.after_erase()
        return self._erased(erasure)

    def EraseMany(self, request: pd.EraseManyRequest, context: Any) -> pd.EraseManyResponse:
        caller.require_service(*CALLERS)
        if len(request.erasures) > MAX_ERASURES:
            raise InvalidArgument(f"at most {MAX_ERASURES} erasures per call", "too_many")
        results, erased = [], False
        # Each on its own, as Erase: one that fails (identity away for consent) leaves the others done.
        answers = self.rules.erase_many([asked.subject_id for asked in request.erasures])
        for asked, answer in zip(request.erasures, answers, strict=True):
            if isinstance(answer, Exception):
                code, _, _ = failure_of(answer, "EraseMany")
                results.append(pd.EraseResult(subject_id=asked.subject_id, error=code.name))
                continue
            erased = erased or bool(answer.erased)
            results.append(pd.EraseResult(subject_id=asked.subject_id, erased=self._erased(answer)))
        if self.after_erase is not None and erased:
            self.after_erase()  # one scrub for the batch
        return pd.EraseManyResponse(results=results)

    def _erased(self, erasure: Erasure) -> pd.EraseResponse:
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
